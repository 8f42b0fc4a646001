/*
 * supervise.h — waiting for a container process on the runtime (prefix
 * sv_): its pidfd parked on the netpoller, the forwarded signals from a
 * signalfd, its cgroup's events, its stdout/stderr to a k8s-file log or
 * its pty relayed to our terminal — all goroutines of one rt_main. With
 * a spec to make it from, a policy may restart the container
 * (container.restart): supervision then goes on with the new process.
 */
#ifndef MOONSHIM_SUPERVISE_H
#define MOONSHIM_SUPERVISE_H

#include <stdbool.h>

#include "cgroup.h"
#include "oci.h"
#include "io.h"

typedef struct sv_opts {
	/* the process; a restart replaces it in place with the new one (the
	 * replaced one's fds are closed here, the last one's are the caller's) */
	ct_proc *proc;
	cg *cgroup;           /* watched when set; emptied after the exit when reap_cgroup */
	bool reap_cgroup;     /* the process is the container's init: nothing may outlive it */
	ev_log *events;       /* may be NULL */
	const char *log_path; /* --log: out_fd and err_fd are pipes to log */
	int out_fd, err_fd;   /* read ends, -1 when not logging */
	lf_mode log_mode;     /* --log-mode: blocking (nothing lost) or non-blocking */
	size_t log_buffer;    /* --log-mode's max-buffer-size, bytes */
	bool debug;
	/* Lua scripts declaring health checks (--check); their status changes
	 * go to events as "health" */
	const char *const *checks;
	int nchecks;
	/* Lua policies (--policy): handlers on the container's events */
	const char *const *policies;
	int npolicies;
	/* the container, for exec.container: its spec and the options its
	 * init was made with (NULL: scripts cannot exec in it). With both,
	 * the cgroup and reap_cgroup, container.restart makes new inits from
	 * them; create->stdio's fds (the --log pipes' write ends) are then
	 * given to each new process and closed here when the run is over, so
	 * the log sees EOF only after the last process. */
	const spec *spec;
	const ct_opts *create;
	/* --go-watch: the watcher's options, the read end of the child's
	 * stderr pipe (the tap's), and where the tap passes it on (-1: our
	 * stderr; else a pipe's write end, closed here after the tap) */
	const struct gw_opts *go;
	int go_err_fd, go_sink_fd;
	/* >= 0: the process was made held (ct_opts.hold); a byte written here
	 * once supervision is ready lets it exec (closed here). -1: running. */
	int start_fd;
	/* after a restart, with the new process running (e.g. to record it) */
	void (*restarted)(void *arg, const ct_proc *p);
	void *restarted_arg;
} sv_opts;

/* The signals forwarded to the process: block them (in every thread)
 * before creating it, so none is lost or kills us meanwhile. The child
 * unblocks them before exec. */
void sv_block_signals(void);

/* Supervise until the process exits, no policy restarts it, and its output
 * is drained; returns the last process's exit status as a shell reports it
 * (128+N for signal N). Negative (-errno) when supervision could not start
 * at all (the runtime's netpoller: EMFILE, ENOMEM): nothing ran, the fds
 * in o are still the caller's and a held process still waits at start_fd. */
int sv_supervise(const sv_opts *o);

#endif
