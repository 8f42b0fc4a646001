/*
 * bootstrap.c — start's stdin (bootstrap.h). Must stay true: the bytes are
 * only containerd's, but are read as untrusted: bounded, decoded by
 * protobuf-c (which checks every length), every string copied into a
 * fixed field; nothing here exits or aborts.
 */
#define _GNU_SOURCE
#include "bootstrap.h"

#include "containerd/bootstrap.pb-c.h"
#include "containerd/runtimeoptions.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPTIONS_TYPE "runtimeoptions.v1.Options"
#define READ_CHUNK   4096

int bs_read(int fd, uint8_t **out, size_t *len, ms_err *err) {
	*out = NULL, *len = 0;
	if (isatty(fd))
		return 0;
	uint8_t *buf = malloc(BS_STDIN_MAX + 1);
	if (!buf)
		return ms_fail(err, -ENOMEM, "start: stdin: out of memory");
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, BS_STDIN_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EBADF)
			break;
		if (r < 0) {
			free(buf);
			return ms_fail(err, -errno, "start: reading stdin: %s", strerror(errno));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > BS_STDIN_MAX) {
			free(buf);
			return ms_fail(err, -E2BIG, "start: stdin is more than %d bytes",
			               BS_STDIN_MAX);
		}
	}
	*out = buf, *len = n;
	return 0;
}

static bool is_options(const char *type_url) {
	size_t n = strlen(type_url), t = strlen(OPTIONS_TYPE);
	return n >= t && !strcmp(type_url + n - t, OPTIONS_TYPE) &&
	       (n == t || type_url[n - t - 1] == '/');
}

/* The TOML of an Options: its body, else the file at config_path. */
static int options_toml(const Runtimeoptions__V1__Options *o, bs_params *p, ms_err *err) {
	p->options = true;
	if (o->config_body.len || !o->config_path || !*o->config_path)
		return ro_parse((const char *)o->config_body.data, o->config_body.len, &p->opts,
		                err);
	size_t n = 0;
	char *text = fs_read_file(o->config_path, RO_BODY_MAX, &n, err);
	if (!text)
		return ms_wrap(err, "runtime options config_path");
	int rc = ro_parse(text, n, &p->opts, err);
	free(text);
	return rc;
}

/* An Any of runtime options (another type is one warning: not ours). */
static int any_options(const Google__Protobuf__Any *a, bs_params *p, ms_err *err) {
	if (!a || !a->type_url)
		return 0;
	if (!is_options(a->type_url)) {
		snprintf(p->opts.warnings, sizeof p->opts.warnings,
		         "runtime options of type \"%.200s\" ignored (moonshim reads %s)\n",
		         a->type_url, OPTIONS_TYPE);
		return 0;
	}
	Runtimeoptions__V1__Options *o =
	    runtimeoptions__v1__options__unpack(NULL, a->value.len, a->value.data);
	if (!o)
		return ms_fail(err, -EINVAL, "start: runtime options: not a %s", OPTIONS_TYPE);
	int rc = options_toml(o, p, err);
	runtimeoptions__v1__options__free_unpacked(o, NULL);
	return rc;
}

static void copy(char *dst, size_t cap, const char *src) {
	snprintf(dst, cap, "%s", src ? src : "");
}

/* A BootstrapParams is one whose id and namespace are the flags' (an Any
 * decodes as one too: type_url as instance_id, value as namespace), or,
 * without flags, one that names containerd's address. */
static bool is_bootstrap(const Containerd__Runtime__Bootstrap__V1__BootstrapParams *b,
                         const char *cli_id, const char *cli_ns) {
	if (!*b->instance_id || !*b->namespace_)
		return false;
	if (cli_id && strcmp(cli_id, b->instance_id))
		return false;
	if (cli_ns && strcmp(cli_ns, b->namespace_))
		return false;
	return cli_id || *b->containerd_ttrpc_address;
}

static int from_bootstrap(const Containerd__Runtime__Bootstrap__V1__BootstrapParams *b,
                          bs_params *p, ms_err *err) {
	p->bootstrap = true;
	copy(p->id, sizeof p->id, b->instance_id);
	copy(p->ns, sizeof p->ns, b->namespace_);
	copy(p->containerd_version, sizeof p->containerd_version, b->containerd_version);
	copy(p->ttrpc_address, sizeof p->ttrpc_address, b->containerd_ttrpc_address);
	copy(p->grpc_address, sizeof p->grpc_address, b->containerd_grpc_address);
	copy(p->socket_dir, sizeof p->socket_dir, b->socket_dir);
	for (size_t i = 0; i < b->n_extensions; i++)
		if (b->extensions[i] && any_options(b->extensions[i]->value, p, err))
			return err->code;
	return 0;
}

int bs_parse(const uint8_t *in, size_t len, const char *cli_id, const char *cli_ns, bs_params *p,
             ms_err *err) {
	*p = (bs_params){0};
	ro_init(&p->opts);
	if (!len)
		return 0;
	if (len > BS_STDIN_MAX)
		return ms_fail(err, -E2BIG, "start: stdin is more than %d bytes", BS_STDIN_MAX);
	Containerd__Runtime__Bootstrap__V1__BootstrapParams *b =
	    containerd__runtime__bootstrap__v1__bootstrap_params__unpack(NULL, len, in);
	if (b && is_bootstrap(b, cli_id, cli_ns)) {
		int rc = from_bootstrap(b, p, err);
		containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(b, NULL);
		return rc;
	}
	if (b)
		containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(b, NULL);
	Google__Protobuf__Any *a = google__protobuf__any__unpack(NULL, len, in);
	if (!a || !a->type_url || !*a->type_url) {
		if (a)
			google__protobuf__any__free_unpacked(a, NULL);
		return ms_fail(
		    err, -EINVAL,
		    "start: stdin (%zu bytes) is neither containerd's BootstrapParams nor "
		    "a google.protobuf.Any of runtime options",
		    len);
	}
	int rc = any_options(a, p, err);
	google__protobuf__any__free_unpacked(a, NULL);
	return rc;
}
