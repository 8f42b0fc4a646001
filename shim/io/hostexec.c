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

int hx_pipes(int child[3], int ours[3], ms_err *err) {
	int p[3][2];
	for (int i = 0; i < 3; i++)
		if (pipe2(p[i], O_CLOEXEC | O_NONBLOCK) < 0) {
			int e = errno;
			for (int k = 0; k < i; k++)
				close(p[k][0]), close(p[k][1]);
			return ms_fail(err, -e, "pipe: %s", strerror(e));
		}
	child[0] = p[0][0], ours[0] = p[0][1];
	for (int i = 1; i < 3; i++)
		child[i] = p[i][1], ours[i] = p[i][0];
	for (int i = 0; i < 3; i++) /* the child's ends blocking, as programs expect */
		fcntl(child[i], F_SETFL, 0);
	return 0;
}

void hx_collect(pid_t pid, bool group, int ours[3], const void *in, size_t in_len,
                int64_t timeout_ns, size_t max_output, hx_result *r) {
	memset(r, 0, sizeof *r);
	int64_t deadline = rt_deadline_in(timeout_ns > 0 ? timeout_ns : RT_FOREVER);
	r->out = malloc(max_output + 1);
	r->err = malloc(max_output + 1);
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	pipe_job jin = {.fd = ours[0],
	                .data = in ? in : "",
	                .len = in ? in_len : 0,
	                .deadline = deadline,
	                .wg = &wg};
	pipe_job jout = {
	    .fd = ours[1], .buf = r->out, .max = max_output, .deadline = deadline, .wg = &wg};
	pipe_job jerr = {
	    .fd = ours[2], .buf = r->err, .max = max_output, .deadline = deadline, .wg = &wg};
	rt_wg_add(&wg, 3);
	rt_go(feed, &jin, "command stdin");
	rt_go(drain, &jout, "command stdout");
	rt_go(drain, &jerr, "command stderr");
	pid_t target = group ? -pid : pid; /* a process group: a shell's children too */
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), perr;
	rt_pollfd *pd = pfd >= 0 ? rt_poll_open(pfd, &perr) : NULL;
	if (pd && rt_poll_wait(pd, RT_POLL_READ, deadline) != 0) {
		r->timed_out = true;
		kill(target, SIGKILL);
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
		kill(target, SIGKILL);
	rt_wg_wait(&wg);
	r->out_len = jout.n;
	r->err_len = jerr.n;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int hx_run(char *const argv[], char *const env[], const void *in, size_t in_len, int64_t timeout_ns,
           size_t max_output, hx_result *r, ms_err *err) {
	memset(r, 0, sizeof *r);
	int child[3] = {-1, -1, -1}, ours[3] = {-1, -1, -1};
	if (hx_pipes(child, ours, err))
		return err->code;
	char *envp[MAX_ENV + 1];
	int ne = 0;
	for (char **e = environ; *e && ne < MAX_ENV; e++)
		envp[ne++] = *e;
	for (char *const *e = env; e && *e && ne < MAX_ENV; e++)
		envp[ne++] = *e;
	envp[ne] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_adddup2(&fa, child[i], i);
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
	for (int i = 0; i < 3; i++)
		close(child[i]);
	if (rc) {
		for (int i = 0; i < 3; i++)
			close(ours[i]);
		return ms_fail(err, -rc, "%s: %s", argv[0], strerror(rc));
	}
	hx_collect(pid, true, ours, in, in_len, timeout_ns, max_output, r);
	return 0;
}

void hx_result_free(hx_result *r) {
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}
