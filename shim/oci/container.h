/*
 * container.h — creating a container's processes (prefix ct_): the first
 * one from a spec (new namespaces, mounts, pivot_root, ...) and further
 * ones joined to a running container (exec).
 *
 * Both are created with clone3(CLONE_PIDFD | CLONE_INTO_CGROUP) and kept
 * on a leash until the parent has done its part (id maps, v1 cgroup
 * hierarchies, device rules, loopback, oom_score_adj); the child then sets
 * itself up and execs. The child reports a failure on the sync socket
 * (errno and a message) before it exits; a clean exec closes the socket.
 *
 * Call these while the process is single-threaded (before rt_main): the
 * child uses libc freely between clone3 and execve, and joining a user
 * namespace (exec) needs a single-threaded caller.
 */
#ifndef MOONSHIM_CONTAINER_H
#define MOONSHIM_CONTAINER_H

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "base.h"
#include "spec.h"

typedef struct ct_opts {
	const cg_host *host;
	cg *cgroup;             /* the container's cgroup (created by the caller) */
	const char *cgroup_rel; /* its path below the cgroup roots */
	int stdio[3];           /* fds for the child's 0, 1, 2; -1: inherit ours */
	bool debug;             /* trace the steps on stderr */
	const char *id;         /* the container's id: the OCI hooks' state */
	/* Run by the parent before the child may go on (after the cgroup
	 * attach): e.g. the v1 device controller. Returns 0 or fills err. */
	int (*before_start)(pid_t pid, void *hook_arg, ms_err *err);
	void *hook_arg;
	/* containerd's Create/Start split: with hold, the child does all its
	 * set-up (the program is looked up too), reports ready, and execs only
	 * once a byte can be read from start_fd (EOF: it exits instead);
	 * ct_create/ct_exec return at "ready". start_fd is one end of a
	 * SOCK_SEQPACKET pair (ct_start_pair): what still fails after the start
	 * byte (execve itself: E2BIG, ENOEXEC, ETXTBSY) comes back on it as a
	 * ct_start_report for the starter to read (fh_start). */
	bool hold;
	int start_fd;
	/* The new process becomes a child of our parent (CLONE_PARENT): for a
	 * helper forked by a multi-threaded shim, so the shim itself waits
	 * for the container. On failure out->pid is then still set (> 0) if
	 * a child was made: it is killed, and the parent must reap it. */
	bool clone_parent;
	/* Clone outside the cgroup and move the child in before it may go on,
	 * rather than clone3(CLONE_INTO_CGROUP): for a cgroup that may have
	 * seen cgroup.kill, even from another process (Linux 6.18 SIGKILLs
	 * clone3 children of a killed cgroup). Implied by cg_was_killed. */
	bool attach_after_clone;
} ct_opts;

/* What a held process sends back on its start socket when it cannot exec
 * after the start byte; EOF (the socket is close-on-exec) means it did. */
typedef struct ct_start_report {
	int code; /* -errno */
	char msg[sizeof(((ms_err *)0)->msg)];
} ct_start_report;

/* The start socket pair for ct_opts.hold: sv[0] the starter's end
 * (non-blocking, for the netpoller), sv[1] the child's (o.start_fd). Both
 * close-on-exec. 0 or -errno with err. */
int ct_start_pair(int sv[2], ms_err *err);

typedef struct ct_proc {
	pid_t pid;
	int pidfd;
	int pty_master; /* process.terminal: the pty's master side, else -1 */
} ct_proc;

/* Create and start the container's init from s. The spec's hooks run
 * here as runc runs them: prestart and createRuntime (by the parent, in
 * our namespaces) and createContainer (by the child, in the container's)
 * once the mounts are made and before pivot_root; startContainer in the
 * container just before execve (after the start byte with hold). A failing
 * one fails the create (or the start) with the hook named. poststart and
 * poststop are the caller's (they run after this returns). */
int ct_create(const spec *s, const ct_opts *o, ct_proc *out, ms_err *err);

/* Start p inside the running container whose init is init_pid (checked by
 * the caller against its recorded start time): its namespaces, o->cgroup,
 * the seccomp profile of s (the container's spec); p's user, capabilities,
 * rlimits and no_new_privs. */
int ct_exec(const spec *s, const spec_process *p, pid_t init_pid, const ct_opts *o, ct_proc *out,
            ms_err *err);

/* The start time of pid (field 22 of /proc/PID/stat), 0 if it is gone:
 * with the pid it identifies a process across pid reuse. */
unsigned long long ct_start_time(pid_t pid);

/* Whether pid is the process that started at start_time and has not
 * exited (a zombie has). */
bool ct_pid_running(pid_t pid, unsigned long long start_time);

#endif
