/*
 * supervise.c — one rt_main per supervised process: an exit waiter on the
 * pidfd, a signal forwarder on a signalfd, the cgroup watcher feeding the
 * event stream, and the stdio plumbing (log file or pty relay). The main
 * goroutine waits for the exit, then makes sure nothing of the container
 * is left running and every output byte is written before it returns.
 */
#define _GNU_SOURCE
#include "supervise.h"

#include "checks.h"
#include "logfile.h"
#include "luaapi.h"
#include "luaworld.h"
#include "policy.h"
#include "rt.h"
#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Records waiting for the log file; beyond this the child's output is
 * dropped and counted rather than slowing the child. */
#define LOG_BUFFER_BYTES (1 << 20)
/* After the init exits, how long the rest of the cgroup gets to die. */
#define REAP_TIMEOUT_NS (5 * 1000000000LL)
#define REAP_POLL_NS    (5 * 1000000LL)
/* cg_memory_events is this many int64_t counters, low first */
#define MEM_EVENT_FIELDS ((int)(sizeof(cg_memory_events) / sizeof(int64_t)))
/* Time given to notifications already raised when the process exited. */
#define NOTIFY_GRACE_NS (200 * 1000LL)
/* distinct PSI rules the policies may ask the watcher for */
#define SV_MAX_PSI_RULES 16

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

void sv_block_signals(void) {
	sigset_t s;
	sigemptyset(&s);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&s, forwarded[i]);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

typedef struct {
	const sv_opts *o;
	rt_chan *exited; /* int: the wait status */
	rt_pollfd *sig_pd;
	rt_waitgroup wg;
	rt_chan *cg_events;
	cg_memory_events mem_seen; /* totals of the last memory event streamed */
	bool mem_known;
	pl_engine *policies; /* NULL without --policy */
} sv_state;

static void exit_waiter(void *arg) {
	sv_state *st = arg;
	int perr, status = 0;
	rt_pollfd *pd = rt_poll_open(st->o->proc->pidfd, &perr);
	if (pd) {
		rt_poll_wait(pd, RT_POLL_READ, RT_FOREVER);
		rt_poll_close(pd);
	}
	siginfo_t si = {0};
	/* the pidfd is readable once the process exited: this does not block */
	while (waitid((idtype_t)P_PIDFD, (id_t)st->o->proc->pidfd, &si, WEXITED) < 0 &&
	       errno == EINTR) {
	}
	status = si.si_code == CLD_EXITED ? si.si_status & 0xff : 128 + si.si_status;
	rt_chan_send(st->exited, &status);
}

static void signal_forwarder(void *arg) {
	sv_state *st = arg;
	struct signalfd_siginfo si;
	while (rt_read(st->sig_pd, &si, sizeof si, RT_FOREVER) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGWINCH) {
			if (st->o->proc->pty_master >= 0)
				tty_resize(st->o->proc->pty_master, STDIN_FILENO);
			continue;
		}
		if (st->o->debug)
			fprintf(stderr, "moonshim: forwarding signal %d to %d\n", sig,
			        st->o->proc->pid);
		syscall(SYS_pidfd_send_signal, st->o->proc->pidfd, sig, NULL, 0);
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
		json_t *fields = ev_cgroup_fields(&e);
		pl_dispatch(st->policies, ev_cgroup_type(&e), fields);
		ev_emit(st->o->events, ev_cgroup_type(&e), fields);
	}
	rt_wg_done(&st->wg);
}

/* A last look at memory.events once the watcher stopped: the kernel may
 * count an OOM kill after the notification the watcher last read (the
 * victim's exit and the counter race), and the stream must not lose it. */
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

/* ─── Lua checks ────────────────────────────────────────────────────── */

typedef struct {
	lw_world *w;
	hk_checks *checks;
	pl_engine *policies;
	int netns_fd;
	ev_log *events;
	la_container ct; /* exec.container's target */
} lua_side;

/* Health events go to the stream and to the policies. */
static void check_event(void *arg, const char *type, json_t *fields) {
	lua_side *ls = arg;
	pl_dispatch(ls->policies, type, fields);
	ev_emit(ls->events, type, fields);
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

static void load_scripts(const sv_opts *o, lua_side *ls, const char *const *files, int n,
                         const char *flag) {
	for (int i = 0; i < n; i++) {
		ms_err err = {0};
		if (lw_load_file(ls->w, files[i], &err)) {
			fprintf(stderr, "moonshim: %s %s\n", flag, err.msg);
			ev_emit(o->events, "error",
			        json_pack("{s:s, s:s}", "script", files[i], "message", err.msg));
		}
	}
}

/* policies/default.lua, compiled in (Makefile) */
extern const unsigned char moonshim_lua_default[];
extern const unsigned long moonshim_lua_default_len;
#define DEFAULT_POLICY_NAME "policies/default.lua (built in)"

/* One world for the container's checks and policies. A script that does
 * not load is reported and left out; the others run. */
static void start_lua(const sv_opts *o, sv_state *st, lua_side *ls) {
	ms_err err = {0};
	lw_config lc = {.name = "container"};
	ls->netns_fd = -1;
	ls->events = o->events;
	/* with no --policy the built-in one reports (dry run) to the event
	 * stream; without a stream it would have no one to tell */
	bool builtin = !o->npolicies && ev_enabled(o->events);
	if ((!o->nchecks && !o->npolicies && !builtin) || !(ls->w = lw_new(&lc, &err)))
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
	              .emit_arg = ls};
	ls->policies = pl_new(ls->w, &env);
	ls->checks = hk_new(ls->w, check_event, ls);
	load_scripts(o, ls, o->policies, o->npolicies, "--policy");
	if (builtin && lw_load(ls->w, DEFAULT_POLICY_NAME, (const char *)moonshim_lua_default,
	                       moonshim_lua_default_len, &err)) {
		fprintf(stderr, "moonshim: %s\n", err.msg);
		ev_emit(o->events, "error", json_pack("{s:s}", "message", err.msg));
	}
	load_scripts(o, ls, o->checks, o->nchecks, "--check");
	st->policies = ls->policies;
	if (hk_start(ls->checks, &err)) {
		fprintf(stderr, "moonshim: checks: %s\n", err.msg);
		ev_emit(o->events, "error", json_pack("{s:s}", "message", err.msg));
	}
	ms_trace(o->debug, "%d health checks, %d policy handlers", hk_count(ls->checks),
	         pl_handlers(ls->policies));
}

/* The checks stop first; the policies see the exit, then stop. */
static void stop_lua(lua_side *ls, sv_state *st, int status) {
	lw_stop_tasks(ls->w); /* go() tasks and waits on sleep or channels end */
	hk_stop(ls->checks);
	if (ls->policies) {
		json_t *f = json_pack("{s:i}", "exit_status", status);
		pl_dispatch(ls->policies, "exit", f);
		json_decref(f);
		st->policies = NULL;
		pl_stop(ls->policies);
	}
	lw_free(ls->w);
	if (ls->netns_fd >= 0)
		close(ls->netns_fd);
}

static int supervise_main(void *arg) {
	const sv_opts *o = arg;
	sv_state st = {.o = o, .wg = RT_WAITGROUP_INIT};
	st.exited = rt_chan_new(sizeof(int), 1);
	ms_err err = {0};
	int perr;

	sigset_t sigs;
	sigemptyset(&sigs);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&sigs, forwarded[i]);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd >= 0 && (st.sig_pd = rt_poll_open(sfd, &perr))) {
		rt_wg_add(&st.wg, 1);
		rt_go(signal_forwarder, &st, "signal forwarder");
	}
	cg_watch *w = NULL;
	/* the Lua world first: policies must be there for the first event */
	lua_side ls = {0};
	start_lua(o, &st, &ls);
	if (o->cgroup && (ev_enabled(o->events) || st.policies)) {
		cg_err ce = {0};
		cg_psi_spec rules[SV_MAX_PSI_RULES];
		cg_watch_opts wo = {.psi = rules,
		                    .npsi = pl_psi_rules(st.policies, rules, SV_MAX_PSI_RULES)};
		st.cg_events = rt_chan_new(sizeof(cg_event), 64);
		if ((w = cg_watch_start(o->cgroup, &wo, st.cg_events, &ce))) {
			rt_wg_add(&st.wg, 1);
			rt_go(cgroup_events, &st, "cgroup events");
		} else {
			ev_emit(o->events, "error", json_pack("{s:s}", "message", ce.msg));
		}
	}
	lf_log *log = NULL;
	if (o->log_path) {
		if (!(log = lf_open(o->log_path, LOG_BUFFER_BYTES, &err))) {
			fprintf(stderr, "moonshim: %s\n", err.msg);
			ev_emit(o->events, "error", json_pack("{s:s}", "message", err.msg));
		}
		if (log && o->out_fd >= 0)
			lf_add_stream(log, o->out_fd, "stdout", &err);
		if (log && o->err_fd >= 0)
			lf_add_stream(log, o->err_fd, "stderr", &err);
		if (!log) { /* closed pipes fail the child's writes; full ones would hang it */
			if (o->out_fd >= 0)
				close(o->out_fd);
			if (o->err_fd >= 0)
				close(o->err_fd);
		}
	}
	tty_relay *relay = NULL;
	if (o->proc->pty_master >= 0) {
		tty_resize(o->proc->pty_master, STDIN_FILENO);
		relay = tty_relay_start(o->proc->pty_master, STDIN_FILENO, STDOUT_FILENO, &err);
		if (!relay)
			fprintf(stderr, "moonshim: %s\n", err.msg);
	}
	rt_go(exit_waiter, &st, "exit waiter");

	int status;
	rt_chan_recv(st.exited, &status);
	ms_trace(o->debug, "%d exited, status %d", o->proc->pid, status);
	if (o->cgroup && o->reap_cgroup)
		empty_cgroup(o->cgroup, true);
	ms_trace(o->debug, "cgroup empty");
	/* one pass of the netpoller, so a populated-0 notification already
	 * raised reaches the stream before the exit line */
	if (w)
		rt_sleep(NOTIFY_GRACE_NS);
	if (relay)
		tty_relay_wait(relay);
	json_t *fields = json_pack("{s:i, s:i}", "pid", o->proc->pid, "exit_status", status);
	if (log) {
		lf_stats ls;
		lf_close(log, &ls);
		if (ls.all.dropped_bytes)
			json_object_set_new(fields, "log_dropped_bytes",
			                    json_integer((json_int_t)ls.all.dropped_bytes));
	}
	if (st.sig_pd)
		rt_poll_evict(st.sig_pd);
	if (w) {
		cg_watch_stop(w);
		rt_chan_close(st.cg_events);
	}
	rt_wg_wait(&st.wg);
	if (w)
		last_memory_events(&st);
	stop_lua(&ls, &st, status);
	if (st.sig_pd)
		rt_poll_close(st.sig_pd);
	if (sfd >= 0)
		close(sfd);
	if (st.cg_events)
		rt_chan_free(st.cg_events);
	rt_chan_free(st.exited);
	ev_emit(o->events, "exit", fields);
	return status;
}

/* The linker's bounds of our code. */
extern char __executable_start, etext;

/* Creating the container ran code a supervisor never runs again (the
 * spec, seccomp compilation, mounts): unmap our code's pages so that what
 * stays resident is what supervising touches (it faults back in from the
 * page cache on use). Code is never written, so nothing is lost; data and
 * heap are not touched. */
static void release_creation_code(void) {
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)&__executable_start & ~(uintptr_t)(pg - 1);
	uintptr_t hi = ((uintptr_t)&etext + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int sv_supervise(const sv_opts *o) {
	release_creation_code();
	rt_config cfg = {.procs = 1, .no_sigquit_dump = true, .quiet_leaks = true};
	return rt_main(&cfg, supervise_main, (void *)o);
}
