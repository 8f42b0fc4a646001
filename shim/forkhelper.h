/*
 * forkhelper.h — creating a container's process (its init, or an exec)
 * from a goroutine (prefix fh_). container.h's functions need a
 * single-threaded caller; the runtime has many threads, so a forked helper
 * calls them and the process becomes our child (o.clone_parent must be
 * set).
 */
#ifndef MOONSHIM_FORKHELPER_H
#define MOONSHIM_FORKHELPER_H

#include "container.h"
#include "spec.h"

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

#endif
