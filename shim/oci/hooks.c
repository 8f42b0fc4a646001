/*
 * hooks.c — one OCI hook run to its end: fork, the state JSON on stdin (a
 * memfd, so writing it never blocks nor raises SIGPIPE), stdout and stderr
 * into one pipe read as the hook runs (the first OH_OUTPUT_MAX bytes kept),
 * its pidfd polled until it exits or its timeout passes (then SIGKILL).
 *
 * Between fork and execve the child only makes system calls (dup2,
 * close_range, sigprocmask, chdir, execve): the caller may be a
 * multi-threaded shim. Everything it needs (argv, envp, the memfd) is
 * made before the fork. The hook's exit is reaped here through its pidfd,
 * never by a wait for any child.
 */
#define _GNU_SOURCE
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* the runtime-spec version whose state we write */
#define OH_OCI_VERSION "1.3.0"
#define MS_PER_S       1000
#define NS_PER_MS      1000000
/* the exit status the child gives when execve fails (as a shell does) */
#define EXEC_FAILED 127

/* ─── the state ─────────────────────────────────────────────────────── */

/* The state JSON in a sealed-size memfd positioned at 0, or -errno. */
static int state_fd(const spec *s, const oh_state *st, ms_err *err) {
	json_t *j = json_pack("{s:s, s:s, s:s}", "ociVersion", OH_OCI_VERSION, "id",
	                      st->id ? st->id : "", "status", st->status);
	if (!j)
		return ms_fail(err, -ENOMEM, "hook state: out of memory");
	if (st->pid > 0)
		json_object_set_new(j, "pid", json_integer(st->pid));
	json_object_set_new(j, "bundle", json_string(s->bundle));
	if (s->annotations && json_object_size(s->annotations))
		json_object_set(j, "annotations", s->annotations);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return ms_fail(err, -ENOMEM, "hook state: out of memory");
	int fd = memfd_create("oci-hook-state", MFD_CLOEXEC);
	size_t len = strlen(text), off = 0;
	while (fd >= 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			fd = -1;
			break;
		}
		off += (size_t)n;
	}
	int e = errno;
	free(text);
	if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return ms_fail(err, -e, "hook state: memfd: %s", strerror(e));
	return fd;
}

/* ─── one hook ──────────────────────────────────────────────────────── */

typedef struct hook_run {
	const spec_hook *h;
	int in_fd, out[2]; /* stdin memfd; output pipe */
	pid_t pid;
	int pidfd;
	char output[OH_OUTPUT_MAX + 1];
	size_t outlen;
} hook_run;

static _Noreturn void hook_child(const hook_run *r, const char *cwd, char *const *env) {
	char *const self[] = {r->h->path, NULL};
	sigset_t none;
	sigemptyset(&none);
	if (dup2(r->in_fd, 0) < 0 || dup2(r->out[1], 1) < 0 || dup2(r->out[1], 2) < 0)
		_exit(EXEC_FAILED);
	syscall(SYS_close_range, 3, ~0U, 0);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (cwd && chdir(cwd) < 0)
		_exit(EXEC_FAILED);
	execve(r->h->path, r->h->args && r->h->args[0] ? r->h->args : self, env);
	static const char msg[] = "cannot execute the hook\n";
	(void)!write(2, msg, sizeof msg - 1);
	_exit(EXEC_FAILED);
}

/* reads per wakeup: a writer faster than us cannot keep us here */
#define READS_PER_WAKEUP 16

static void keep_output(hook_run *r) {
	char buf[4096];
	ssize_t n;
	for (int i = 0; i < READS_PER_WAKEUP && (n = read(r->out[0], buf, sizeof buf)) > 0; i++) {
		size_t room = OH_OUTPUT_MAX - r->outlen, take = (size_t)n < room ? (size_t)n : room;
		memcpy(r->output + r->outlen, buf, take);
		r->outlen += take;
	}
	r->output[r->outlen] = 0;
}

static int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

/* Read its output until it exits; false if the deadline came first. */
static bool wait_exit(hook_run *r, int64_t deadline) {
	struct pollfd p[2] = {{.fd = r->pidfd, .events = POLLIN},
	                      {.fd = r->out[0], .events = POLLIN}};
	for (;;) {
		int timeout = -1;
		if (deadline) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return false;
			timeout = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		int n = poll(p, p[1].fd >= 0 ? 2 : 1, timeout);
		if (n < 0 && errno != EINTR)
			return true; /* cannot wait: reap it blocking */
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
			keep_output(r);
			if (!(p[1].revents & POLLIN))
				p[1].fd = -1; /* closed by all its writers */
		}
		if (n > 0 && (p[0].revents & POLLIN))
			return true;
	}
}

/* A one-line description of how it failed, for the error. */
static void describe(const hook_run *r, int status, bool timed_out, char *buf, size_t n) {
	if (timed_out)
		snprintf(buf, n, "ran past its timeout of %d s (killed)", r->h->timeout);
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
}

static void clean_output(char *s, size_t len) {
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < ' ')
			s[i] = ' ';
	while (len && s[len - 1] == ' ')
		s[--len] = 0;
}

static int run_one(hook_run *r, const char *what, const char *cwd, char *const *env, ms_err *err) {
	if (pipe2(r->out, O_CLOEXEC) < 0)
		return ms_fail(err, -errno, "%s %s: pipe: %s", what, r->h->path, strerror(errno));
	r->pid = fork();
	if (r->pid == 0)
		hook_child(r, cwd, env);
	int e = errno;
	close(r->out[1]);
	if (r->pid < 0) {
		close(r->out[0]);
		return ms_fail(err, -e, "%s %s: fork: %s", what, r->h->path, strerror(e));
	}
	fcntl(r->out[0], F_SETFL, O_NONBLOCK);
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	int64_t deadline = r->h->timeout ? now_ms() + (int64_t)r->h->timeout * MS_PER_S : 0;
	bool exited = r->pidfd < 0 || wait_exit(r, deadline);
	if (!exited)
		kill(r->pid, SIGKILL);
	int status = 0;
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR) {
	}
	keep_output(r);
	close(r->out[0]);
	if (r->pidfd >= 0)
		close(r->pidfd);
	if (exited && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char how[96];
	describe(r, status, !exited, how, sizeof how);
	clean_output(r->output, r->outlen);
	return ms_fail(err, exited ? -ECANCELED : -ETIMEDOUT, "%s %s: %s%s%s", what, r->h->path,
	               how, r->outlen ? ": " : "", r->output);
}

int oh_run(const spec *s, spec_hook_kind k, const oh_state *st, const char *cwd,
           char *const *default_env, ms_err *err) {
	for (size_t i = 0; s && i < s->nhooks[k]; i++) {
		const spec_hook *h = &s->hooks[k][i];
		char what[64];
		snprintf(what, sizeof what, "hooks.%s[%zu]", spec_hook_name(k), i);
		hook_run r = {.h = h, .pidfd = -1};
		if ((r.in_fd = state_fd(s, st, err)) < 0)
			return ms_wrap(err, "%s", what);
		char *const *env = h->env ? h->env : default_env ? default_env : environ;
		int rc = run_one(&r, what, cwd, env, err);
		close(r.in_fd);
		if (rc)
			return rc;
	}
	return 0;
}
