/*
 * container.c — clone3 and the parent/child handshake for a container's
 * init (ct_create) and for a process joining it (ct_exec).
 *
 * The handshake runs over a SOCK_SEQPACKET pair:
 *   parent: clone3(namespaces | CLONE_PIDFD | CLONE_INTO_CGROUP)
 *   child:  non-dumpable, parent-death signal, stdio; waits for "go"
 *   parent: uid/gid maps; each idmapped mount made (idmount.c) and sent
 *           as SCM_RIGHTS {MSG_IDMOUNT, index}; v1 cgroup hierarchies,
 *           the caller's hook (device rules), oom_score_adj; sends "go"
 *   child:  joins namespaces (with a new user namespace: creates the other
 *           new ones now, as its root), lo up, mounts and pivots, sets
 *           itself up, execs;
 *           any failure is sent as {errno, message} before _exit
 *   parent: EOF on the socket (it is close-on-exec) means the exec
 *           happened; a pty master may arrive first as SCM_RIGHTS.
 * The child stays non-dumpable until execve, so nothing in the container
 * can ptrace it or open its /proc/PID/exe while it still holds host
 * resources (the CVE-2019-5736 class).
 */
#define _GNU_SOURCE
#include "ct_internal.h"
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MSG_ERROR = 1, MSG_PTY = 2, MSG_READY = 3, MSG_HOOKS = 4, MSG_IDMOUNT = 5 };

typedef struct {
	int kind, code;
	char text[sizeof(((ms_err *)0)->msg)];
} ct_msg;

static const char go_byte = 'g', hooks_done_byte = 'h';

/* ─── child side ────────────────────────────────────────────────────── */

static _Noreturn void child_fail(int sk, const ms_err *e) {
	ct_msg m = {.kind = MSG_ERROR, .code = e->code ? e->code : -EIO};
	snprintf(m.text, sizeof m.text, "%s", e->msg[0] ? e->msg : "container setup failed");
	(void)!send(sk, &m, sizeof m, MSG_NOSIGNAL);
	_exit(1);
}

static int send_fd(int sk, int kind, int code, int fd) {
	ct_msg m = {.kind = kind, .code = code};
	char ctl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {&m, sizeof m};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	return sendmsg(sk, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* One message from sk (EINTR retried), and the fd it carries (-1 if
 * none): recvmsg's count, -1 with errno. Both ends' loops read through it. */
static ssize_t recv_msg(int sk, ct_msg *m, int *fd) {
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {m, sizeof *m};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	ssize_t got;
	do
		got = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	*fd = -1;
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof *fd);
	return got;
}

/* Until "go": the parent's idmapped mounts, each kept in idmount_fds at
 * its mount's index (n of them: the spec's mounts; 0 for an exec). */
static void await_go(int sk, int *idmount_fds, size_t n) {
	for (;;) {
		ct_msg m;
		int fd;
		ssize_t got = recv_msg(sk, &m, &fd);
		if (got == 1 && *(const char *)&m == go_byte)
			return;
		if (got != (ssize_t)sizeof m || fd < 0 || m.kind != MSG_IDMOUNT || m.code < 0 ||
		    (size_t)m.code >= n || idmount_fds[m.code] >= 0)
			_exit(1); /* the parent gave up (it reports why), or broke */
		idmount_fds[m.code] = fd;
	}
}

/* What every child does first: stay out of reach until execve, die with
 * the parent, take its stdio, and wait for the parent's "go". */
static void child_start(int sk, const ct_opts *o, int *idmount_fds, size_t n) {
	ms_err e = {0};
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	umask(0);
	/* the supervisor blocks and ignores signals for itself; the workload
	 * starts with none blocked and default dispositions, as under runc */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int i = 0; i < 3; i++)
		if (o->stdio[i] >= 0 && dup2(o->stdio[i], i) < 0)
			child_fail(
			    sk,
			    (ms_fail(&e, -errno, "stdio %d: dup2: %s", i, strerror(errno)), &e));
	await_go(sk, idmount_fds, n);
}

int ct_start_pair(int sv[2], ms_err *err) {
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return ms_fail(err, -errno, "socketpair: %s", strerror(errno));
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return ms_fail(err, -e, "start socket: %s", strerror(e));
	}
	return 0;
}

void ct__send_ready(int sync_fd) {
	ct_msg m = {.kind = MSG_READY};
	(void)!send(sync_fd, &m, sizeof m, MSG_NOSIGNAL);
}

static _Noreturn void child_finish(int sk, const ct_final *f, bool bind_console) {
	ms_err e = {0};
	if (f->p->terminal) {
		int master = -1;
		if (ct__setup_terminal(&master, bind_console, &e))
			child_fail(sk, &e);
		if (send_fd(sk, MSG_PTY, 0, master) < 0)
			child_fail(sk, (ms_fail(&e, -errno, "process.terminal: sending the pty: %s",
			                        strerror(errno)),
			                &e));
		close(master);
	}
	ct__final_exec(f, &e);
	child_fail(sk, &e);
}

/* The namespaces clone3 creates; the child unshares the rest after "go".
 * A new user namespace's root (mapped by then) must own what the others
 * create, as under runc; the cgroup namespace must be rooted where the
 * parent put the child in every hierarchy, v1 ones included. */
static int clone_time_namespaces(const spec *s) {
	if (s->ns_new & CLONE_NEWUSER)
		return s->ns_new & (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWTIME);
	return s->ns_new & ~CLONE_NEWCGROUP;
}

static _Noreturn void child_create(const spec *s, const ct_opts *o, const ct_final *f, int sk,
                                   const int *joinfds, int *idmount_fds) {
	ms_err e = {0};
	child_start(sk, o, idmount_fds, s->nmounts);
	/* a joined user namespace first: it decides what the others allow */
	for (size_t i = 0; i < s->njoins; i++)
		if (s->joins[i].type == CLONE_NEWUSER && setns(joinfds[i], CLONE_NEWUSER) < 0)
			child_fail(sk, (ms_fail(&e, -errno, "linux.namespaces: joining %s: %s",
			                        s->joins[i].path, strerror(errno)),
			                &e));
	for (size_t i = 0; i < s->njoins; i++)
		if (s->joins[i].type != CLONE_NEWUSER && s->joins[i].type != CLONE_NEWPID &&
		    setns(joinfds[i], s->joins[i].type) < 0)
			child_fail(sk, (ms_fail(&e, -errno, "linux.namespaces: joining %s: %s",
			                        s->joins[i].path, strerror(errno)),
			                &e));
	bool userns = s->ns_new & CLONE_NEWUSER;
	/* root's uid (not yet its gid, as runc leaves it) owns what comes next */
	if (userns && setresuid(0, 0, 0) < 0)
		child_fail(sk,
		           (ms_fail(&e, -errno,
		                    "linux.uidMappings: becoming root in the user namespace: %s",
		                    strerror(errno)),
		            &e));
	int later = s->ns_new & ~clone_time_namespaces(s);
	if (later && unshare(later) < 0)
		child_fail(
		    sk,
		    (ms_fail(&e, -errno, "linux.namespaces: unshare: %s", strerror(errno)), &e));
	if (userns && setresgid(0, 0, 0) < 0)
		child_fail(sk,
		           (ms_fail(&e, -errno,
		                    "linux.gidMappings: becoming root in the user namespace: %s",
		                    strerror(errno)),
		            &e));
	if ((s->ns_new & CLONE_NEWNET) && ct__loopback_up(&e))
		child_fail(sk, &e);
	if ((s->ns_new & CLONE_NEWNS) ? ct__rootfs_setup(s, o, userns, sk, idmount_fds, &e)
	                              : ct__create_hooks(s, o, sk, &e))
		child_fail(sk, &e);
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		child_fail(sk, (ms_fail(&e, -errno, "hostname: %s", strerror(errno)), &e));
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		child_fail(sk, (ms_fail(&e, -errno, "domainname: %s", strerror(errno)), &e));
	child_finish(sk, f, s->ns_new & CLONE_NEWNS);
}

int ct__create_hooks(const spec *s, const ct_opts *o, int sk, ms_err *err) {
	if (oh_has(s, SPEC_HOOK_PRESTART) || oh_has(s, SPEC_HOOK_CREATE_RUNTIME)) {
		ct_msg m = {.kind = MSG_HOOKS};
		char c;
		if (send(sk, &m, sizeof m, MSG_NOSIGNAL) < 0)
			return ms_fail(err, -errno, "container setup: %s", strerror(errno));
		if (read(sk, &c, 1) != 1 || c != hooks_done_byte)
			_exit(1); /* a hook failed: the parent reports it */
	}
	/* the pid as the container sees it, the host's root still reachable */
	oh_state st = {.id = o->id, .status = "creating", .pid = getpid()};
	return oh_run(s, SPEC_HOOK_CREATE_CONTAINER, &st, s->rootfs, NULL, err);
}

/* ─── parent side ───────────────────────────────────────────────────── */

/* The child asked (MSG_HOOKS): prestart, then createRuntime, here in the
 * runtime's namespaces, in the bundle; then let it go on. */
static int runtime_hooks(int sk, const spec *s, const ct_opts *o, pid_t pid, ms_err *err) {
	oh_state st = {.id = o->id, .status = "creating", .pid = pid};
	int rc;
	if ((rc = oh_run(s, SPEC_HOOK_PRESTART, &st, s->bundle, NULL, err)) ||
	    (rc = oh_run(s, SPEC_HOOK_CREATE_RUNTIME, &st, s->bundle, NULL, err)))
		return rc;
	ms_trace(o->debug, "prestart and createRuntime hooks done");
	if (write(sk, &hooks_done_byte, 1) != 1)
		return ms_fail(err, -errno, "container setup: %s", strerror(errno));
	return 0;
}

int ct__write_idmap(pid_t pid, const char *file, const spec_idmap *m, size_t n, const char *what,
                    ms_err *err) {
	char buf[16384], path[64];
	size_t len = 0;
	for (size_t i = 0; i < n && len < sizeof buf - 40; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%u %u %u\n", m[i].inside,
		                        m[i].outside, m[i].size);
	snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
	return fs_write_file(path, buf, what, err);
}

static int set_oom_score_adj(pid_t pid, const spec_process *p, ms_err *err) {
	if (!p->has_oom_score_adj)
		return 0;
	char path[64], val[16];
	snprintf(path, sizeof path, "/proc/%d/oom_score_adj", pid);
	snprintf(val, sizeof val, "%d", p->oom_score_adj);
	return fs_write_file(path, val, "process.oomScoreAdj", err);
}

static pid_t do_clone3(uint64_t flags, int cgroup_fd, int *pidfd, bool parent) {
	struct clone_args args = {
	    .flags = flags | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0) |
	             (parent ? CLONE_PARENT : 0),
	    .pidfd = (uint64_t)(uintptr_t)pidfd,
	    /* with CLONE_PARENT the kernel wants 0 here and uses our own exit
	     * signal (SIGCHLD: we were forked) */
	    .exit_signal = parent ? 0 : SIGCHLD,
	    .cgroup = (uint64_t)(cgroup_fd >= 0 ? cgroup_fd : 0),
	};
	return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

/* Each idmapped mount of s, made here and passed to child pid (which
 * waits for "go" and keeps them). */
static int send_idmounts(int sk, const spec *s, pid_t pid, const ct_opts *o, ms_err *err) {
	for (size_t i = 0; i < s->nmounts; i++) {
		if (!s->mounts[i].idmap)
			continue;
		int fd, rc;
		if ((rc = ct__idmount_open(s, i, pid, &fd, err)))
			return rc;
		rc = send_fd(sk, MSG_IDMOUNT, (int)i, fd);
		close(fd);
		if (rc)
			return ms_fail(err, rc, "mounts[%zu] (%s): passing the idmapped mount: %s",
			               i, s->mounts[i].dest, strerror(-rc));
		ms_trace(o->debug, "mounts[%zu] (%s): idmapped mount passed", i, s->mounts[i].dest);
	}
	return 0;
}

/* Read the child's reports until EOF (it exec'd) or an error; s: the
 * spec whose runtime hooks it may ask for (NULL for an exec). */
static int await_exec(int sk, const spec *s, const ct_opts *o, ct_proc *out, ms_err *err) {
	for (;;) {
		ct_msg m;
		int fd;
		ssize_t n = recv_msg(sk, &m, &fd);
		if (n == 0)
			return 0;
		if (n < 0)
			return ms_fail(err, -errno, "container setup: %s", strerror(errno));
		if (m.kind == MSG_PTY) {
			if (fd >= 0)
				out->pty_master = fd;
			continue;
		}
		if (fd >= 0) /* only a pty message carries one */
			close(fd);
		if (m.kind == MSG_READY) /* held before exec until started */
			return 0;
		if (m.kind == MSG_HOOKS && s) {
			int rc = runtime_hooks(sk, s, o, out->pid, err);
			if (rc)
				return rc;
			continue;
		}
		m.text[sizeof m.text - 1] = 0;
		return ms_fail(err, m.code ? m.code : -EIO, "%s", m.text);
	}
}

/* Steps of the parent between clone3 and "go" that both paths share. */
static int release_child(pid_t pid, const spec_process *p, const ct_opts *o, ms_err *err) {
	cg_err ce = {0};
	if (cg_attach(o->cgroup, pid, &ce) < 0)
		return ms_fail(err, ce.code, "cgroup: %s", ce.msg);
	ms_trace(o->debug, "%d in every cgroup hierarchy", pid);
	if (o->before_start && o->before_start(pid, o->hook_arg, err))
		return err->code;
	ms_trace(o->debug, "caller's set-up for %d done", pid);
	return set_oom_score_adj(pid, p, err);
}

/* Kill a child that failed to start and reap it. With CLONE_PARENT it is
 * our parent's child, not ours: out->pid stays set for the parent to reap
 * (a zombie in a pid namespace keeps that namespace's init from exiting). */
static void reap(ct_proc *p, bool ours) {
	if (p->pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
		close(p->pidfd);
	}
	if (p->pid > 0 && ours)
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {
		}
	if (p->pty_master >= 0)
		close(p->pty_master);
	*p = (ct_proc){.pid = ours ? -1 : p->pid, .pidfd = -1, .pty_master = -1};
}

/* What ct_create and ct_exec share: the seccomp program and identity the
 * child applies, the handshake socket, and the cgroup fd clone3 enters. */
typedef struct handshake {
	sc_program sc;
	ct_final fin;
	int sv[2]; /* [0] ours, [1] the child's */
	int cgfd;
} handshake;

static int handshake_open(handshake *h, const spec *s, const spec_process *p, const ct_opts *o,
                          ms_err *err) {
	*h = (handshake){.sv = {-1, -1}, .cgfd = -1};
	int rc;
	if ((rc = sc_compile(s->seccomp, "linux.seccomp", &h->sc, err)) ||
	    (rc = ct__final_prepare(p, &h->sc, &h->fin, err)))
		return rc;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, h->sv) < 0)
		return ms_fail(err, -errno, "socketpair: %s", strerror(errno));
	h->fin.sync_fd = h->sv[1];
	h->fin.start_fd = o->hold ? o->start_fd : -1;
	if (o->attach_after_clone || cg_was_killed(o->cgroup))
		return 0; /* release_child's cg_attach moves it in */
	if ((h->cgfd = open(cg_path(o->cgroup), O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return ms_fail(err, -errno, "cgroup %s: %s", cg_path(o->cgroup), strerror(errno));
	return 0;
}

/* In the parent after clone3: the child's end of the socket is the
 * child's alone. */
static void handshake_cloned(handshake *h, pid_t pid, ct_proc *out) {
	out->pid = pid;
	close(h->sv[1]);
	h->sv[1] = -1;
}

/* The parent's shared last steps: cgroups, the caller's hook and
 * oom_score_adj, "go", then the child's report (exec'd, or ready). */
static int handshake_go(handshake *h, const spec *s, const spec_process *p, const ct_opts *o,
                        ct_proc *out, ms_err *err) {
	int rc = release_child(out->pid, p, o, err);
	if (rc)
		return rc;
	ms_trace(o->debug, "parent side done (maps, cgroups, devices): go");
	if (write(h->sv[0], &go_byte, 1) != 1)
		return ms_fail(err, -errno, "container setup: %s", strerror(errno));
	rc = await_exec(h->sv[0], s, o, out, err);
	ms_trace(o->debug, "process %d exec'd or ready", out->pid);
	return rc;
}

/* Close everything; on failure (rc) the child is killed and reaped. */
static void handshake_close(handshake *h, int rc, ct_proc *out, bool clone_parent) {
	if (rc)
		reap(out, !clone_parent);
	for (int i = 0; i < 2; i++)
		if (h->sv[i] >= 0)
			close(h->sv[i]);
	if (h->cgfd >= 0)
		close(h->cgfd);
	ct__final_release(&h->fin);
	sc_free(&h->sc);
}

int ct_create(const spec *s, const ct_opts *o, ct_proc *out, ms_err *err) {
	*out = (ct_proc){.pid = -1, .pidfd = -1, .pty_master = -1};
	handshake h;
	int rc, self_pidns = -1;
	int *joinfds = calloc(s->njoins + 1, sizeof *joinfds);
	/* the child's copy fills in; ours stays all -1 */
	int *idmount_fds = calloc(s->nmounts + 1, sizeof *idmount_fds);
	if (!joinfds || !idmount_fds) {
		free(joinfds);
		free(idmount_fds);
		return ms_fail(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->njoins; i++)
		joinfds[i] = -1;
	for (size_t i = 0; i < s->nmounts; i++)
		idmount_fds[i] = -1;
	if ((rc = handshake_open(&h, s, &s->process, o, err)))
		goto out;
	h.fin.hooks = s;
	h.fin.id = o->id;
	for (size_t i = 0; i < s->njoins; i++)
		if ((joinfds[i] = open(s->joins[i].path, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = ms_fail(err, -errno, "linux.namespaces: %s: %s", s->joins[i].path,
			             strerror(errno));
			goto out;
		}
	/* a pid namespace joined by path applies to children: set it for the
	 * clone, then return to ours */
	for (size_t i = 0; i < s->njoins; i++)
		if (s->joins[i].type == CLONE_NEWPID) {
			self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
			if (self_pidns < 0 || setns(joinfds[i], CLONE_NEWPID) < 0) {
				rc = ms_fail(err, -errno, "linux.namespaces: joining %s: %s",
				             s->joins[i].path, strerror(errno));
				goto out;
			}
		}
	ms_trace(o->debug, "clone3 %s %s", h.cgfd >= 0 ? "into" : "(attached after) for",
	         cg_path(o->cgroup));
	pid_t pid =
	    do_clone3((uint64_t)clone_time_namespaces(s), h.cgfd, &out->pidfd, o->clone_parent);
	if (pid == 0) {
		close(h.sv[0]);
		child_create(s, o, &h.fin, h.sv[1], joinfds, idmount_fds);
	}
	int e = errno;
	if (self_pidns >= 0)
		(void)!setns(self_pidns, CLONE_NEWPID);
	if (pid < 0) {
		out->pidfd = -1;
		rc = ms_fail(err, -e, "clone3: %s%s", strerror(e),
		             e == EINVAL ? " (a namespace type this kernel lacks?)" : "");
		goto out;
	}
	handshake_cloned(&h, pid, out);
	if ((s->ns_new & CLONE_NEWUSER) &&
	    ((rc = ct__write_idmap(pid, "uid_map", s->uidmap, s->nuidmap, "linux.uidMappings",
	                           err)) ||
	     (rc = ct__write_idmap(pid, "gid_map", s->gidmap, s->ngidmap, "linux.gidMappings",
	                           err))))
		goto out;
	if ((rc = send_idmounts(h.sv[0], s, pid, o, err)))
		goto out;
	rc = handshake_go(&h, s, &s->process, o, out, err);
out:
	handshake_close(&h, rc, out, o->clone_parent);
	for (size_t i = 0; i < s->njoins; i++)
		if (joinfds[i] >= 0)
			close(joinfds[i]);
	free(joinfds);
	free(idmount_fds);
	if (self_pidns >= 0)
		close(self_pidns);
	return rc;
}

/* ─── exec ──────────────────────────────────────────────────────────── */

/* Namespaces of pid that differ from ours (joining one's own user
 * namespace is an error, the others are needless). */
static int namespaces_to_join(pid_t pid) {
	static const struct {
		const char *name;
		int flag;
	} ns[] = {{"user", CLONE_NEWUSER},    {"mnt", CLONE_NEWNS},  {"net", CLONE_NEWNET},
	          {"ipc", CLONE_NEWIPC},      {"uts", CLONE_NEWUTS}, {"pid", CLONE_NEWPID},
	          {"cgroup", CLONE_NEWCGROUP}};
	int flags = 0;
	for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
		char a[64], b[64];
		struct stat sa, sb;
		snprintf(a, sizeof a, "/proc/self/ns/%s", ns[i].name);
		snprintf(b, sizeof b, "/proc/%d/ns/%s", pid, ns[i].name);
		if (stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
		    (sa.st_ino != sb.st_ino || sa.st_dev != sb.st_dev))
			flags |= ns[i].flag;
	}
	return flags;
}

int ct_exec(const spec *s, const spec_process *p, pid_t init_pid, const ct_opts *o, ct_proc *out,
            ms_err *err) {
	*out = (ct_proc){.pid = -1, .pidfd = -1, .pty_master = -1};
	handshake h;
	int rc;
	int initfd = (int)syscall(SYS_pidfd_open, init_pid, 0);
	if (initfd < 0)
		return ms_fail(err, -errno, "container init %d: %s", init_pid, strerror(errno));
	int join = namespaces_to_join(init_pid);
	if ((rc = handshake_open(&h, s, p, o, err)))
		goto out;
	/* the child must be born in the container's pid namespace; this
	 * process only ever creates that child, so it need not switch back */
	if ((join & CLONE_NEWPID) && setns(initfd, CLONE_NEWPID) < 0) {
		rc = ms_fail(err, -errno, "joining the pid namespace of %d: %s", init_pid,
		             strerror(errno));
		goto out;
	}
	pid_t pid = do_clone3(0, h.cgfd, &out->pidfd, o->clone_parent);
	if (pid == 0) {
		ms_err e = {0};
		close(h.sv[0]);
		child_start(h.sv[1], o, NULL, 0);
		int rest = join & ~CLONE_NEWPID;
		if (rest && setns(initfd, rest) < 0)
			child_fail(h.sv[1], (ms_fail(&e, -errno, "joining the namespaces of %d: %s",
			                             init_pid, strerror(errno)),
			                     &e));
		child_finish(h.sv[1], &h.fin, false);
	}
	if (pid < 0) {
		out->pidfd = -1;
		rc = ms_fail(err, -errno, "clone3: %s", strerror(errno));
		goto out;
	}
	handshake_cloned(&h, pid, out);
	rc = handshake_go(&h, NULL, p, o, out, err);
out:
	handshake_close(&h, rc, out, o->clone_parent);
	close(initfd);
	return rc;
}

/* Fields 3 (state) and 22 (start time) of /proc/PID/stat; false if gone. */
unsigned long long ct_start_time(pid_t pid) {
	char state;
	unsigned long long start;
	return fs_proc_stat(pid, &state, &start) ? start : 0;
}

bool ct_pid_running(pid_t pid, unsigned long long start_time) {
	char state;
	unsigned long long start;
	if (pid <= 0 || !fs_proc_stat(pid, &state, &start))
		return false;
	/* a zombie has exited: its status waits for a parent that is stopped,
	 * killed or slow to reap, but the container is not running */
	return state != 'Z' && state != 'X' && start == start_time;
}
