/*
 * supervise.c — one sv per supervised container process, on the caller's
 * runtime (`run`'s own rt_main, or the containerd shim's): an exit waiter
 * on each process's pidfd, a signal forwarder on a signalfd (run mode),
 * the cgroup watcher feeding the event stream and the policies, the Lua
 * world (checks, policies, the built-in default policy), the Go watch and
 * its stderr tap, the stdio plumbing (log file or pty relay), and the
 * restarts policies ask for (container.restart) where the mode offers them.
 *
 * sv_start sets it all up in the caller's goroutine and leaves the
 * following to a goroutine of its own (the "main" goroutine below), which
 * closes done once everything is drained and stopped (sv_wait).
 *
 * The main goroutine follows one process (a generation) at a time. When
 * it exits, main empties the cgroup and drains the process's pty, then
 * hands the exit to the policies and waits for those handlers: one may
 * restart the container, and the run goes on with the new process. The
 * run is over once the exit's handlers ended (or EXIT_HANDLERS_WAIT_NS
 * passed) with no restart under way; main then makes sure every output
 * byte is written and returns the last process's status.
 *
 * A restart runs on the calling handler's goroutine, one at a time: stop
 * the process as container.stop does, wait until main finished it (the
 * cgroup is empty), wait out the backoff, make a new init from the same
 * spec and options with the fork helper (same cgroup, same --log pipes,
 * a fresh pty relayed as the first), and point everything at it: signal
 * forwarding, the policies' container.*, exec.container, the checks'
 * network namespace, the checks themselves (starting over), the caller's
 * state record, a "restart" event. The backoff follows Docker's restart
 * delay: none for the first restart, then BACKOFF_BASE_NS doubling per
 * restart in a row up to BACKOFF_MAX_NS; a process that ran
 * BACKOFF_RESET_NS starts the count over.
 *
 * A user's TERM, INT or QUIT is forwarded as before and also ends the
 * run: no restart starts after it, one waiting out its backoff gives up
 * at once, one stopping its process makes no new one, and one that was
 * already making it passes the signal on to the new process.
 */
#define _GNU_SOURCE
#include "supervise.h"

#include "luaengine.h"
#include "gowatch.h"
#include "oci.h"
#include "forkhelper.h"
#include "io.h"
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* After the init exits, how long the rest of the cgroup gets to die. */
#define REAP_TIMEOUT_NS (5 * 1000000000LL)
#define REAP_POLL_NS    (5 * 1000000LL)
/* cg_memory_events is this many int64_t counters, low first */
#define MEM_EVENT_FIELDS ((int)(sizeof(cg_memory_events) / sizeof(int64_t)))
/* Time given to notifications already raised when the process exited. */
#define NOTIFY_GRACE_NS (200 * 1000LL)
/* distinct PSI rules the policies may ask the watcher for */
#define SV_MAX_PSI_RULES 16
/* How long an exit's handlers may take to decide on a restart. */
#define EXIT_HANDLERS_WAIT_NS (10 * 1000000000LL)
/* The restart delay: none for the first restart, then this, doubled per
 * restart in a row (Docker starts at 100 ms, Kubernetes at 10 s) ... */
#define BACKOFF_BASE_NS (1 * 1000000000LL)
/* ... up to Kubernetes' CrashLoopBackOff cap of 5 minutes; */
#define BACKOFF_MAX_NS (300 * 1000000000LL)
/* a process that ran this long starts the count over (Docker's rule;
 * Kubernetes waits 10 minutes). */
#define BACKOFF_RESET_NS (10 * 1000000000LL)
/* After SIGKILL, how long a restart waits for main to finish the process
 * (main gives the rest of the cgroup REAP_TIMEOUT_NS). */
#define RESTART_KILL_WAIT_NS (REAP_TIMEOUT_NS + 5 * 1000000000LL)
/* How often an exit is polled for when the pidfd cannot be (or waitid
 * failed for a moment). */
#define EXIT_POLL_NS (10 * 1000000LL)
/* The status of a process whose exit cannot be known (Docker's 255). */
#define EXIT_UNKNOWN 255
/* Messages to main: a few per process, read at once. */
#define CTL_CAP 16

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* The user's signals that end the run: no more restarts after one. */
static bool ends_run(int sig) {
	return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT;
}

void sv_block_signals(void) {
	sigset_t s;
	sigemptyset(&s);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&s, forwarded[i]);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

typedef struct sv sv_state;

/* One process of the run: the first, or one a restart made. */
typedef struct sv_gen {
	sv_state *st;
	int n;                  /* restarts before it: 0 for the first */
	ct_proc p;              /* its own fds (o->proc is the current process) */
	int64_t started, ended; /* rt_now() */
	int status;             /* its exit status, once it exited */
	tty_relay *relay;       /* its pty relayed, or NULL */
	rt_chan *finished;      /* closed once it exited, the cgroup is empty and the pty drained */
} sv_gen;

/* What main hears about (on ctl). */
enum { MSG_EXITED, MSG_HANDLED, MSG_RESTARTED, MSG_RESTART_FAILED };
typedef struct {
	int kind;
	int n;     /* MSG_HANDLED: the generation whose exit was handled */
	sv_gen *g; /* MSG_EXITED: the process; MSG_RESTARTED: the one replaced */
} sv_msg;

/* The Lua world of the container's checks and policies. */
typedef struct {
	lw_world *w;
	hk_checks *checks;
	pl_engine *policies;
	int netns_fd;
	ev_log *events;
	la_container ct; /* exec.container's target */
	json_t *scripts; /* [{"name","kind"}] loaded, for the publisher */
} lua_side;

struct sv {
	sv_opts opts; /* the caller's, copied */
	const sv_opts *o;
	rt_chan *ctl; /* sv_msg, to main */
	rt_pollfd *sig_pd;
	rt_waitgroup wg;
	rt_chan *cg_events;
	cg_memory_events mem_seen; /* totals of the last memory event streamed */
	bool mem_known;
	pl_engine *policies; /* NULL without --policy */
	lua_side *ls;
	rt_mutex mu;        /* guards the fields below */
	sv_gen *cur;        /* the process signals go to */
	bool restarting;    /* a container.restart is under way */
	bool ending;        /* main decided the run is over */
	int user_sig;       /* the user's TERM, INT or QUIT, once one came */
	rt_chan *user_stop; /* closed when user_sig is set */
	int restarts;       /* made so far */
	int streak;         /* restarts in a row of short-lived processes */
	int old_netns;      /* the replaced process's namespace fd (closed at the next restart) */
	gw *go;             /* --go-watch on the workload, or NULL */
	int go_netns;       /* where its scraper dials; and the replaced one, as old_netns */
	int go_old_netns;
	/* what main tears down at the end */
	lua_side lua;
	int sfd;
	cg_watch *w;
	lf_log *log;
	gw *self;
	tap *tp;
	bool start_failed;
	char started_at[48]; /* the current process's start, RFC 3339 (published) */
	int status;          /* sv_wait's */
	rt_chan *done;       /* closed once the run is over and all is stopped */
};

static sv_gen *gen_new(sv_state *st, const ct_proc *p) {
	sv_gen *g = malloc(sizeof *g);
	rt_chan *finished = rt_chan_new(1, 0);
	if (!g || !finished) {
		free(g);
		if (finished)
			rt_chan_free(finished);
		return NULL;
	}
	*g = (sv_gen){.st = st, .p = *p, .started = rt_now(), .finished = finished};
	return g;
}

static void gen_free(sv_gen *g) {
	rt_chan_free(g->finished);
	free(g);
}

static void send_msg(sv_state *st, int kind, int n, sv_gen *g) {
	sv_msg m = {.kind = kind, .n = n, .g = g};
	rt_chan_send(st->ctl, &m);
}

/* waitid on a pidfd without blocking: 0 (si_pid 0 while it runs) or
 * -errno, read where no park came before (rt.h: thread-locals). */
__attribute__((noinline)) static int wait_pidfd(int pidfd, siginfo_t *si) {
	*si = (siginfo_t){0};
	return waitid((idtype_t)P_PIDFD, (id_t)pidfd, si, WEXITED | WNOHANG) < 0 ? -errno : 0;
}

static void exit_waiter(void *arg) {
	sv_gen *g = arg;
	int perr;
	/* without a pollfd (the netpoller refused the pidfd) the exit is
	 * polled for: a blocking waitid would hold our only P, and a process
	 * held at exec waits for main, which would never run again */
	rt_pollfd *pd = rt_poll_open(g->p.pidfd, &perr);
	if (pd) {
		rt_poll_wait(pd, RT_POLL_READ, RT_FOREVER);
		rt_poll_close(pd);
	}
	siginfo_t si;
	for (;;) {
		int rc = wait_pidfd(g->p.pidfd, &si);
		if (rc == 0 && si.si_pid)
			break;
		if (rc == -ECHILD || rc == -EBADF || rc == -EINVAL) { /* never ours to reap */
			fprintf(stderr, "moonshim: waiting for %d: %s\n", g->p.pid, strerror(-rc));
			si = (siginfo_t){.si_code = CLD_EXITED, .si_status = EXIT_UNKNOWN};
			break;
		}
		/* not exited yet, or a transient failure (EINTR, ENOMEM): again */
		rt_sleep(EXIT_POLL_NS);
	}
	g->status = si.si_code == CLD_EXITED ? si.si_status & 0xff : 128 + si.si_status;
	g->ended = rt_now();
	send_msg(g->st, MSG_EXITED, g->n, g);
}

static void signal_forwarder(void *arg) {
	sv_state *st = arg;
	struct signalfd_siginfo si;
	while (rt_read(st->sig_pd, &si, sizeof si, RT_FOREVER) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;
		rt_mutex_lock(&st->mu);
		const ct_proc *p = &st->cur->p;
		if (sig == SIGWINCH) {
			if (p->pty_master >= 0)
				tty_resize(p->pty_master, STDIN_FILENO);
		} else {
			if (ends_run(sig) && !st->user_sig) {
				st->user_sig = sig;
				rt_chan_close(st->user_stop);
			}
			if (st->o->debug)
				fprintf(stderr, "moonshim: forwarding signal %d to %d\n", sig,
				        p->pid);
			/* during a restart's backoff the process is gone: ESRCH */
			syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
		}
		rt_mutex_unlock(&st->mu);
	}
	rt_wg_done(&st->wg);
}

static void cgroup_events(void *arg) {
	sv_state *st = arg;
	cg_event e;
	while (rt_chan_recv(st->cg_events, &e)) {
		if (e.kind == CG_EV_MEMORY) {
			st->mem_seen = e.mem.total;
			st->mem_known = true;
		}
		if (st->o->on_cgroup)
			st->o->on_cgroup(st->o->on_cgroup_arg, &e);
		json_t *fields = ev_cgroup_fields(&e);
		pl_dispatch(st->policies, ev_cgroup_type(&e), fields);
		ev_emit(st->o->events, ev_cgroup_type(&e), fields);
	}
	rt_wg_done(&st->wg);
}

/* A last look at memory.events once the watcher stopped: the kernel may
 * count an OOM kill after the notification the watcher last read (the
 * victim's exit and the counter race), and the stream must not lose it;
 * nor must on_cgroup (a container OOM-killed within milliseconds of its
 * start can be gone before the watcher read its first baseline). */
static void last_memory_events(sv_state *st) {
	cg_memory_events now;
	cg_err e = {0};
	if (cg_read_memory_events(st->o->cgroup, false, &now, &e))
		return;
	cg_memory_events was = st->mem_known ? st->mem_seen : (cg_memory_events){0};
	cg_event ev = {.kind = CG_EV_MEMORY, .at = rt_now()};
	/* field by field, never backwards: on a hybrid host the watcher counts
	 * soft-limit crossings as "high", which memory.events there lacks */
	int64_t *t = &ev.mem.total.low, *d = &ev.mem.delta.low;
	const int64_t *n = &now.low, *w = &was.low;
	for (int i = 0; i < MEM_EVENT_FIELDS; i++) {
		t[i] = n[i] > w[i] ? n[i] : w[i];
		d[i] = t[i] - w[i];
	}
	for (int i = 0; i < MEM_EVENT_FIELDS; i++)
		if (d[i] > 0) {
			if (st->o->on_cgroup)
				st->o->on_cgroup(st->o->on_cgroup_arg, &ev);
			ev_emit(st->o->events, ev_cgroup_type(&ev), ev_cgroup_fields(&ev));
			return;
		}
}

/* Wait until the cgroup holds no process: after the init of a pid
 * namespace exits the kernel kills the rest, which takes a moment; without
 * one, whatever the init left behind is killed here. */
static void empty_cgroup(cg *c, bool kill_rest) {
	cg_err e = {0};
	if (kill_rest && cg_populated(c, &e) == 1)
		cg_kill(c, SIGKILL, &e);
	for (int64_t end = rt_deadline_in(REAP_TIMEOUT_NS); rt_now() < end;) {
		if (cg_populated(c, &e) != 1)
			return;
		rt_sleep(REAP_POLL_NS);
	}
}

/* ─── Lua checks and policies ───────────────────────────────────────── */

/* Health events go to the stream and to the policies. */
static void check_event(void *arg, const char *type, json_t *fields) {
	lua_side *ls = arg;
	pl_dispatch(ls->policies, type, fields);
	ev_emit(ls->events, type, fields);
}

/* The Go watcher's findings go to the policies and the stream. */
static void go_event(void *arg, const char *type, json_t *fields) {
	sv_state *st = arg;
	pl_dispatch(st->policies, type, fields);
	ev_emit(st->o->events, type, fields);
}

/* What policies emit goes to the stream only (a handler reacting to its
 * own emits could loop). */
static void policy_event(void *arg, const char *type, json_t *fields) {
	ev_emit(((lua_side *)arg)->events, type, fields);
}

/* The container's network namespace when it has its own, so checks reach
 * its localhost; -1 otherwise. */
static int container_netns(pid_t pid) {
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
	if (stat(path, &a) < 0 || stat("/proc/self/ns/net", &b) < 0 || a.st_ino == b.st_ino)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* A script loaded: listed in what is published. */
static void loaded(lua_side *ls, const char *name, const char *kind) {
	if (!ls->scripts)
		ls->scripts = json_array();
	json_array_append_new(ls->scripts, json_pack("{s:s, s:s}", "name", name, "kind", kind));
}

static void load_scripts(const sv_opts *o, lua_side *ls, const char *const *files, int n,
                         const char *flag) {
	for (int i = 0; i < n; i++) {
		ms_err err = {0};
		if (lw_load_file(ls->w, files[i], &err)) {
			fprintf(stderr, "moonshim: %s %s\n", flag, err.msg);
			ev_emit(o->events, "error",
			        json_pack("{s:s, s:s}", "script", files[i], "message", err.msg));
		} else {
			loaded(ls, files[i], !strcmp(flag, "--check") ? "check" : "policy");
		}
	}
}

/* policies/default.lua, compiled in (Makefile) */
extern const unsigned char moonshim_lua_default[];
extern const unsigned long moonshim_lua_default_len;
#define DEFAULT_POLICY_NAME "policies/default.lua (built in)"

static int restart_container(void *arg, const pl_restart *r, ms_err *err);
static void poststart(sv_state *st, pid_t pid);

/* Whether container.restart can remake this run's container: a spec to
 * make it from, and a cgroup that is all of it. */
static bool restartable(const sv_opts *o) {
	return o->offer_restart && o->spec && o->create && o->cgroup && o->reap_cgroup;
}

/* A script given as Lua text; reported and left out when it does not load. */
static void load_source(const sv_opts *o, lua_side *ls, const char *name, const char *src,
                        const char *kind) {
	ms_err err = {0};
	if (!src)
		return;
	if (lw_load(ls->w, name, src, strlen(src), &err)) {
		fprintf(stderr, "moonshim: %s\n", err.msg);
		ev_emit(o->events, "error",
		        json_pack("{s:s, s:s}", "script", name, "message", err.msg));
	} else {
		loaded(ls, name, kind);
	}
}

/* One world for the container's checks and policies. A script that does
 * not load is reported and left out; the others run. */
static void start_lua(const sv_opts *o, sv_state *st, lua_side *ls) {
	ms_err err = {0};
	lw_config lc = {.name = o->name ? o->name : "container"};
	ls->netns_fd = -1;
	ls->events = o->events;
	st->ls = ls;
	/* with no --policy the built-in one reports (dry run) to the event
	 * stream; without a stream it would have no one to tell */
	bool builtin = !o->npolicies && !o->policy_src && ev_written(o->events);
	bool checks = o->nchecks || o->check_src;
	if ((!checks && !builtin && !o->npolicies && !o->policy_src) ||
	    !(ls->w = lw_new(&lc, &err)))
		return;
	ls->netns_fd = container_netns(o->proc->pid);
	la_set_netns(ls->w, ls->netns_fd);
	if (o->spec && o->create) {
		ls->ct = (la_container){.s = o->spec, .init_pid = o->proc->pid, .o = *o->create};
		for (int i = 0; i < 3; i++)
			ls->ct.o.stdio[i] = -1;
		la_set_container(ls->w, &ls->ct);
	}
	la_open(ls->w);
	pl_env env = {.cgroup = o->cgroup,
	              .pid = o->proc->pid,
	              .pidfd = o->proc->pidfd,
	              .emit = policy_event,
	              .emit_arg = ls,
	              .restart = restartable(o) ? restart_container : NULL,
	              .restart_arg = st};
	ls->policies = pl_new(ls->w, &env);
	ls->checks = hk_new(ls->w, check_event, ls);
	load_scripts(o, ls, o->policies, o->npolicies, "--policy");
	load_source(o, ls, o->policy_name, o->policy_src, "policy");
	if (builtin && lw_load(ls->w, DEFAULT_POLICY_NAME, (const char *)moonshim_lua_default,
	                       moonshim_lua_default_len, &err)) {
		fprintf(stderr, "moonshim: %s\n", err.msg);
		ev_emit(o->events, "error", json_pack("{s:s}", "message", err.msg));
	} else if (builtin) {
		loaded(ls, DEFAULT_POLICY_NAME, "policy");
	}
	load_scripts(o, ls, o->checks, o->nchecks, "--check");
	load_source(o, ls, o->check_name, o->check_src, "check");
	st->policies = ls->policies;
	if (hk_start(ls->checks, &err)) {
		fprintf(stderr, "moonshim: checks: %s\n", err.msg);
		ev_emit(o->events, "error", json_pack("{s:s}", "message", err.msg));
	}
	ms_trace(o->debug, "%d health checks, %d policy handlers", hk_count(ls->checks),
	         pl_handlers(ls->policies));
}

/* The run is over (the policies saw the last exit): go() tasks and waits
 * on sleep or channels end, the checks stop, the handlers finish. */
static void stop_lua(lua_side *ls, sv_state *st) {
	json_decref(ls->scripts);
	lw_stop_tasks(ls->w);
	hk_stop(ls->checks);
	st->policies = NULL;
	pl_stop(ls->policies);
	lw_free(ls->w);
	if (ls->netns_fd >= 0)
		close(ls->netns_fd);
	if (st->old_netns >= 0)
		close(st->old_netns);
}

/* ─── what is published (sv_opts.publish) ───────────────────────────── */

static json_t *health_section(void *arg) {
	return hk_json(((sv_state *)arg)->lua.checks);
}

/* under st->mu: main takes st->go away (under it) before stopping it */
static json_t *go_section(void *arg) {
	sv_state *st = arg;
	rt_mutex_lock(&st->mu);
	json_t *j = gw_json(st->go);
	rt_mutex_unlock(&st->mu);
	return j;
}

/* The "process" section: g running (its start is now), or stopped. */
static void publish_process(sv_state *st, const sv_gen *g, bool stopped) {
	pb *p = st->o->publish;
	if (!p)
		return;
	if (!stopped)
		ev_time(st->started_at, sizeof st->started_at);
	json_t *j = json_pack("{s:s, s:i, s:s, s:i}", "status", stopped ? "stopped" : "running",
	                      "pid", g->p.pid, "started", st->started_at, "restarts", g->n);
	if (stopped)
		json_object_set_new(j, "exit_status", json_integer(st->status));
	pb_set(p, "process", j);
}

/* CRI annotation → label (cAdvisor's and kubelet's label names) */
static const char *const cri_labels[][2] = {
    {"io.kubernetes.cri.container-name", "container"},
    {"io.kubernetes.cri.sandbox-name", "pod"},
    {"io.kubernetes.cri.sandbox-namespace", "namespace"},
};

pb *sv_publisher(const char *dir, const char *id, const char *ns, const spec *s,
                 const char *cgroup_rel) {
	const char *off = getenv("MOONSHIM_NO_PUBLISH");
	if (off && !strcmp(off, "1"))
		return NULL;
	json_t *labels = json_object();
	for (size_t i = 0; s && i < sizeof cri_labels / sizeof *cri_labels; i++) {
		json_t *v = json_object_get(s->annotations, cri_labels[i][0]);
		if (json_is_string(v))
			json_object_set(labels, cri_labels[i][1], v);
	}
	json_t *id_ = json_pack("{s:s, s:s, s:o, s:{s:i, s:I}, s:s?}", "id", id, "mode",
	                        ns ? "containerd" : "run", "labels", labels, "supervisor", "pid",
	                        (int)getpid(), "start_time", (json_int_t)ct_start_time(getpid()),
	                        "cgroup", cgroup_rel);
	if (id_ && ns)
		json_object_set_new(id_, "namespace", json_string(ns));
	ms_err err = {0};
	pb *p = pb_open(dir, id_, &err);
	if (!p)
		fprintf(stderr, "moonshim: warning: container %s: %s (not published)\n", id,
		        err.msg);
	return p;
}

static void start_publishing(sv_state *st, const sv_gen *g) {
	pb *p = st->o->publish;
	if (!p)
		return;
	publish_process(st, g, false);
	pb_set(p, "scripts", st->lua.scripts ? json_copy(st->lua.scripts) : json_array());
	pb_provide(p, "health", health_section, st);
	pb_provide(p, "go", go_section, st);
	pb_start(p);
}

/* ─── restart ───────────────────────────────────────────────────────── */

/* Relay the process's pty (process.terminal) to our terminal, or to the
 * fds the mode gave (containerd's FIFOs). */
static void start_relay(sv_gen *g) {
	const sv_opts *o = g->st->o;
	ms_err err = {0};
	if (g->p.pty_master < 0)
		return;
	if (!o->relay)
		tty_resize(g->p.pty_master, STDIN_FILENO);
	int in = o->relay ? o->relay[0] : STDIN_FILENO,
	    out = o->relay ? o->relay[1] : STDOUT_FILENO;
	if (!(g->relay = tty_relay_start(g->p.pty_master, in, out, &err)))
		fprintf(stderr, "moonshim: %s: %s\n", o->name ? o->name : "relay", err.msg);
}

/* As container.stop: TERM, the grace period, then SIGKILL to the cgroup.
 * True once main finished the process (the cgroup is empty). */
static bool stop_gen(sv_state *st, sv_gen *g, int64_t grace_ns) {
	rt_case fin[1] = {{.c = g->finished, .dir = RT_RECV}};
	if (rt_select(fin, 1, 0) == 0)
		return true;
	/* g's pidfd stays open until main hears the restart is done */
	syscall(SYS_pidfd_send_signal, g->p.pidfd, SIGTERM, NULL, 0);
	if (rt_select(fin, 1, rt_deadline_in(grace_ns)) == 0)
		return true;
	cg_err e = {0};
	if (cg_kill(st->o->cgroup, SIGKILL, &e))
		syscall(SYS_pidfd_send_signal, g->p.pidfd, SIGKILL, NULL, 0);
	return rt_select(fin, 1, rt_deadline_in(RESTART_KILL_WAIT_NS)) == 0;
}

/* The wait before the next process (see the top of the file). */
static int64_t next_backoff(sv_state *st, const sv_gen *old, int64_t cap) {
	rt_mutex_lock(&st->mu);
	if (old->ended - old->started >= BACKOFF_RESET_NS)
		st->streak = 0;
	int64_t wait = 0;
	for (int i = 0; i < st->streak && wait < cap; i++)
		wait = wait ? wait * 2 : BACKOFF_BASE_NS;
	st->streak++;
	rt_mutex_unlock(&st->mu);
	return wait < cap ? wait : cap;
}

/* A new init from the container's spec and options, as our child. */
static int make_process(const sv_opts *o, ct_proc *p, ms_err *err) {
	fh_job j = {.s = o->spec, .o = *o->create};
	j.o.clone_parent = true;
	j.o.hold = false;
	j.o.attach_after_clone = true; /* the cgroup may have seen cgroup.kill */
	if (fh_create(&j)) {
		*err = j.err;
		return err->code;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, j.pid, 0);
	if (pidfd < 0) {
		int e = errno;
		kill(j.pid, SIGKILL);
		rt_syscall_enter();
		while (waitpid(j.pid, NULL, 0) < 0 && errno == EINTR) {
		}
		rt_syscall_exit();
		if (j.pty_master >= 0)
			close(j.pty_master);
		return ms_fail(err, -e, "pidfd_open %d: %s", j.pid, strerror(e));
	}
	*p = (ct_proc){.pid = j.pid, .pidfd = pidfd, .pty_master = j.pty_master};
	return 0;
}

/* Point everything at the new process g, which replaces old. */
static void install(sv_state *st, sv_gen *old, sv_gen *g, int64_t backoff_ns) {
	const sv_opts *o = st->o;
	lua_side *ls = st->ls;
	rt_mutex_lock(&st->mu);
	g->n = ++st->restarts;
	st->cur = g;
	*o->proc = g->p;
	int sig = st->user_sig;
	if (st->go) { /* the scraper dials the new process's namespace, history afresh
		       * (under mu: main takes st->go away before it stops it) */
		if (st->go_old_netns >= 0)
			close(st->go_old_netns);
		st->go_old_netns = st->go_netns;
		st->go_netns = container_netns(g->p.pid);
		gw_retarget(st->go, st->go_netns);
	}
	rt_mutex_unlock(&st->mu);
	pl_set_process(ls->policies, g->p.pid, g->p.pidfd);
	ls->ct.init_pid = g->p.pid;
	if (ls->w) { /* a task may still dial with the old one: it is closed a restart later */
		if (st->old_netns >= 0)
			close(st->old_netns);
		st->old_netns = ls->netns_fd;
		ls->netns_fd = container_netns(g->p.pid);
		la_set_netns(ls->w, ls->netns_fd);
	}
	if (sig) /* the user's stop came while the process was being made */
		syscall(SYS_pidfd_send_signal, g->p.pidfd, sig, NULL, 0);
	if (o->restarted)
		o->restarted(o->restarted_arg, &g->p);
	publish_process(st, g, false);
	hk_restart(ls->checks);
	json_t *f = json_pack("{s:i, s:i, s:f, s:i, s:i}", "count", g->n, "pid", g->p.pid,
	                      "backoff_s", (double)backoff_ns / 1e9, "previous_pid", old->p.pid,
	                      "exit_status", old->status);
	pl_dispatch(st->policies, "restart", f);
	ev_emit(o->events, "restart", f);
	ms_trace(o->debug, "restart %d: %d replaces %d", g->n, g->p.pid, old->p.pid);
	rt_mutex_lock(&st->mu);
	st->restarting = false;
	rt_mutex_unlock(&st->mu);
	/* before g's exit waiter: main must follow g before g's exit comes */
	send_msg(st, MSG_RESTARTED, g->n, old);
	rt_go(exit_waiter, g, "exit waiter");
}

static int restart_steps(sv_state *st, sv_gen *old, const pl_restart *r, ms_err *err) {
	const sv_opts *o = st->o;
	hk_pause(st->ls->checks, true);
	if (!stop_gen(st, old, r->grace_ns)) {
		hk_pause(st->ls->checks, false); /* it runs on */
		return ms_fail(err, -ETIMEDOUT, "process %d is still there after SIGKILL",
		               old->p.pid);
	}
	cg_err ce = {0};
	if (cg_populated(o->cgroup, &ce) == 1)
		return ms_fail(err, -EBUSY, "the cgroup still has processes");
	cg_freeze(o->cgroup, false, &ce); /* a frozen cgroup would hold the new process */
	int64_t backoff =
	    next_backoff(st, old, r->backoff_max_ns >= 0 ? r->backoff_max_ns : BACKOFF_MAX_NS);
	ms_trace(o->debug, "restart: %d finished (status %d), backoff %.3f s", old->p.pid,
	         old->status, (double)backoff / 1e9);
	rt_case stop[1] = {{.c = st->user_stop, .dir = RT_RECV}};
	if (rt_select(stop, 1, rt_deadline_in(backoff)) == 0) /* a closed channel: at once */
		return ms_fail(err, -ECANCELED, "the user stopped the run (signal %d)",
		               st->user_sig);
	sv_gen *g = gen_new(st, &(ct_proc){.pid = -1, .pidfd = -1, .pty_master = -1});
	if (!g)
		return ms_fail(err, -ENOMEM, "out of memory");
	if (make_process(o, &g->p, err)) {
		gen_free(g);
		return err->code;
	}
	g->started = rt_now();
	start_relay(g);
	install(st, old, g, backoff);
	poststart(st, g->p.pid);
	return 0;
}

/* pl_env.restart: container.restart's work, on the caller's goroutine. */
static int restart_container(void *arg, const pl_restart *r, ms_err *err) {
	sv_state *st = arg;
	rt_mutex_lock(&st->mu);
	const char *no = st->restarting ? "a restart is already under way"
	                 : st->user_sig ? "the user stopped the run"
	                 : st->ending   ? "the run is over"
	                                : NULL;
	sv_gen *old = st->cur;
	st->restarting = st->restarting || !no;
	rt_mutex_unlock(&st->mu);
	if (no)
		return ms_fail(err, -EBUSY, "container.restart: %s", no);
	int rc = restart_steps(st, old, r, err);
	if (rc) {
		ms_wrap(err, "container.restart");
		ev_emit(st->o->events, "error", json_pack("{s:s}", "message", err->msg));
		rt_mutex_lock(&st->mu);
		st->restarting = false;
		rt_mutex_unlock(&st->mu);
		send_msg(st, MSG_RESTART_FAILED, old->n, old);
	}
	return rc;
}

/* ─── the run ───────────────────────────────────────────────────────── */

/* g exited: nothing of it may be left running (its pid namespace's init
 * took the rest along, or we kill it) and its pty is drained; a restart
 * waiting for it may go on. */
static void finish_gen(sv_state *st, sv_gen *g) {
	const sv_opts *o = st->o;
	ms_trace(o->debug, "%d exited, status %d", g->p.pid, g->status);
	hk_pause(st->ls->checks, true);
	if (o->cgroup && o->reap_cgroup)
		empty_cgroup(o->cgroup, true);
	ms_trace(o->debug, "cgroup empty");
	if (g->relay)
		tty_relay_wait(g->relay);
	g->relay = NULL;
	rt_chan_close(g->finished);
}

typedef struct {
	sv_state *st;
	int n;
} handled_arg;

static void exit_handled(void *arg) {
	handled_arg *h = arg;
	send_msg(h->st, MSG_HANDLED, h->n, NULL);
	free(h);
}

/* The policies see g's exit; returns the process a restart replaced it
 * with, or NULL when the run is over. */
static sv_gen *after_exit(sv_state *st, sv_gen *g) {
	json_t *f = json_pack("{s:i, s:i, s:i}", "pid", g->p.pid, "exit_status", g->status,
	                      "restarts", g->n);
	handled_arg *h = malloc(sizeof *h);
	if (h) {
		*h = (handled_arg){st, g->n};
		pl_dispatch_then(st->policies, "exit", f, exit_handled, h);
	} else {
		pl_dispatch(st->policies, "exit", f);
	}
	json_decref(f);
	bool handled = !h;
	int64_t deadline = rt_deadline_in(EXIT_HANDLERS_WAIT_NS);
	for (;;) {
		sv_msg m = {.kind = -1};
		rt_case cs[1] = {{.c = st->ctl, .dir = RT_RECV, .elem = &m}};
		if (rt_select(cs, 1, handled ? RT_FOREVER : deadline) < 0)
			handled = true; /* a handler that takes this long decides nothing */
		if (m.kind == MSG_RESTARTED) {
			rt_mutex_lock(&st->mu);
			sv_gen *next = st->cur;
			rt_mutex_unlock(&st->mu);
			return next;
		}
		if (m.kind == MSG_HANDLED && m.n == g->n)
			handled = true;
		if (!handled)
			continue;
		rt_mutex_lock(&st->mu);
		bool over = !st->restarting && st->cur == g;
		st->ending = st->ending || over;
		rt_mutex_unlock(&st->mu);
		if (over)
			return NULL;
	}
}

/* Follow the processes until the run is over; the last one. */
static sv_gen *follow(sv_state *st, sv_gen *g) {
	for (;;) {
		sv_msg m;
		rt_chan_recv(st->ctl, &m);
		if (m.kind != MSG_EXITED || m.g != g)
			continue; /* a restart failed while g ran, or an earlier exit's handlers
			             ended */
		finish_gen(st, g);
		sv_gen *next = after_exit(st, g);
		if (!next)
			return g;
		close(g->p.pidfd); /* nothing uses them since the restart */
		if (g->p.pty_master >= 0)
			close(g->p.pty_master);
		gen_free(g);
		g = next;
	}
}

static void sv_main(void *arg);

/* Report a set-up failure that leaves the container running. */
static void report(sv_state *st, const char *prefix, const ms_err *err) {
	fprintf(stderr, "moonshim: %s%s\n", prefix, err->msg);
	ev_emit(st->o->events, "error", json_pack("{s:s}", "message", err->msg));
}

/* poststart, with the process p started: a failing hook is a warning. */
static void poststart(sv_state *st, pid_t pid) {
	const sv_opts *o = st->o;
	ms_err e = {0};
	const char *id = o->create && o->create->id ? o->create->id : o->name;
	if (o->spec && fh_hooks(o->spec, SPEC_HOOK_POSTSTART, id, "running", pid, &e)) {
		fprintf(stderr, "moonshim: warning: %s\n", e.msg);
		ev_emit(o->events, "warning", json_pack("{s:s}", "message", e.msg));
	}
}

/* Our signals to the process (run mode). */
static void start_signals(sv_state *st) {
	const sv_opts *o = st->o;
	ms_err err = {0};
	int perr;
	sigset_t sigs;
	sigemptyset(&sigs);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&sigs, forwarded[i]);
	st->sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (st->sfd < 0)
		perr = -errno;
	if (st->sfd >= 0 && (st->sig_pd = rt_poll_open(st->sfd, &perr))) {
		rt_wg_add(&st->wg, 1);
		rt_go(signal_forwarder, st, "signal forwarder");
	} else { /* the container runs on, but our TERM and INT no longer reach it */
		ms_fail(&err, perr, "signalfd: %s: signals are not forwarded to %d",
		        strerror(-perr), o->proc->pid);
		report(st, "", &err);
	}
}

static void start_watcher(sv_state *st) {
	const sv_opts *o = st->o;
	if (!o->cgroup || (!ev_enabled(o->events) && !st->policies && !o->on_cgroup))
		return;
	cg_err ce = {0};
	cg_psi_spec rules[SV_MAX_PSI_RULES];
	cg_watch_opts wo = {.psi = rules,
	                    .npsi = pl_psi_rules(st->policies, rules, SV_MAX_PSI_RULES)};
	if (!(st->cg_events = rt_chan_new(sizeof(cg_event), 64)))
		ev_emit(o->events, "error",
		        json_pack("{s:s}", "message", "cgroup watcher: out of memory"));
	else if ((st->w = cg_watch_start(o->cgroup, &wo, st->cg_events, &ce))) {
		rt_wg_add(&st->wg, 1);
		rt_go(cgroup_events, st, "cgroup events");
	} else {
		ev_emit(o->events, "error", json_pack("{s:s}", "message", ce.msg));
	}
}

static void start_log(sv_state *st) {
	const sv_opts *o = st->o;
	ms_err err = {0};
	if (!o->log_path)
		return;
	if (!(st->log = lf_open(o->log_path, o->log_buffer, o->log_mode, &err)))
		report(st, "", &err);
	if (st->log && o->out_fd >= 0)
		lf_add_stream(st->log, o->out_fd, "stdout", &err);
	if (st->log && o->err_fd >= 0)
		lf_add_stream(st->log, o->err_fd, "stderr", &err);
	if (!st->log) { /* closed pipes fail the child's writes; full ones would hang it */
		if (o->out_fd >= 0)
			close(o->out_fd);
		if (o->err_fd >= 0)
			close(o->err_fd);
	}
}

/* --go-watch: the child's stderr through the tap, its lines and the pprof
 * scrapes to the detectors */
static void start_go(sv_state *st) {
	const sv_opts *o = st->o;
	ms_err err = {0};
	if (o->go && o->go_self) /* and the same detectors on our own runtime */
		st->self = gw_watch_self(
		    o->go->interval_s,
		    &(gw_target){.netns_fd = -1, .emit = go_event, .emit_arg = st}, NULL);
	if (!o->go || o->go_err_fd < 0)
		return;
	st->go_netns = container_netns(o->proc->pid);
	gw_target gt = {.cgroup = o->cgroup,
	                .cpu_quota = o->spec ? cg_limits_cpu_cores(&o->spec->limits) : 0,
	                .netns_fd = st->go_netns,
	                .emit = go_event,
	                .emit_arg = st};
	gw *go = gw_start(o->go, &gt, pl_go_config(st->policies));
	rt_mutex_lock(&st->mu);
	st->go = go;
	rt_mutex_unlock(&st->mu);
	int sink = o->go_sink_fd >= 0 ? o->go_sink_fd : STDERR_FILENO;
	if (!(st->tp = tap_start(o->go_err_fd, sink, o->go->stderr_buffer, o->go->stderr_mode,
	                         gw_markers, gw_line, go, &err))) {
		report(st, "--go-watch: ", &err);
		close(o->go_err_fd); /* the child's stderr writes fail, never hang */
	}
}

static void sv_release(sv_state *st) {
	if (st->ctl)
		rt_chan_free(st->ctl);
	if (st->user_stop)
		rt_chan_free(st->user_stop);
	if (st->done)
		rt_chan_free(st->done);
	free(st);
}

int sv_start(const sv_opts *o, sv **out, ms_err *err) {
	sv_state *st = calloc(1, sizeof *st);
	*out = NULL;
	if (!st)
		return ms_fail(err, -ENOMEM, "supervising %d: out of memory", o->proc->pid);
	st->opts = *o;
	st->o = o = &st->opts;
	st->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	st->mu = (rt_mutex)RT_MUTEX_INIT;
	st->old_netns = st->go_netns = st->go_old_netns = st->sfd = -1;
	st->ctl = rt_chan_new(sizeof(sv_msg), CTL_CAP);
	st->user_stop = rt_chan_new(1, 0);
	st->done = rt_chan_new(1, 0);
	sv_gen *g = st->ctl && st->user_stop && st->done ? gen_new(st, o->proc) : NULL;
	if (!g) {
		pid_t pid = o->proc->pid; /* o is st's copy */
		sv_release(st);
		return ms_fail(err, -ENOMEM, "supervising %d: out of memory", pid);
	}
	st->cur = g;
	if (o->forward_signals)
		start_signals(st);
	/* the Lua world first: policies must be there for the first event */
	start_lua(o, st, &st->lua);
	start_watcher(st);
	start_log(st);
	start_go(st);
	start_relay(g);
	start_publishing(st, g);
	rt_go(exit_waiter, g, "exit waiter");
	if (o->start_fd >= 0) { /* everything watches: let it exec */
		ms_err e = {0};
		if ((st->start_failed = fh_start(o->start_fd, &e) < 0)) {
			ctcg_explain_start_failure(o->cgroup, o->spec, &e);
			report(st, "", &e);
		} else {
			poststart(st, g->p.pid);
		}
		close(o->start_fd);
	}
	rt_go(sv_main, st, "supervisor");
	*out = st;
	return 0;
}

/* The main goroutine: follow the processes, then tear everything down. */
static void sv_main(void *arg) {
	sv_state *st = arg;
	const sv_opts *o = st->o;
	ms_err err = {0};
	sv_gen *g = follow(st, st->cur);
	int status = g->status;
	/* a first process that never became the workload (its execve failed,
	 * or it died starting): the run fails as a set-up error does (1), not
	 * with a status the workload could have given */
	st->status = st->start_failed && !g->n ? 1 : status;
	/* the write ends kept for new processes: the log's EOF */
	for (int i = 0; restartable(o) && i < 3; i++)
		if (o->create->stdio[i] >= 0)
			close(o->create->stdio[i]);
	/* one pass of the netpoller, so a populated-0 notification already
	 * raised reaches the stream before the exit line */
	if (st->w)
		rt_sleep(NOTIFY_GRACE_NS);
	json_t *fields = json_pack("{s:i, s:i}", "pid", g->p.pid, "exit_status", status);
	if (g->n)
		json_object_set_new(fields, "restarts", json_integer(g->n));
	if (st->tp) { /* the child's side is closed: the tap drains, then the log's pipe closes */
		tap_stats ts;
		tap_wait(st->tp, &ts);
		if (ts.bytes_dropped)
			json_object_set_new(fields, "stderr_dropped_bytes",
			                    json_integer((json_int_t)ts.bytes_dropped));
	}
	if (o->go && o->go_sink_fd >= 0)
		close(o->go_sink_fd);
	rt_mutex_lock(&st->mu);
	gw *go = st->go;
	st->go = NULL;
	rt_mutex_unlock(&st->mu);
	gw_stop(go);
	gw_stop(st->self);
	if (st->go_netns >= 0)
		close(st->go_netns);
	if (st->go_old_netns >= 0)
		close(st->go_old_netns);
	if (st->log) {
		lf_stats ls;
		lf_close(st->log, &ls);
		if (ls.all.dropped_bytes)
			json_object_set_new(fields, "log_dropped_bytes",
			                    json_integer((json_int_t)ls.all.dropped_bytes));
		if (ls.write_error) { /* output was lost: say so, once */
			json_object_set_new(fields, "log_lost_bytes",
			                    json_integer((json_int_t)ls.lost_bytes));
			ms_fail(&err, ls.write_error, "--log %s: writing: %s (%llu bytes lost)",
			        o->log_path, strerror(-ls.write_error),
			        (unsigned long long)ls.lost_bytes);
			report(st, "", &err);
		}
	}
	if (st->sig_pd)
		rt_poll_evict(st->sig_pd);
	if (st->w) {
		cg_watch_stop(st->w);
		rt_chan_close(st->cg_events);
	}
	rt_wg_wait(&st->wg);
	if (st->w || (o->cgroup && o->on_cgroup)) /* on_cgroup hears it even without a watcher */
		last_memory_events(st);
	publish_process(st, g, true);
	pb_withdraw(o->publish, st); /* the checks' last health stays */
	stop_lua(&st->lua, st);
	if (st->sig_pd)
		rt_poll_close(st->sig_pd);
	if (st->sfd >= 0)
		close(st->sfd);
	if (st->cg_events)
		rt_chan_free(st->cg_events);
	gen_free(g); /* its fds are in *o->proc, the caller's */
	ev_emit(o->events, "exit", fields);
	pb_stop(o->publish);
	rt_chan_close(st->done);
}

int sv_wait(sv *s) {
	rt_chan_recv(s->done, NULL);
	return s->status;
}

void sv_free(sv *s) {
	if (s)
		sv_release(s);
}

static int supervise_main(void *arg) {
	const sv_opts *o = arg;
	sv *s;
	ms_err err = {0};
	if (sv_start(o, &s, &err)) {
		fprintf(stderr, "moonshim: %s\n", err.msg);
		return 1;
	}
	mem_settle(); /* set-up is over: keep only what supervising touches */
	int status = sv_wait(s);
	sv_free(s);
	return status;
}

int sv_supervise(const sv_opts *o) {
	rt_config cfg = {.procs = 1, .no_sigquit_dump = true, .quiet_leaks = true};
	int status = rt_main(&cfg, supervise_main, (void *)o);
	return status == RT_MAIN_FAILED ? -errno : status;
}
