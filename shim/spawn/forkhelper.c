/*
 * forkhelper.c — a container process made from a multi-threaded caller:
 * fork a helper (single-threaded, as container.h requires), create the
 * process there with CLONE_PARENT so it is our child, report pid, pty
 * master and error back over a SEQPACKET socket, exit.
 */
#define _GNU_SOURCE
#include "forkhelper.h"

#include "rt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	int rc;
	pid_t pid;
	char msg[sizeof(((ms_err *)0)->msg)];
} helper_report;

/* The helper: fork, create the process in the child (which is
 * single-threaded), report pid, pty and error back, exit. */
static int run_helper(fh_job *j) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return ms_fail(&j->err, -errno, "socketpair: %s", strerror(errno));
	pid_t h = fork();
	if (h < 0) {
		close(sv[0]);
		close(sv[1]);
		return ms_fail(&j->err, -errno, "fork: %s", strerror(errno));
	}
	if (h == 0) {
		close(sv[0]);
		ct_proc cp = {.pid = -1, .pidfd = -1, .pty_master = -1};
		ms_err e = {0};
		int rc = j->p ? ct_exec(j->s, j->p, j->init_pid, &j->o, &cp, &e)
		              : ct_create(j->s, &j->o, &cp, &e);
		/* on failure a killed child may be left for the shim to reap */
		helper_report r = {.rc = rc, .pid = cp.pid};
		snprintf(r.msg, sizeof r.msg, "%s", e.msg);
		char ctl[CMSG_SPACE(sizeof(int))] = {0};
		struct iovec iov = {&r, sizeof r};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (!rc && cp.pty_master >= 0) {
			mh.msg_control = ctl;
			mh.msg_controllen = sizeof ctl;
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &cp.pty_master, sizeof(int));
		}
		(void)!sendmsg(sv[1], &mh, MSG_NOSIGNAL);
		_exit(0);
	}
	close(sv[1]);
	helper_report r = {.rc = -EIO};
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&r, sizeof r};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	ssize_t n;
	while ((n = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
	}
	close(sv[0]);
	while (waitpid(h, NULL, 0) < 0 && errno == EINTR) {
	}
	j->pty_master = -1;
	if (n <= 0)
		return ms_fail(&j->err, -EIO, "the creating helper died");
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&j->pty_master, CMSG_DATA(c), sizeof(int));
	if (r.rc) {
		if (r.pid > 0) /* killed already; ours to reap */
			while (waitpid(r.pid, NULL, 0) < 0 && errno == EINTR) {
			}
		return ms_fail(&j->err, r.rc, "%s", r.msg);
	}
	j->pid = r.pid;
	return 0;
}

int fh_create(fh_job *j) {
	rt_syscall_enter();
	int rc = run_helper(j);
	rt_syscall_exit();
	return rc;
}

/* How long a started process may take from the start byte to execve
 * before we stop waiting for its report: it has only a seccomp filter to
 * load and execve to call, so this is never reached unless it hangs. */
#define START_REPORT_NS (5 * 1000000000LL)

int fh_start(int start_fd, ms_err *err) {
	char go = 'g';
	if (write(start_fd, &go, 1) != 1)
		return ms_fail(err, -errno, "starting its process: %s", strerror(errno));
	int e;
	rt_pollfd *pd = rt_poll_open(start_fd, &e);
	if (!pd)
		return 0; /* cannot wait for its report: it may have exec'd */
	ct_start_report r;
	ssize_t n = rt_read(pd, &r, sizeof r, rt_now() + START_REPORT_NS);
	rt_poll_close(pd);
	if (n != (ssize_t)sizeof r)
		return 0; /* EOF: exec'd (or a report too slow to wait for) */
	r.msg[sizeof r.msg - 1] = 0;
	return ms_fail(err, r.code < 0 ? r.code : -EIO, "%s", r.msg);
}

int fh_hooks(const spec *s, spec_hook_kind k, const char *id, const char *status, pid_t pid,
             ms_err *err) {
	if (!oh_has(s, k))
		return 0;
	oh_state st = {.id = id, .status = status, .pid = pid};
	rt_syscall_enter();
	int rc = oh_run(s, k, &st, s->bundle, NULL, err);
	rt_syscall_exit();
	return rc;
}
