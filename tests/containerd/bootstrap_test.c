/*
 * bootstrap_test.c — start's stdin (shim/containerd/bootstrap.c) and the
 * runtime options' TOML (rtopts.c): containerd 2.3+'s BootstrapParams with
 * the options as an extension, 1.7–2.2's Any of options, a config_path
 * file, garbage and oversized input (one error each, no crash), and the
 * TOML subset's keys, warnings and errors.
 */
#define _GNU_SOURCE
#include "harness.h"

#include "bootstrap.h"
#include "rtopts.h"

#include "containerd/bootstrap.pb-c.h"
#include "containerd/runtimeoptions.pb-c.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define OPTIONS_TYPE "runtimeoptions.v1.Options"

/* An Any of runtimeoptions.v1.Options{config_body = body, config_path = path}
 * packed into a malloc'd buffer. */
static uint8_t *options_any(const char *type_url, const char *body, const char *path, size_t *len) {
	Runtimeoptions__V1__Options o = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
	o.config_body.data = (uint8_t *)body, o.config_body.len = body ? strlen(body) : 0;
	o.config_path = (char *)(path ? path : "");
	uint8_t *ob = malloc(runtimeoptions__v1__options__get_packed_size(&o));
	size_t on = runtimeoptions__v1__options__pack(&o, ob);
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = (char *)type_url, a.value.data = ob, a.value.len = on;
	uint8_t *out = malloc(google__protobuf__any__get_packed_size(&a));
	*len = google__protobuf__any__pack(&a, out);
	free(ob);
	return out;
}

static uint8_t *bootstrap(const char *id, const char *ns, const char *body, size_t *len) {
	size_t an = 0;
	uint8_t *ab = options_any(OPTIONS_TYPE, body, NULL, &an);
	Google__Protobuf__Any *a = google__protobuf__any__unpack(NULL, an, ab);
	Containerd__Runtime__Bootstrap__V1__Extension ext =
	    CONTAINERD__RUNTIME__BOOTSTRAP__V1__EXTENSION__INIT;
	ext.value = a;
	Containerd__Runtime__Bootstrap__V1__Extension *exts[] = {&ext};
	Containerd__Runtime__Bootstrap__V1__BootstrapParams b =
	    CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS__INIT;
	b.instance_id = (char *)id, b.namespace_ = (char *)ns;
	b.log_level = -4;
	b.containerd_version = "v2.4.2";
	b.containerd_ttrpc_address = "/run/c.sock.ttrpc";
	b.containerd_grpc_address = "/run/c.sock";
	b.containerd_binary = "/usr/bin/containerd";
	b.socket_dir = "/run/sockdir";
	b.n_extensions = body ? 1 : 0, b.extensions = exts;
	uint8_t *out =
	    malloc(containerd__runtime__bootstrap__v1__bootstrap_params__get_packed_size(&b));
	*len = containerd__runtime__bootstrap__v1__bootstrap_params__pack(&b, out);
	google__protobuf__any__free_unpacked(a, NULL);
	free(ab);
	return out;
}

TEST(bootstrap_params_with_options_extension) {
	size_t n;
	uint8_t *in =
	    bootstrap("c1", "k8s.io", "default_policy = '/etc/p.lua'\ngo_watch = false\n", &n);
	bs_params p;
	ms_err err = {0};
	CHECKF(bs_parse(in, n, "c1", "k8s.io", &p, &err) == 0, "%s", err.msg);
	CHECK(p.bootstrap && p.options);
	CHECK(!strcmp(p.id, "c1") && !strcmp(p.ns, "k8s.io"));
	CHECK(!strcmp(p.ttrpc_address, "/run/c.sock.ttrpc") &&
	      !strcmp(p.grpc_address, "/run/c.sock"));
	CHECK(!strcmp(p.socket_dir, "/run/sockdir") && !strcmp(p.containerd_version, "v2.4.2"));
	CHECK(!strcmp(p.opts.default_policy, "/etc/p.lua") && !p.opts.go_watch);
	/* without flags (a containerd that stops passing them) it is still one */
	CHECKF(bs_parse(in, n, NULL, NULL, &p, &err) == 0 && p.bootstrap, "%s", err.msg);
	/* no options: bootstrap only */
	free(in);
	in = bootstrap("c1", "default", NULL, &n);
	CHECK(bs_parse(in, n, "c1", "default", &p, &err) == 0 && p.bootstrap && !p.options);
	CHECK(p.opts.go_watch && !p.opts.default_policy[0]);
	free(in);
}

TEST(bootstrap_any_of_options_as_1_7_sends) {
	size_t n;
	uint8_t *in = options_any(OPTIONS_TYPE,
	                          "policy = \"/p.lua\"\nchecks='/c.lua'\ndebug = true\n", NULL, &n);
	bs_params p;
	ms_err err = {0};
	CHECKF(bs_parse(in, n, "c1", "default", &p, &err) == 0, "%s", err.msg);
	CHECK(!p.bootstrap && p.options);
	CHECK(!strcmp(p.opts.default_policy, "/p.lua") && !strcmp(p.opts.default_checks, "/c.lua"));
	CHECK(p.opts.debug && p.opts.go_watch && !p.opts.warnings[0]);
	free(in);
	/* a full type URL is the same type */
	in = options_any("type.googleapis.com/" OPTIONS_TYPE, "policy = '/q.lua'", NULL, &n);
	CHECK(bs_parse(in, n, "c1", "default", &p, &err) == 0 &&
	      !strcmp(p.opts.default_policy, "/q.lua"));
	free(in);
	/* another runtime's options: one warning, nothing applied */
	in = options_any("containerd.runc.v1.Options", "policy = '/q.lua'", NULL, &n);
	CHECK(bs_parse(in, n, "c1", "default", &p, &err) == 0 && !p.options);
	CHECKF(strstr(p.opts.warnings, "containerd.runc.v1.Options"), "%s", p.opts.warnings);
	free(in);
	/* nothing on stdin (1.6, ctr without options) */
	CHECK(bs_parse(NULL, 0, "c1", "default", &p, &err) == 0 && !p.options && !p.bootstrap);
}

TEST(bootstrap_config_path_file) {
	char path[] = "/tmp/moonshim-rtopts-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char *toml = "# from ctr --runtime-config-path\ndefault_checks = \"/x/checks.lua\"\n";
	CHECK(write(fd, toml, strlen(toml)) == (ssize_t)strlen(toml));
	close(fd);
	size_t n;
	uint8_t *in = options_any(OPTIONS_TYPE, NULL, path, &n);
	bs_params p;
	ms_err err = {0};
	CHECKF(bs_parse(in, n, "c1", "default", &p, &err) == 0, "%s", err.msg);
	CHECK(!strcmp(p.opts.default_checks, "/x/checks.lua"));
	free(in);
	unlink(path);
	in = options_any(OPTIONS_TYPE, NULL, path, &n);
	CHECK(bs_parse(in, n, "c1", "default", &p, &err) < 0);
	CHECKF(strstr(err.msg, "config_path") && strstr(err.msg, path), "%s", err.msg);
	free(in);
}

TEST(bootstrap_garbage_and_oversized_one_error) {
	bs_params p;
	ms_err err = {0};
	const char *junk = "hello, I am not protobuf";
	CHECK(bs_parse((const uint8_t *)junk, strlen(junk), "c1", "default", &p, &err) == -EINVAL);
	CHECKF(strstr(err.msg, "neither") && strstr(err.msg, "24 bytes"), "%s", err.msg);
	/* every prefix of a valid message: an error or a result, never a crash */
	size_t n;
	uint8_t *in = bootstrap("c1", "default", "policy = '/p.lua'", &n);
	for (size_t i = 0; i < n; i++) {
		ms_err e = {0};
		int rc = bs_parse(in, i, "c1", "default", &p, &e);
		CHECKF(rc == 0 || e.msg[0], "prefix %zu: rc %d with no message", i, rc);
	}
	free(in);
	uint8_t *big = calloc(1, BS_STDIN_MAX + 1);
	CHECK(bs_parse(big, BS_STDIN_MAX + 1, "c1", "default", &p, &err) == -E2BIG);
	CHECKF(strstr(err.msg, "more than"), "%s", err.msg);
	/* bs_read stops past the bound */
	int pp[2];
	CHECK(pipe(pp) == 0);
	if (fork() == 0) {
		close(pp[0]);
		for (size_t w = 0; w <= BS_STDIN_MAX; w += 4096)
			if (write(pp[1], big, 4096) != 4096)
				_exit(0);
		_exit(0);
	}
	close(pp[1]);
	uint8_t *got = NULL;
	size_t len = 0;
	CHECK(bs_read(pp[0], &got, &len, &err) == -E2BIG && !got);
	close(pp[0]);
	free(big);
}

/* containerd sends an empty Options for a runtime whose options table is
 * empty: no body (protobuf-c's NULL), no path; the defaults, no warning
 * (ro_parse did pointer arithmetic on the NULL: UBSan, the fuzz target) */
TEST(rtopts_empty_options_defaults) {
	ro_options o;
	ms_err err = {0};
	ro_init(&o);
	CHECK(ro_parse(NULL, 0, &o, &err) == 0);
	CHECK(o.go_watch && !o.debug && !o.default_policy[0] && !o.warnings[0]);
	size_t len;
	uint8_t *in = options_any(OPTIONS_TYPE, NULL, NULL, &len);
	bs_params p;
	CHECKF(bs_parse(in, len, NULL, NULL, &p, &err) == 0, "%s", err.msg);
	CHECK(p.options && p.opts.go_watch && !p.opts.default_policy[0] && !p.opts.warnings[0]);
	free(in);
}

TEST(rtopts_toml_subset) {
	ro_options o;
	ms_err err = {0};
	const char *t =
	    "  # comment\n\ndefault_policy = \"/a b/\\\"q\\\".lua\"  # trailing\r\n"
	    "TypeUrl = 'x'\nsandbox_mode = 'y'\nretries = 3\n[nested]\npolicy = '/n.lua'\n";
	ro_init(&o);
	CHECKF(ro_parse(t, strlen(t), &o, &err) == 0, "%s", err.msg);
	CHECKF(!strcmp(o.default_policy, "/a b/\"q\".lua"), "%s", o.default_policy);
	CHECKF(strstr(o.warnings, "unknown key \"sandbox_mode\" (line 5)"), "%s", o.warnings);
	CHECKF(strstr(o.warnings, "\"retries\""), "%s", o.warnings);
	CHECKF(strstr(o.warnings, "table [nested]"), "%s", o.warnings);
	CHECKF(!strstr(o.warnings, "TypeUrl"), "%s", o.warnings);
	static const struct {
		const char *text, *want;
	} bad[] = {{"policy = 'relative.lua'", "line 1: policy must be an absolute path"},
	           {"\ngo_watch = 'yes'", "line 2: go_watch must be true or false"},
	           {"policy = '/unterminated", "line 1: not"},
	           {"= 3", "line 1: not"},
	           {"debug = true false", "line 1: not"},
	           {"policy = \"/bad\\escape\"", "line 1: not"}};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ro_init(&o);
		err = (ms_err){0};
		CHECKF(ro_parse(bad[i].text, strlen(bad[i].text), &o, &err) == -EINVAL &&
		           strstr(err.msg, bad[i].want),
		       "%s: %s", bad[i].text, err.msg);
	}
	char *huge = malloc(RO_BODY_MAX + 1);
	memset(huge, '#', RO_BODY_MAX + 1);
	CHECK(ro_parse(huge, RO_BODY_MAX + 1, &o, &err) == -E2BIG);
	memset(huge, 'a', 5000);
	CHECK(ro_parse(huge, 5000, &o, &err) == -E2BIG && strstr(err.msg, "line 1"));
	free(huge);
}
