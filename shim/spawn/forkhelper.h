/*
 * forkhelper.h — creating a container's process (its init, or an exec)
 * from a goroutine (prefix fh_). container.h's functions need a
 * single-threaded caller; the runtime has many threads, so a forked helper
 * calls them and the process becomes our child (o.clone_parent must be
 * set).
 */
#ifndef MOONSHIM_FORKHELPER_H
#define MOONSHIM_FORKHELPER_H

#include "oci.h"

typedef struct fh_job {
	const spec *s;
	const spec_process *p; /* exec: the process; create: NULL */
	pid_t init_pid;        /* exec: the container's init */
	ct_opts o;             /* clone_parent = true */
	pid_t pid;             /* out */
	int pty_master;        /* out: -1 without a terminal */
	ms_err err;            /* out */
} fh_job;

/* In a goroutine. The helper runs on this goroutine's thread, marked as a
 * blocking call: sysmon hands the P to another thread only if it takes
 * long, and that thread retires when idle again, so an idle shim keeps few
 * threads. 0, or -errno with j->err. */
int fh_create(fh_job *j);

/* In a goroutine: start a process created with hold, through the
 * starter's end of its start socket (ct_start_pair's sv[0]), and wait until
 * it has exec'd: 0, or -errno with err saying why its execve failed (the
 * process then exits 1: its exit is not the workload's). Does not close
 * start_fd. */
int fh_start(int start_fd, ms_err *err);

/* In a goroutine: s's hooks of kind k (oh_run, blocking: marked as a
 * blocking call like fh_create), in the bundle, for container id with
 * status and pid (0: none). 0, or -errno with err naming the hook. */
int fh_hooks(const spec *s, spec_hook_kind k, const char *id, const char *status, pid_t pid,
             ms_err *err);

#endif
