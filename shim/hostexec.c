/* hostexec.c — posix_spawn plus pipes and a pidfd on the netpoller. */
#define _GNU_SOURCE
#include "hostexec.h"

#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ENV 256

typedef struct {
	int fd;
	const void *data; /* writer */
	size_t len;
	char *buf; /* reader */
	size_t n, max;
	int64_t deadline;
	rt_waitgroup *wg;
} pipe_job;

static void feed(void *arg) {
	pipe_job *j = arg;
	int perr;
	rt_pollfd *pd = rt_poll_open(j->fd, &perr);
	if (pd) {
		rt_write(pd, j->data, j->len,
		         j->deadline); /* a command that reads nothing: EPIPE, fine */
		rt_poll_close(pd);
	}
	close(j->fd);
	rt_wg_done(j->wg);
}

/* Read to EOF; bytes past max are read and dropped, so the command never
 * blocks on a full pipe. */
static void drain(void *arg) {
	pipe_job *j = arg;
	int perr;
	rt_pollfd *pd = rt_poll_open(j->fd, &perr);
	char chunk[4096];
	ssize_t r;
	while (pd && (r = rt_read(pd, chunk, sizeof chunk, j->deadline)) > 0) {
		size_t keep = j->n + (size_t)r > j->max ? j->max - j->n : (size_t)r;
		memcpy(j->buf + j->n, chunk, keep);
		j->n += keep;
	}
	j->buf[j->n] = 0;
	if (pd)
		rt_poll_close(pd);
	close(j->fd);
	rt_wg_done(j->wg);
}

int hx_run(char *const argv[], char *const env[], const void *in, size_t in_len, int64_t timeout_ns,
           size_t max_output, hx_result *r, ms_err *err) {
	memset(r, 0, sizeof *r);
	int pin[2], pout[2], perr_[2];
	if (pipe2(pin, O_CLOEXEC | O_NONBLOCK) < 0)
		return ms_fail(err, -errno, "pipe: %s", strerror(errno));
	if (pipe2(pout, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(perr_, O_CLOEXEC | O_NONBLOCK) < 0) {
		int e = errno;
		close(pin[0]), close(pin[1]);
		return ms_fail(err, -e, "pipe: %s", strerror(e));
	}
	/* the child's ends blocking, as programs expect */
	fcntl(pin[0], F_SETFL, 0), fcntl(pout[1], F_SETFL, 0), fcntl(perr_[1], F_SETFL, 0);
	char *envp[MAX_ENV + 1];
	int ne = 0;
	for (char **e = environ; *e && ne < MAX_ENV; e++)
		envp[ne++] = *e;
	for (char *const *e = env; e && *e && ne < MAX_ENV; e++)
		envp[ne++] = *e;
	envp[ne] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr_[1], 2);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none); /* the shim blocks signals; the command must not */
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                  POSIX_SPAWN_SETSID);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pin[0]), close(pout[1]), close(perr_[1]);
	if (rc) {
		close(pin[1]), close(pout[0]), close(perr_[0]);
		return ms_fail(err, -rc, "%s: %s", argv[0], strerror(rc));
	}
	int64_t deadline = rt_deadline_in(timeout_ns > 0 ? timeout_ns : RT_FOREVER);
	r->out = malloc(max_output + 1);
	r->err = malloc(max_output + 1);
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	pipe_job jin = {.fd = pin[1],
	                .data = in ? in : "",
	                .len = in ? in_len : 0,
	                .deadline = deadline,
	                .wg = &wg};
	pipe_job jout = {
	    .fd = pout[0], .buf = r->out, .max = max_output, .deadline = deadline, .wg = &wg};
	pipe_job jerr = {
	    .fd = perr_[0], .buf = r->err, .max = max_output, .deadline = deadline, .wg = &wg};
	rt_wg_add(&wg, 3);
	rt_go(feed, &jin, "command stdin");
	rt_go(drain, &jout, "command stdout");
	rt_go(drain, &jerr, "command stderr");
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), perr;
	rt_pollfd *pd = pfd >= 0 ? rt_poll_open(pfd, &perr) : NULL;
	if (pd && rt_poll_wait(pd, RT_POLL_READ, deadline) != 0) {
		r->timed_out = true; /* the whole process group: a shell's children too */
		kill(-pid, SIGKILL);
		rt_poll_wait(pd, RT_POLL_READ, RT_FOREVER);
	}
	if (pd)
		rt_poll_close(pd);
	if (pfd >= 0)
		close(pfd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	if (r->timed_out) /* descendants may hold the pipes: stop waiting for them */
		kill(-pid, SIGKILL);
	rt_wg_wait(&wg);
	r->out_len = jout.n;
	r->err_len = jerr.n;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

void hx_result_free(hx_result *r) {
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}
