/*
 * run.c — `moonshim run`: an OCI bundle as a container, supervised until
 * it exits (or, with --detach, by a daemonised moonshim while the command
 * returns at once).
 *
 *   moonshim [--root DIR] [--debug] run [--bundle|-b DIR] [--detach|-d]
 *            [--log FILE [--log-mode MODE]] [--events FILE] ID
 *
 * Order of work: spec, state claim, cgroup (limits, device rules),
 * container, state record, supervision, then removal of the cgroup (and,
 * in the foreground, of the state). Every failure undoes what was done,
 * so a bad bundle leaves nothing behind on the host.
 */
#define _GNU_SOURCE
#include "commands.h"

#include "oci.h"
#include "io.h"
#include "gowatch.h"
#include "state.h"
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHECK_SCRIPTS 16

typedef struct run_args {
	const char *bundle, *log, *events, *id;
	const char *log_mode_text; /* --log-mode as given */
	lf_mode log_mode;          /* --log-mode */
	size_t log_buffer;         /* --log-mode's max-buffer-size */
	bool detach;
	const char *checks[MAX_CHECK_SCRIPTS];
	int nchecks;
	const char *policies[MAX_CHECK_SCRIPTS];
	int npolicies;
	const char *go_watch; /* --go-watch OPTIONS */
} run_args;

static void run_usage(FILE *f) {
	fprintf(f, "usage: moonshim [--root DIR] [--debug] run [--bundle|-b DIR] [--detach|-d]\n"
	           "                [--log FILE] "
	           "[--log-mode blocking|non-blocking[,max-buffer-size=SIZE]]\n"
	           "                [--events FILE] [--check FILE.lua]... [--policy FILE.lua]...\n"
	           "                [--go-watch schedtrace=MS,pprof=URL,gctrace] ID\n"
	           "Runs the OCI bundle (default: the current directory) as container ID. In the\n"
	           "foreground the exit status is the container's (128+N for signal N).\n"
	           "--log-mode: blocking (the default) loses no output, the container waits\n"
	           "while the log is behind; non-blocking never holds it and drops what does\n"
	           "not fit in the buffer (max-buffer-size, default 1m), counted.\n");
}

/* Everything run creates, so failure paths and the end undo it alike. */
typedef struct run_ctx {
	const run_args *a;
	spec *s;
	ctcg cg;
	bool claimed;
	ct_proc proc;
	int log_pipes[2][2]; /* stdout, stderr: {read, write} */
	int go_pipe[2];      /* --go-watch: the child's stderr, read by the tap */
	gw_opts go;
	ev_log *events;
	pb *pub;        /* <root>/<id>'s status.json and events.jsonl (publish.h) */
	st_record rec;  /* as written under --root */
	ct_opts create; /* how the init was made (a restart makes the next so) */
	int start_fd;   /* the starter's end of the held init's start socket */
	int ready_fd;   /* --detach: the parent waiting for "ready", else -1 */
} run_ctx;

static void undo(run_ctx *r, bool keep_state) {
	ctcg_teardown(&r->cg);
	if (r->claimed && !keep_state)
		st_remove(g_cli.root, r->a->id);
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			if (r->log_pipes[i][j] >= 0) {
				close(r->log_pipes[i][j]);
				r->log_pipes[i][j] = -1;
			}
	for (int j = 0; j < 2; j++)
		if (r->go_pipe[j] >= 0) {
			close(r->go_pipe[j]);
			r->go_pipe[j] = -1;
		}
}

/* --go-watch: the traces on in the environment, and the child's stderr a
 * pipe the supervisor's tap reads (every byte passed on to where stderr
 * went: the log's pipe, or ours). */
static int setup_go_watch(run_ctx *r, int stdio[3], ms_err *err) {
	gw_opts_init(&r->go);
	if (gw_parse(r->a->go_watch, &r->go, err))
		return err->code;
	if (r->s->process.terminal)
		return ms_fail(err, -EINVAL,
		               "--go-watch reads the program's stderr, which a terminal "
		               "(process.terminal) merges into the pty: not both");
	char **env = gw_env(r->s->process.env, &r->go, cg_limits_cpu_cores(&r->s->limits));
	if (!env)
		return ms_fail(err, -ENOMEM, "--go-watch: out of memory");
	r->s->process.env = env;
	if (pipe2(r->go_pipe, O_CLOEXEC) < 0)
		return ms_fail(err, -errno, "pipe: %s", strerror(errno));
	stdio[2] = r->go_pipe[1];
	return 0;
}

static int open_log_pipes(run_ctx *r, int stdio[3], ms_err *err) {
	/* fail on an unwritable log now, before the container exists */
	int fd = open(r->a->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return ms_fail(err, -errno, "--log %s: %s", r->a->log, strerror(errno));
	close(fd);
	for (int i = 0; i < 2; i++) {
		if (pipe2(r->log_pipes[i], O_CLOEXEC) < 0)
			return ms_fail(err, -errno, "pipe: %s", strerror(errno));
		stdio[i + 1] = r->log_pipes[i][1];
	}
	return 0;
}

static void record(run_ctx *r, st_record *rec, const char *status) {
	memset(rec, 0, sizeof *rec);
	snprintf(rec->id, sizeof rec->id, "%s", r->a->id);
	rec->pid = r->proc.pid;
	rec->start_time = r->proc.pid > 0 ? ct_start_time(r->proc.pid) : 0;
	rec->supervisor = getpid();
	snprintf(rec->bundle, sizeof rec->bundle, "%s", r->s->bundle);
	snprintf(rec->rootfs, sizeof rec->rootfs, "%s", r->s->rootfs);
	snprintf(rec->cgroup, sizeof rec->cgroup, "%s", r->cg.rel);
	ev_time(rec->created, sizeof rec->created);
	snprintf(rec->status, sizeof rec->status, "%s", status);
	snprintf(rec->owner, sizeof rec->owner, "%s", "");
}

/* A policy restarted the container: `state`, `kill`, `exec` and `ps` go
 * by the record's pid and start time, so they follow the new init. */
static void record_restart(void *arg, const ct_proc *p) {
	run_ctx *r = arg;
	ms_err err = {0};
	r->rec.pid = p->pid;
	r->rec.start_time = ct_start_time(p->pid);
	if (st_write(g_cli.root, &r->rec, &err))
		fprintf(stderr, "moonshim: %s\n", err.msg);
}

/* --detach: fork a supervisor that outlives this command. The command
 * waits on a pipe for "ok" or the error message, so its exit status still
 * says whether the container started. */
static int detach(int *ready_fd) {
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(p[0]);
		setsid();
		*ready_fd = p[1];
		return 0;
	}
	close(p[1]);
	char msg[sizeof(((ms_err *)0)->msg) + 8] = "";
	ssize_t n, len = 0;
	while ((n = read(p[0], msg + len, sizeof msg - 1 - (size_t)len)) > 0)
		len += n;
	msg[len > 0 ? len : 0] = 0;
	if (!strcmp(msg, "ok"))
		_exit(0);
	fprintf(stderr, "moonshim: %s\n",
	        len ? msg : "the supervisor died before the container started");
	_exit(1);
}

static void detached_ready(int fd, const ms_err *err) {
	if (fd < 0)
		return;
	const char *m = err ? err->msg : "ok";
	(void)!write(fd, m, strlen(m));
	close(fd);
	/* our stdio belonged to the command; the container keeps its copies */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && null >= 0; i++)
		dup2(null, i);
	if (null > 2)
		close(null);
}

/* Before the container exists: the spec, the state claim, --detach's fork,
 * the event stream, the cgroup, the log and --go-watch pipes, r->create. */
static int prepare(run_ctx *r, ms_err *err) {
	const run_args *a = r->a;
	ms_trace(g_cli.debug, "run %s", a->id);
	if (st_check_id(a->id, err) || spec_load(a->bundle, &r->s, err))
		return err->code;
	ms_trace(g_cli.debug, "spec %s/config.json read", r->s->bundle);
	for (int i = 0; i < r->s->nwarnings; i++)
		fprintf(stderr, "moonshim: warning: %s\n", r->s->warnings[i]);
	if (st_claim(g_cli.root, a->id, err))
		return err->code;
	r->claimed = true;
	if (a->detach && detach(&r->ready_fd) < 0)
		return ms_fail(err, -errno, "--detach: fork: %s", strerror(errno));
	if (!(r->events = ev_open(a->events, a->id, err)))
		return err->code;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/%s", g_cli.root, a->id);
	r->pub = sv_publisher(dir, a->id, NULL, r->s, NULL);
	pb_observe(r->pub, r->events);
	for (int i = 0; i < r->s->nwarnings; i++)
		ev_emit(r->events, "warning", json_pack("{s:s}", "message", r->s->warnings[i]));
	char default_rel[PATH_MAX];
	snprintf(default_rel, sizeof default_rel, "moonshim/%s", a->id);
	int nw = r->s->nwarnings;
	int rc = ctcg_setup(&r->cg, r->s, default_rel, err);
	for (int i = nw; i < r->s->nwarnings; i++) { /* the host's: the cgroup's fields */
		fprintf(stderr, "moonshim: warning: %s\n", r->s->warnings[i]);
		ev_emit(r->events, "warning", json_pack("{s:s}", "message", r->s->warnings[i]));
	}
	if (rc)
		return err->code;
	ms_trace(g_cli.debug, "cgroup %s made", r->cg.rel);
	pb_set(r->pub, "cgroup", json_string(r->cg.rel));
	r->create = (ct_opts){.host = &r->cg.host,
	                      .cgroup = r->cg.cgroup,
	                      .cgroup_rel = r->cg.rel,
	                      .stdio = {-1, -1, -1},
	                      .debug = g_cli.debug,
	                      .id = a->id,
	                      .before_start = ctcg_attach_devices,
	                      .hook_arg = &r->cg};
	if (a->log && !r->s->process.terminal && open_log_pipes(r, r->create.stdio, err))
		return err->code;
	if (a->go_watch && setup_go_watch(r, r->create.stdio, err))
		return err->code;
	return 0;
}

/* The init, held at exec until supervision (the cgroup watcher, the Lua
 * world, the stderr tap) is up, so no early event is lost; r->start_fd
 * lets it go. */
static int create_held(run_ctx *r, ms_err *err) {
	int startp[2];
	if (ct_start_pair(startp, err))
		return err->code;
	r->create.hold = true;
	r->create.start_fd = startp[1];
	sv_block_signals();
	int rc = ct_create(r->s, &r->create, &r->proc, err);
	close(startp[1]);
	r->create.hold = false; /* a restart's new process starts at once */
	r->create.start_fd = -1;
	if (rc) {
		close(startp[0]);
		return rc;
	}
	r->start_fd = startp[0];
	return 0;
}

/* Supervise the held init until the run is over (supervise.h): its
 * status, or -errno when supervision never started. */
static int supervise(run_ctx *r) {
	const run_args *a = r->a;
	/* with --go-watch and a log, the tap passes stderr on into the log's
	 * pipe: its write end is the tap's sink, which supervision closes */
	int go_sink = a->go_watch && a->log ? r->log_pipes[1][1] : -1;
	/* supervision keeps the log pipes' write ends (in create.stdio) for
	 * the processes a restart makes, and closes them at the end */
	for (int i = 0; i < 2; i++)
		r->log_pipes[i][1] = -1;
	r->go_pipe[1] = -1;
	sv_opts so = {.proc = &r->proc,
	              .cgroup = r->cg.cgroup,
	              .reap_cgroup = true,
	              .events = r->events,
	              .log_path = a->log,
	              .log_mode = a->log_mode,
	              .log_buffer = a->log_buffer,
	              .out_fd = r->log_pipes[0][0],
	              .err_fd = r->log_pipes[1][0],
	              .debug = g_cli.debug,
	              .checks = a->checks,
	              .nchecks = a->nchecks,
	              .policies = a->policies,
	              .npolicies = a->npolicies,
	              .spec = r->s,
	              .create = &r->create,
	              .restarted = record_restart,
	              .restarted_arg = r,
	              .go = a->go_watch ? &r->go : NULL,
	              .go_err_fd = r->go_pipe[0],
	              .go_sink_fd = go_sink,
	              .start_fd = r->start_fd,
	              .forward_signals = true,
	              .offer_restart = true,
	              .go_self = true,
	              .publish = r->pub};
	int status = sv_supervise(&so);
	ms_trace(g_cli.debug, "supervision over, status %d", status);
	return status;
}

/* After the run: what supervision took is gone; a detached container's
 * record stays, stopped, until `delete`. */
static void finish(run_ctx *r, int status) {
	ms_err err = {0};
	r->log_pipes[0][0] = r->log_pipes[1][0] = -1; /* the log took them */
	r->go_pipe[0] = -1;                           /* the tap took it */
	close(r->proc.pidfd);
	if (r->proc.pty_master >= 0)
		close(r->proc.pty_master);
	if (r->a->detach) {
		snprintf(r->rec.status, sizeof r->rec.status, "stopped");
		r->rec.exit_status = status;
		st_write(g_cli.root, &r->rec, &err);
	}
	/* a detached container's last status stays with its record */
	pb_close(r->pub, !r->a->detach);
	undo(r, r->a->detach);
	/* poststop: the container is gone; a failing hook is a warning */
	oh_state post = {.id = r->a->id, .status = "stopped"};
	if (oh_run(r->s, SPEC_HOOK_POSTSTOP, &post, r->s->bundle, NULL, &err)) {
		fprintf(stderr, "moonshim: warning: %s\n", err.msg);
		ev_emit(r->events, "warning", json_pack("{s:s}", "message", err.msg));
	}
	ev_close(r->events);
	spec_free(r->s);
	ms_trace(g_cli.debug, "cleaned up");
}

/* A failed run: one line (to the --detach parent when there is one), the
 * error event, everything undone. */
static int fail_run(run_ctx *r, ms_err *err) {
	if (!err->msg[0])
		snprintf(err->msg, sizeof err->msg, "failed (%s)", strerror(-err->code));
	if (r->events)
		ev_emit(r->events, "error", json_pack("{s:s}", "message", err->msg));
	if (r->ready_fd >= 0)
		detached_ready(r->ready_fd, err);
	else
		fprintf(stderr, "moonshim: %s\n", err->msg);
	pb_close(r->pub, true);
	undo(r, false);
	ev_close(r->events);
	spec_free(r->s);
	return 1;
}

/* A held init that will not be supervised: it exits at the start
 * socket's EOF; killed all the same, and reaped. */
static void kill_held(run_ctx *r) {
	close(r->start_fd);
	syscall(SYS_pidfd_send_signal, r->proc.pidfd, SIGKILL, NULL, 0);
	waitpid(r->proc.pid, NULL, 0);
}

static int run_container(const run_args *a) {
	run_ctx r = {.a = a,
	             .proc = {.pid = -1, .pidfd = -1, .pty_master = -1},
	             .start_fd = -1,
	             .ready_fd = -1};
	memset(r.log_pipes, -1, sizeof r.log_pipes);
	r.go_pipe[0] = r.go_pipe[1] = -1;
	ms_err err = {0};
	if (prepare(&r, &err) || create_held(&r, &err))
		return fail_run(&r, &err);
	signal(SIGPIPE, SIG_IGN);
	record(&r, &r.rec, "running");
	if (st_write(g_cli.root, &r.rec, &err)) {
		kill_held(&r);
		return fail_run(&r, &err);
	}
	ev_emit(r.events, "start",
	        json_pack("{s:i, s:s}", "pid", r.proc.pid, "bundle", r.s->bundle));
	detached_ready(r.ready_fd, NULL);
	r.ready_fd = -1;
	int status = supervise(&r);
	if (status < 0) { /* it never started: the process still waits to exec */
		ms_fail(&err, status, "supervising %d: the netpoller (epoll, eventfd): %s",
		        r.proc.pid, strerror(-status));
		kill_held(&r);
		return fail_run(&r, &err);
	}
	finish(&r, status);
	return status;
}

int cmd_run(int argc, char **argv) {
	run_args a = {.bundle = ".", .log_mode = LF_BLOCKING, .log_buffer = LF_BUFFER_DEFAULT};
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		bool has_val = i + 1 < argc;
		if ((!strcmp(o, "--bundle") || !strcmp(o, "-b")) && has_val)
			a.bundle = argv[++i];
		else if (!strcmp(o, "--detach") || !strcmp(o, "-d"))
			a.detach = true;
		else if (!strcmp(o, "--log") && has_val)
			a.log = argv[++i];
		else if (!strcmp(o, "--log-mode") && has_val) {
			ms_err err = {0};
			a.log_mode_text = argv[++i];
			if (lf_parse_mode("--log-mode", a.log_mode_text, &a.log_mode, &a.log_buffer,
			                  &err)) {
				fprintf(stderr, "moonshim run: %s\n", err.msg);
				return 2;
			}
		} else if (!strcmp(o, "--events") && has_val)
			a.events = argv[++i];
		else if (!strcmp(o, "--check") && has_val) {
			if (a.nchecks == MAX_CHECK_SCRIPTS) {
				fprintf(stderr, "moonshim run: at most %d --check scripts\n",
				        MAX_CHECK_SCRIPTS);
				return 2;
			}
			a.checks[a.nchecks++] = argv[++i];
		} else if (!strcmp(o, "--policy") && has_val) {
			if (a.npolicies == MAX_CHECK_SCRIPTS) {
				fprintf(stderr, "moonshim run: at most %d --policy scripts\n",
				        MAX_CHECK_SCRIPTS);
				return 2;
			}
			a.policies[a.npolicies++] = argv[++i];
		} else if (!strcmp(o, "--go-watch") && has_val)
			a.go_watch = argv[++i];
		else if (cli_global_option(argc, argv, &i))
			continue;
		else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			run_usage(stdout);
			return 0;
		} else if (o[0] == '-') {
			fprintf(stderr, "moonshim run: unknown option %s\n", o);
			run_usage(stderr);
			return 2;
		} else if (!a.id)
			a.id = o;
		else {
			fprintf(stderr, "moonshim run: one container id, not \"%s\" too\n", o);
			return 2;
		}
	}
	if (a.log_mode_text && !a.log) {
		fprintf(stderr, "moonshim run: --log-mode %s without --log FILE\n",
		        a.log_mode_text);
		return 2;
	}
	if (!a.id) {
		fprintf(stderr, "moonshim run: the container id is missing\n");
		run_usage(stderr);
		return 2;
	}
	return run_container(&a);
}
