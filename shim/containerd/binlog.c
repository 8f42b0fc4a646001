/* binlog.c — starting a binary:// logger and waiting until it is ready. */
#define _GNU_SOURCE
#include "binlog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BINLOG_READY_MS 10000 /* containerd's runc shim waits as long */
#define MAX_ARGS        32

static int hexval(char c) {
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* URL-decode s in place ("%2F" and "+"). */
static void unescape(char *s) {
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
			*w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
			r += 2;
		} else {
			*w++ = *r == '+' ? ' ' : *r;
		}
	}
	*w = 0;
}

int binlog_start(const char *uri, const char *id, const char *ns, int *out_w, int *err_w,
                 pid_t *pid, ms_err *err) {
	char buf[PATH_MAX * 2];
	snprintf(buf, sizeof buf, "%s", uri + strlen(BINLOG_SCHEME));
	char *query = strchr(buf, '?');
	if (query)
		*query++ = 0;
	unescape(buf);
	if (buf[0] != '/')
		return ms_fail(err, -EINVAL, "stdio \"%s\": the logger must be an absolute path",
		               uri);
	char *argv[MAX_ARGS + 2] = {buf};
	int argc = 1;
	for (char *kv = query ? strtok(query, "&") : NULL; kv && argc < MAX_ARGS;
	     kv = strtok(NULL, "&")) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq = 0;
		unescape(kv);
		argv[argc++] = kv;
		if (eq && eq[1]) {
			unescape(eq + 1);
			argv[argc++] = eq + 1;
		}
	}
	int out[2], errp[2], ready[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return ms_fail(err, -errno, "pipe: %s", strerror(errno));
	if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) {
		int e = errno;
		close(out[0]), close(out[1]);
		return ms_fail(err, -e, "pipe: %s", strerror(e));
	}
	char env_id[PATH_MAX], env_ns[PATH_MAX];
	snprintf(env_id, sizeof env_id, "CONTAINER_ID=%s", id);
	snprintf(env_ns, sizeof env_ns, "CONTAINER_NAMESPACE=%s", ns);
	pid_t p = fork();
	if (p == 0) {
		/* fds 3, 4, 5 as containerd's loggers expect them */
		int moved[3] = {fcntl(out[0], F_DUPFD_CLOEXEC, 10),
		                fcntl(errp[0], F_DUPFD_CLOEXEC, 10),
		                fcntl(ready[1], F_DUPFD_CLOEXEC, 10)};
		for (int i = 0; i < 3; i++)
			if (moved[i] < 0 || dup2(moved[i], 3 + i) < 0)
				_exit(127);
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		setenv("CONTAINER_ID", env_id + strlen("CONTAINER_ID="), 1);
		setenv("CONTAINER_NAMESPACE", env_ns + strlen("CONTAINER_NAMESPACE="), 1);
		execv(argv[0], argv);
		_exit(127);
	}
	int e = errno;
	close(out[0]), close(errp[0]), close(ready[1]);
	if (p < 0) {
		close(out[1]), close(errp[1]), close(ready[0]);
		return ms_fail(err, -e, "stdio \"%s\": fork: %s", uri, strerror(e));
	}
	/* ready: the logger closed fd 5 (or exited) */
	struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
	int rc = poll(&pfd, 1, BINLOG_READY_MS);
	close(ready[0]);
	if (rc <= 0) {
		close(out[1]), close(errp[1]);
		*pid = p;
		return ms_fail(err, -ETIMEDOUT,
		               "stdio \"%s\": the logger did not get ready in %d ms", uri,
		               BINLOG_READY_MS);
	}
	*out_w = out[1];
	*err_w = errp[1];
	*pid = p;
	return 0;
}
