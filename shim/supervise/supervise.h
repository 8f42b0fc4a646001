/*
 * supervise.h — supervising a container process on the runtime (prefix
 * sv_), one object for both modes: its pidfd parked on the netpoller, its
 * cgroup's events, the Lua world of its checks and policies (the built-in
 * default policy when none is given), the Go watch and its stderr tap,
 * its stdout/stderr to a k8s-file log, its pty relayed — goroutines of the
 * caller's runtime. `moonshim run` supervises its init (sv_supervise: its
 * own rt_main, our signals forwarded, restarts offered); the containerd
 * task each init and exec (sv_start, sv_wait on the shim's runtime). What
 * differs between the modes is in sv_opts, never a second copy: who owns
 * stdio (relay), where events go (events, on_cgroup), whether signals are
 * forwarded and restarts offered. With a restart offered and a spec to
 * make it from, a policy may restart the container (container.restart):
 * supervision then goes on with the new process.
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
	/* where the container's state is published (publish.h), or NULL: the
	 * caller opens it and closes it after sv_wait; supervision starts its
	 * writer, provides the "process", "scripts", "health" and "go"
	 * sections and stops it (a last snapshot) at the end. One per
	 * container: an exec's supervision has none. */
	pb *publish;
	/* after a restart, with the new process running (e.g. to record it) */
	void (*restarted)(void *arg, const ct_proc *p);
	void *restarted_arg;

	/* ─── the mode's parameters ─── */
	/* the Lua world's name (messages) */
	const char *name;
	/* a policy and a check given as Lua text rather than files (the
	 * containerd annotations): name and source, NULL when none */
	const char *policy_name, *policy_src;
	const char *check_name, *check_src;
	/* `run`: our signals (sv_block_signals) go to the process, and a TERM,
	 * INT or QUIT ends the run (no restart after it) */
	bool forward_signals;
	/* `run`: container.restart remakes the init (with spec, create, cgroup
	 * and reap_cgroup); containerd's task has no such thing */
	bool offer_restart;
	/* `run`: the Go detectors also watch our own runtime */
	bool go_self;
	/* the pty's relay: NULL relays it to our terminal (stdin, stdout,
	 * resized as ours); else its input and output fds (the caller's) */
	const int *relay;
	/* every cgroup event, before the policies see it (containerd: TaskOOM) */
	void (*on_cgroup)(void *arg, const cg_event *e);
	void *on_cgroup_arg;
} sv_opts;

typedef struct sv sv;

/* The signals forwarded to the process: block them (in every thread)
 * before creating it, so none is lost or kills us meanwhile. The child
 * unblocks them before exec. */
void sv_block_signals(void);

/* Start phase, in a goroutine of a running runtime: the exit waiter, the
 * Lua world, the cgroup watcher, the log, the Go watch and tap, the relay
 * (o is copied; what it points to must outlive the sv). 0 and *out, or
 * -errno (out of memory) with nothing started: the fds in o are still
 * the caller's and a held process still waits at start_fd. */
int sv_start(const sv_opts *o, sv **out, ms_err *err);
/* Stop phase: wait until the process exits, no policy restarts it, the
 * policies saw the exit and everything is drained and stopped; returns
 * the last process's exit status as a shell reports it (128+N for signal
 * N). Once per sv. */
int sv_wait(sv *s);
/* After sv_wait. NULL is fine. */
void sv_free(sv *s);

/* The container's publisher (publish.h) in dir: id, containerd's
 * namespace (NULL in `run`), the CRI's labels from s's annotations, the
 * cgroup (relative, may be NULL) and this process as the supervisor. NULL
 * when MOONSHIM_NO_PUBLISH=1 (benchmarks compare without it) or when it
 * cannot be made (said once on stderr: the container runs without). */
pb *sv_publisher(const char *dir, const char *id, const char *ns, const spec *s,
                 const char *cgroup_rel);

/* `moonshim run`: its own rt_main, sv_start, sv_wait. Returns the status
 * as sv_wait; negative (-errno) when supervision could not start at all
 * (the runtime's netpoller: EMFILE, ENOMEM), with the fds in o still the
 * caller's and a held process still waiting at start_fd. */
int sv_supervise(const sv_opts *o);

#endif
