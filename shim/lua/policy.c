/*
 * policy.c — on() registrations, dispatching events to them as tasks, and
 * the cgroup/container library policies act through.
 */
#define _GNU_SOURCE
#include "policy.h"

#include "gowatch.h"
#include "io.h"
#include "luaapi.h"
#include "oci.h"
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PL_MAX_HANDLERS 64
#define PL_MAX_HOOKS    32
#define HOOK_MAX_ARGS   32
#define HOOK_TIMEOUT_NS (10 * RT_SECOND) /* default; hook{timeout=} changes it */
#define HOOK_OUTPUT_MAX 4096             /* of a hook's output kept in its event */
#define PL_KEY          "moonshim.policy"
#define TYPE_MAX        64
#define STOP_GRACE_S    10 /* docker stop's default */
/* pressure rules: the kernel's PSI windows are 500 ms to 10 s; a rule
 * measures 1 s windows, and a duration is a streak of them */
#define PSI_MIN_WINDOW_S       0.5
#define PSI_WINDOW_S           1.0
#define PSI_MAX_DURATION_S     3600.0
#define PSI_DEFAULT_DURATION_S 10
/* a streak of windows goes on if the next event comes within 1.5 windows */
#define PSI_STREAK_SLACK  1.5
#define STOP_KILL_WAIT_NS (5 * RT_SECOND)
#define GRACE_MAX_S       1e6 /* longer is a mistake, not a grace period */

typedef struct {
	char type[TYPE_MAX];
	int ref;
	char where[128];         /* script:line of the on() call, for messages */
	char script[LW_SRC_MAX]; /* that script: a report's place when its error's is not known */
	int line;
	bool hook; /* hook(type, fn): its outcome is reported as a "hook" event */
	/* on("pressure", {...}, fn): the PSI rule it asked for, and how long
	 * the pressure must last. The streak is touched only by the
	 * dispatch of pressure events (one goroutine: the cgroup watcher's
	 * reader). */
	bool psi;
	cg_psi_spec spec;
	char rule[64];
	int64_t duration_ns, streak_start, last_at;
} pl_handler;

/* An alert hook: a command run with the event as JSON on stdin. */
typedef struct {
	char type[TYPE_MAX];
	char *argv[HOOK_MAX_ARGS + 1];
	int64_t timeout_ns;
} pl_hook;

struct pl_engine {
	gd_config go; /* the Go detectors' thresholds (gowatch.config) */
	lw_world *w;
	pl_env env;
	rt_mutex proc_mu; /* guards env.pid and env.pidfd (pl_set_process) */
	pl_handler h[PL_MAX_HANDLERS];
	int n;
	pl_hook hooks[PL_MAX_HOOKS];
	int nhooks;
	rt_waitgroup wg;
	bool stopped;
};

static pl_engine *engine(lua_State *L) {
	pl_engine *p = lw_get_ptr(L, PL_KEY);
	if (!p)
		luaL_error(L, "policies are not available here");
	return p;
}

/* ─── on, emit ──────────────────────────────────────────────────────── */

/* on("pressure", {resource=, kind=, threshold=, duration=}, fn) or
 * {rule = "memory:some:150ms:1s", duration=}: the PSI rule the watcher
 * arms for it. threshold is the share of time stalled, in percent, in
 * each 1 s window (or the duration, if shorter); the handler runs once
 * the windows past it have run back to back for duration seconds, and
 * again after each further duration while it lasts. */
static void pressure_opts(lua_State *L, int idx, pl_handler *h) {
	double pct = 10;
	int64_t duration_ns = PSI_DEFAULT_DURATION_S * RT_SECOND;
	if (lua_getfield(L, idx, "duration") != LUA_TNIL)
		duration_ns = lw_seconds(L, -1, "on(\"pressure\")", "duration", PSI_MIN_WINDOW_S,
		                         PSI_MAX_DURATION_S, LW_SEC_REFUSE);
	lua_pop(L, 1);
	double duration = (double)duration_ns / RT_SECOND;
	double window = duration < PSI_WINDOW_S ? duration : PSI_WINDOW_S;
	cg_err e = {0};
	if (lua_getfield(L, idx, "rule") == LUA_TSTRING) {
		if (cg_psi_parse(lua_tostring(L, -1), &h->spec, &e))
			luaL_error(L, "on(\"pressure\"): %s", e.msg);
	} else {
		static const char *const res[] = {"cpu", "memory", "io", NULL};
		static const char *const kinds[] = {"some", "full", NULL};
		lua_getfield(L, idx, "resource");
		int r = luaL_checkoption(L, -1, "memory", res);
		lua_getfield(L, idx, "kind");
		int k = luaL_checkoption(L, -1, "some", kinds);
		if (lua_getfield(L, idx, "threshold") != LUA_TNIL)
			pct = luaL_checknumber(L, -1);
		lua_pop(L, 3);
		if (!(pct > 0 && pct <= 100))
			luaL_error(
			    L, "on(\"pressure\"): threshold is a percentage, above 0 up to 100");
		int64_t w = (int64_t)(window * RT_SECOND / RT_MICROSECOND);
		h->spec = (cg_psi_spec){.res = (cg_resource)r,
		                        .full = k == 1,
		                        .threshold_us = (int64_t)(w * pct / 100),
		                        .window_us = w,
		                        .latency_us = w};
	}
	lua_pop(L, 1);
	h->psi = true;
	h->duration_ns = duration_ns;
	if (h->duration_ns < h->spec.window_us * 1000)
		h->duration_ns = h->spec.window_us * 1000;
	cg_psi_format(&h->spec, h->rule, sizeof h->rule);
}

/* on(type, fn), or hook(type, fn): the function at 2 (3 after a pressure
 * rule's options) runs on each event. */
static int add_handler(lua_State *L, const char *fn, bool hook) {
	pl_engine *p = engine(L);
	const char *type = luaL_checkstring(L, 1);
	if (p->n == PL_MAX_HANDLERS)
		return luaL_error(L, "%s: at most %d handlers", fn, PL_MAX_HANDLERS);
	memset(&p->h[p->n], 0, sizeof p->h[p->n]);
	if (!hook && !strcmp(type, "pressure") && lua_istable(L, 2)) {
		pressure_opts(L, 2, &p->h[p->n]);
		lua_remove(L, 2);
	}
	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (strlen(type) >= TYPE_MAX)
		return luaL_error(L, "%s: event type \"%s\" is too long", fn, type);
	pl_handler *h = &p->h[p->n];
	snprintf(h->type, sizeof h->type, "%s", type);
	h->hook = hook;
	lua_Debug ar;
	snprintf(h->where, sizeof h->where, "%s(\"%s\")", fn, type);
	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
		snprintf(h->where, sizeof h->where, "%s:%d: %s(\"%s\")", ar.short_src,
		         ar.currentline, fn, type);
		snprintf(h->script, sizeof h->script, "%s", ar.short_src);
		h->line = ar.currentline;
	}
	lua_settop(L, 2);
	h->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	p->n++;
	return 0;
}

static int l_on(lua_State *L) {
	return add_handler(L, "on", false);
}

/* hook(type, {cmd, args...} [, {timeout = s}]), or hook(type, fn) */
static int l_hook(lua_State *L) {
	pl_engine *p = engine(L);
	const char *type = luaL_checkstring(L, 1);
	if (lua_isfunction(L, 2))
		return add_handler(L, "hook", true);
	luaL_checktype(L, 2, LUA_TTABLE);
	if (p->nhooks == PL_MAX_HOOKS)
		return luaL_error(L, "hook: at most %d hooks", PL_MAX_HOOKS);
	lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
	if (n < 1 || n > HOOK_MAX_ARGS || strlen(type) >= TYPE_MAX)
		return luaL_error(L, "hook: a type and a command of 1 to %d strings",
		                  HOOK_MAX_ARGS);
	pl_hook *k = &p->hooks[p->nhooks];
	memset(k, 0, sizeof *k);
	snprintf(k->type, sizeof k->type, "%s", type);
	k->timeout_ns = HOOK_TIMEOUT_NS;
	if (lua_istable(L, 3)) {
		if (lua_getfield(L, 3, "timeout") != LUA_TNIL)
			k->timeout_ns =
			    lw_seconds(L, -1, "hook", "timeout", 0, LW_SECONDS_MAX, LW_SEC_REFUSE);
		lua_pop(L, 1);
	}
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 2, i);
		k->argv[i - 1] = strdup(luaL_tolstring(L, -1, NULL));
		lua_pop(L, 2);
	}
	p->nhooks++;
	return 0;
}

static int l_emit(lua_State *L) {
	pl_engine *p = engine(L);
	const char *type = luaL_checkstring(L, 1);
	json_t *fields = lua_isnoneornil(L, 2) ? json_object() : la_to_json(L, 2, "emit");
	if (!json_is_object(fields)) {
		json_decref(fields);
		return luaL_error(L, "emit: fields must be a table with string keys");
	}
	if (p->env.emit)
		p->env.emit(p->env.emit_arg, type, fields);
	else
		json_decref(fields);
	return 0;
}

/* ─── cgroup ────────────────────────────────────────────────────────── */

static cg *cgroup_of(lua_State *L) {
	pl_engine *p = engine(L);
	if (!p->env.cgroup)
		luaL_error(L, "cgroup: this container has no cgroup here");
	return p->env.cgroup;
}

static void set_num(lua_State *L, const char *k, int64_t v) {
	if (v == CG_NOLIMIT)
		lua_pushnumber(L, HUGE_VAL); /* "max": no limit compares above anything */
	else if (v < 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static int l_cg_memory(lua_State *L) {
	cg_memory m;
	cg_err e = {0};
	if (cg_read_memory(cgroup_of(L), &m, &e))
		return luaL_error(L, "cgroup.memory: %s", e.msg);
	lua_createtable(L, 0, 6);
	set_num(L, "current", m.current);
	set_num(L, "peak", m.peak);
	set_num(L, "high", m.high);
	set_num(L, "max", m.max);
	set_num(L, "swap", m.swap_current);
	return 1;
}

static int l_cg_memory_events(lua_State *L) {
	cg_memory_events m;
	cg_err e = {0};
	if (cg_read_memory_events(cgroup_of(L), false, &m, &e))
		return luaL_error(L, "cgroup.memory_events: %s", e.msg);
	lua_createtable(L, 0, 6);
	set_num(L, "low", m.low);
	set_num(L, "high", m.high);
	set_num(L, "max", m.max);
	set_num(L, "oom", m.oom);
	set_num(L, "oom_kill", m.oom_kill);
	return 1;
}

static int l_cg_pressure(lua_State *L) {
	static const char *const names[] = {"cpu", "memory", "io", NULL};
	int r = luaL_checkoption(L, 1, "memory", names);
	cg_pressure pr = {0}; /* (LTO cannot see cg_read_pressure fill it) */
	cg_err e = {0};
	if (cg_read_pressure(cgroup_of(L), (cg_resource)r, &pr, &e))
		return luaL_error(L, "cgroup.pressure: %s", e.msg);
	lua_createtable(L, 0, 2);
	const cg_pressure_line *lines[2] = {&pr.some, &pr.full};
	for (int i = 0; i < 2; i++) {
		if (!lines[i]->present)
			continue;
		lua_createtable(L, 0, 4);
		lua_pushnumber(L, lines[i]->avg10);
		lua_setfield(L, -2, "avg10");
		lua_pushnumber(L, lines[i]->avg60);
		lua_setfield(L, -2, "avg60");
		lua_pushnumber(L, lines[i]->avg300);
		lua_setfield(L, -2, "avg300");
		lua_pushinteger(L, lines[i]->total);
		lua_setfield(L, -2, "total");
		lua_setfield(L, -2, i ? "full" : "some");
	}
	return 1;
}

static int64_t limit_field(lua_State *L, const char *k) {
	int t = lua_getfield(L, 1, k);
	int64_t v = CG_UNSET;
	if (t == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "max"))
		v = CG_NOLIMIT;
	else if (t == LUA_TNUMBER)
		v = (int64_t)lua_tonumber(L, -1);
	else if (t != LUA_TNIL)
		luaL_error(L, "cgroup.set: %s must be a number or \"max\"", k);
	lua_pop(L, 1);
	return v;
}

static int l_cg_set(lua_State *L) {
	luaL_checktype(L, 1, LUA_TTABLE);
	cg_limits l;
	cg_limits_init(&l);
	l.memory_high = limit_field(L, "memory_high");
	l.memory_max = limit_field(L, "memory_max");
	l.cpu_quota_us = limit_field(L, "cpu_quota");
	l.cpu_period_us = limit_field(L, "cpu_period");
	l.pids_max = limit_field(L, "pids_max");
	cg_err e = {0};
	if (cg_set_limits(cgroup_of(L), &l, &e))
		return luaL_error(L, "cgroup.set: %s", e.msg);
	return 0;
}

static int l_cg_reclaim(lua_State *L) {
	lua_Integer bytes = luaL_checkinteger(L, 1);
	cg_err e = {0};
	int rc = cg_reclaim(cgroup_of(L), bytes, &e);
	lua_pushboolean(L, rc == 0); /* the kernel may reclaim less (EAGAIN) */
	if (rc)
		lua_pushstring(L, e.msg);
	return rc ? 2 : 1;
}

static int freeze(lua_State *L, bool on) {
	cg_err e = {0};
	if (cg_freeze(cgroup_of(L), on, &e))
		return luaL_error(L, "cgroup.%s: %s", on ? "freeze" : "thaw", e.msg);
	return 0;
}

static int l_cg_freeze(lua_State *L) {
	return freeze(L, true);
}

static int l_cg_thaw(lua_State *L) {
	return freeze(L, false);
}

/* A signal by number or name ("TERM", "SIGKILL"), as the CLI reads them. */
static int signal_arg(lua_State *L, int idx, int dflt) {
	if (lua_isnoneornil(L, idx))
		return dflt;
	if (lua_isinteger(L, idx))
		return (int)lua_tointeger(L, idx);
	const char *n = luaL_checkstring(L, idx);
	int sig = spec_signal_number(n);
	return sig > 0 ? sig : luaL_error(L, "unknown signal \"%s\"", n);
}

static int l_cg_kill(lua_State *L) {
	int sig = signal_arg(L, 1, SIGKILL);
	cg_err e = {0};
	if (cg_kill(cgroup_of(L), sig, &e))
		return luaL_error(L, "cgroup.kill: %s", e.msg);
	return 0;
}

/* ─── container ─────────────────────────────────────────────────────── */

static pid_t current_pid(pl_engine *p) {
	rt_mutex_lock(&p->proc_mu);
	pid_t pid = p->env.pid;
	rt_mutex_unlock(&p->proc_mu);
	return pid;
}

/* A pidfd of the container's process now, the caller's to close: a
 * restart closes the one it replaces, and the number may be reused. */
static int current_pidfd(pl_engine *p) {
	rt_mutex_lock(&p->proc_mu);
	int fd = fcntl(p->env.pidfd, F_DUPFD_CLOEXEC, 3);
	rt_mutex_unlock(&p->proc_mu);
	return fd;
}

void pl_set_process(pl_engine *p, pid_t pid, int pidfd) {
	if (!p)
		return;
	rt_mutex_lock(&p->proc_mu);
	p->env.pid = pid;
	p->env.pidfd = pidfd;
	rt_mutex_unlock(&p->proc_mu);
}

static int l_ct_pid(lua_State *L) {
	lua_pushinteger(L, current_pid(engine(L)));
	return 1;
}

static int l_ct_signal(lua_State *L) {
	pl_engine *p = engine(L);
	int sig = signal_arg(L, 1, SIGTERM);
	rt_mutex_lock(&p->proc_mu);
	long rc = syscall(SYS_pidfd_send_signal, p->env.pidfd, sig, NULL, 0);
	int e = errno;
	rt_mutex_unlock(&p->proc_mu);
	if (rc < 0)
		return luaL_error(L, "container.signal: %s", strerror(e));
	return 0;
}

/* Has the container's process exited, waiting until deadline? The pidfd
 * is dup'd: epoll keys on the fd number, and the supervisor's exit waiter
 * has the pidfd itself registered. */
static bool wait_exit(int pidfd, int64_t deadline) {
	struct pollfd now = {.fd = pidfd, .events = POLLIN};
	if (poll(&now, 1, 0) == 1) /* a fresh netpoller entry knows nothing yet */
		return true;
	if (deadline <= rt_now())
		return false;
	int fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3), perr;
	if (fd < 0)
		return false;
	rt_pollfd *pd = rt_poll_open(fd, &perr);
	bool gone = pd && rt_poll_wait(pd, RT_POLL_READ, deadline) == 0;
	rt_poll_close(pd);
	close(fd);
	return gone;
}

static int l_ct_state(lua_State *L) {
	pl_engine *p = engine(L);
	rt_mutex_lock(&p->proc_mu);
	bool gone = wait_exit(p->env.pidfd, 0); /* deadline 0: a poll, no park */
	rt_mutex_unlock(&p->proc_mu);
	lua_pushstring(L, gone ? "stopped" : "running");
	return 1;
}

typedef struct {
	pl_engine *p;
	int sig;
	int64_t grace_ns;
	bool killed, gone;
	char err[160];
} stop_call;

/* What `docker stop -t` does: the signal, the grace period, then SIGKILL
 * to the whole cgroup (or the process when there is none here). */
static void stop_pidfd(stop_call *c, int pidfd) {
	if (wait_exit(pidfd, 0)) {
		c->gone = true;
		return;
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, c->sig, NULL, 0) < 0 && errno != ESRCH) {
		snprintf(c->err, sizeof c->err, "container.stop: %s", strerror(errno));
		return;
	}
	if (wait_exit(pidfd, rt_deadline_in(c->grace_ns))) {
		c->gone = true;
		return;
	}
	c->killed = true;
	cg_err e = {0};
	if (!c->p->env.cgroup || cg_kill(c->p->env.cgroup, SIGKILL, &e))
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	c->gone = wait_exit(pidfd, rt_deadline_in(STOP_KILL_WAIT_NS));
}

static void stop_work(void *ctx) {
	stop_call *c = ctx;
	int pidfd = current_pidfd(c->p);
	if (pidfd < 0) {
		snprintf(c->err, sizeof c->err, "container.stop: %s", strerror(errno));
		return;
	}
	stop_pidfd(c, pidfd);
	close(pidfd);
}

static int stop_push(lua_State *L, void *ctx) {
	stop_call *c = ctx;
	if (c->err[0]) {
		lua_pushnil(L);
		lua_pushstring(L, c->err);
	} else {
		lua_pushboolean(L, c->gone);
		lua_pushstring(L, c->killed ? "killed" : "exited");
	}
	return 2;
}

/* A grace period or a backoff at idx as ns, dflt_ns if nil; fn and what
 * name it in the error when it is out of [0, GRACE_MAX_S]. */
static int64_t grace_ns(lua_State *L, int idx, int64_t dflt_ns, const char *fn, const char *what) {
	if (lua_isnoneornil(L, idx))
		return dflt_ns;
	return lw_seconds(L, idx, fn, what, 0, GRACE_MAX_S, LW_SEC_REFUSE);
}

/* container.stop([grace_s [, signal]]) → exited?, "exited"|"killed" */
static int l_ct_stop(lua_State *L) {
	pl_engine *p = engine(L);
	int64_t grace = grace_ns(L, 1, STOP_GRACE_S * RT_SECOND, "container.stop", "grace");
	int sig = signal_arg(L, 2, SIGTERM);
	stop_call *c = lua_newuserdatauv(L, sizeof *c, 0);
	*c = (stop_call){.p = p, .sig = sig, .grace_ns = grace};
	return lw_park(L, c, stop_work, stop_push);
}

typedef struct {
	pl_engine *p;
	pl_restart r;
	int rc;
	ms_err err;
} restart_call;

static void restart_work(void *ctx) {
	restart_call *c = ctx;
	c->rc = c->p->env.restart(c->p->env.restart_arg, &c->r, &c->err);
}

static int restart_push(lua_State *L, void *ctx) {
	restart_call *c = ctx;
	if (!c->rc) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushstring(L, c->err.msg);
	return 2;
}

/* Field k of the options table at 1, in seconds, as ns; dflt_ns if absent. */
static int64_t restart_opt(lua_State *L, const char *k, int64_t dflt_ns) {
	lua_getfield(L, 1, k);
	int64_t v = grace_ns(L, -1, dflt_ns, "container.restart", k);
	lua_pop(L, 1);
	return v;
}

/* container.restart([grace] | {grace =, backoff_max =}) → true | nil, message */
static int l_ct_restart(lua_State *L) {
	pl_engine *p = engine(L);
	pl_restart r = {.backoff_max_ns = -1};
	if (lua_istable(L, 1)) {
		r.grace_ns = restart_opt(L, "grace", STOP_GRACE_S * RT_SECOND);
		r.backoff_max_ns = restart_opt(L, "backoff_max", -1);
	} else {
		r.grace_ns = grace_ns(L, 1, STOP_GRACE_S * RT_SECOND, "container.restart", "grace");
	}
	if (!p->env.restart) {
		lua_pushnil(L);
		lua_pushstring(L,
		               "container.restart: not offered here (only `moonshim run` restarts "
		               "its container)");
		return 2;
	}
	restart_call *c = lua_newuserdatauv(L, sizeof *c, 0);
	*c = (restart_call){.p = p, .r = r};
	return lw_park(L, c, restart_work, restart_push);
}

/* ─── events ────────────────────────────────────────────────────────── */

/* events.subscribe(type [, cap]): a channel that receives the events of a
 * type ("*": all) as tables. A subscriber that falls behind loses events
 * (counted in events.dropped[type]) rather than stalling the dispatch. */
static const char EVENTS_LIB[] = "events = { emit = emit, dropped = {} }\n"
                                 "function events.subscribe(type, cap)\n"
                                 "  local ch = chan(cap or 64)\n"
                                 "  on(type, function(ev)\n"
                                 "    if not ch:send(ev, 0) then\n"
                                 "      events.dropped[type] = (events.dropped[type] or 0) + 1\n"
                                 "    end\n"
                                 "  end)\n"
                                 "  return ch\n"
                                 "end\n";

/* policies/ladder.lua, compiled in (Makefile): ladder{...} */
extern const unsigned char moonshim_lua_ladder[];
extern const unsigned long moonshim_lua_ladder_len;
#define LADDER_NAME "policies/ladder.lua (built in)"

/* ─── gowatch.config{} ─────────────────────────────────────────────── */

/* The Go detectors' thresholds by name (godetect.h), for a policy to set:
 *   gowatch.config { trend_min_slope = 5, site_min_count = 20 } */
#define GD_FIELD(name, type)                                                                       \
	{ #name, offsetof(gd_config, name), type }
static const struct {
	const char *name;
	size_t off;
	char type; /* 'i' int, 'l' int64_t, 'd' double */
} gd_fields[] = {GD_FIELD(trend_min_samples, 'i'),
                 GD_FIELD(trend_alpha, 'd'),
                 GD_FIELD(trend_min_slope, 'd'),
                 GD_FIELD(trend_window, 'i'),
                 GD_FIELD(site_min_count, 'i'),
                 GD_FIELD(site_min_samples, 'i'),
                 GD_FIELD(site_min_slope, 'd'),
                 GD_FIELD(persistent_minutes, 'i'),
                 GD_FIELD(idle_with_work_samples, 'i'),
                 GD_FIELD(imbalance_depth, 'l'),
                 GD_FIELD(imbalance_samples, 'i'),
                 GD_FIELD(saturation_samples, 'i'),
                 GD_FIELD(saturation_runqueue, 'l'),
                 GD_FIELD(thread_growth_samples, 'i'),
                 GD_FIELD(thread_growth_min, 'i'),
                 GD_FIELD(quota_margin, 'd'),
                 GD_FIELD(gc_per_s, 'd'),
                 GD_FIELD(gc_mem_level, 'd')};

static int l_gowatch_config(lua_State *L) {
	pl_engine *p = engine(L);
	luaL_checktype(L, 1, LUA_TTABLE);
	gd_config c = p->go; /* all or nothing: a bad field changes none */
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
		size_t i = 0;
		while (i < sizeof gd_fields / sizeof *gd_fields && strcmp(gd_fields[i].name, k))
			i++;
		if (i == sizeof gd_fields / sizeof *gd_fields)
			return luaL_error(L, "gowatch.config: no threshold \"%s\"", k);
		lua_Number v = luaL_checknumber(L, -1);
		if (!(v >= 0))
			return luaL_error(L, "gowatch.config: %s must be a number >= 0", k);
		char *at = (char *)&c + gd_fields[i].off;
		if (gd_fields[i].type == 'i')
			*(int *)at = (int)v;
		else if (gd_fields[i].type == 'l')
			*(int64_t *)at = (int64_t)v;
		else
			*(double *)at = v;
		lua_pop(L, 1);
	}
	p->go = c;
	return 0;
}

const gd_config *pl_go_config(pl_engine *p) {
	return p ? &p->go : NULL;
}

/* ─── dispatch ──────────────────────────────────────────────────────── */

pl_engine *pl_new(lw_world *w, const pl_env *env) {
	pl_engine *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->w = w;
	p->env = *env;
	p->proc_mu = (rt_mutex)RT_MUTEX_INIT;
	p->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	static const luaL_Reg cgroup_fns[] = {{"memory", l_cg_memory},
	                                      {"memory_events", l_cg_memory_events},
	                                      {"pressure", l_cg_pressure},
	                                      {"set", l_cg_set},
	                                      {"reclaim", l_cg_reclaim},
	                                      {"freeze", l_cg_freeze},
	                                      {"thaw", l_cg_thaw},
	                                      {"kill", l_cg_kill},
	                                      {NULL, NULL}};
	static const luaL_Reg container_fns[] = {{"pid", l_ct_pid},         {"signal", l_ct_signal},
	                                         {"state", l_ct_state},     {"stop", l_ct_stop},
	                                         {"restart", l_ct_restart}, {NULL, NULL}};
	lw_set_ptr(w, PL_KEY, p);
	lw_register(w, "on", l_on);
	lw_register(w, "emit", l_emit);
	lw_register(w, "hook", l_hook);
	lw_register_lib(w, "cgroup", cgroup_fns);
	lw_register_lib(w, "container", container_fns);
	static const luaL_Reg gowatch_fns[] = {{"config", l_gowatch_config}, {NULL, NULL}};
	lw_register_lib(w, "gowatch", gowatch_fns);
	gd_config_default(&p->go);
	ms_err err = {0};
	if (lw_load(w, "events", EVENTS_LIB, sizeof EVENTS_LIB - 1, &err) ||
	    lw_load(w, LADDER_NAME, (const char *)moonshim_lua_ladder, moonshim_lua_ladder_len,
	            &err))
		fprintf(stderr, "moonshim: a built-in library: %s\n", err.msg);
	return p;
}

int pl_handlers(pl_engine *p) {
	return p ? p->n : 0;
}

/* The handlers one dispatch started, for pl_dispatch_then. */
typedef struct {
	int pending; /* handlers running, plus one while the dispatch starts them */
	void (*done)(void *arg);
	void *arg;
} pl_batch;

static void batch_done(pl_batch *b) {
	if (b && __atomic_sub_fetch(&b->pending, 1, __ATOMIC_ACQ_REL) == 0) {
		b->done(b->arg);
		free(b);
	}
}

typedef struct {
	pl_engine *p;
	int i;
	char type[TYPE_MAX];
	json_t *fields;
	pl_batch *batch; /* NULL: nobody waits for this dispatch */
} run_arg;

static int push_event(lua_State *co, void *arg) {
	run_arg *a = arg;
	la_push_json(co, a->fields);
	lua_pushstring(co, a->type);
	lua_setfield(co, -2, "type");
	return 1;
}

/* A handler that raised or was stopped for its budget: an "error" event
 * {"script","line" (where it failed, when known),"handler" (its on() call),
 * "reason","message","suppressed"}, at most one per script per the
 * world's report period (lw_report_admit). */
static void report(pl_engine *p, const pl_handler *h, const lw_fault *f) {
	bool known = f->script[0]; /* else the on() call's place */
	const char *script = known ? f->script : h->script;
	int line = known ? f->line : h->line;
	uint64_t held;
	if (!p->env.emit || !f->kind || !lw_report_admit(p->w, script, &held))
		return;
	json_t *e =
	    json_pack("{s:s, s:s, s:s, s:s}", "script", script, "handler", h->where, "reason",
	              f->kind == LW_FAULT_BUDGET ? "budget" : "raised", "message", f->message);
	if (e && line > 0)
		json_object_set_new(e, "line", json_integer(line));
	if (e && held)
		json_object_set_new(e, "suppressed", json_integer((json_int_t)held));
	if (e)
		p->env.emit(p->env.emit_arg, "error", e);
}

static void handler_goroutine(void *arg) {
	run_arg *a = arg;
	pl_handler *h = &a->p->h[a->i];
	ms_err err = {0};
	lw_fault f;
	int rc = lw_call_ref(a->p->w, h->ref, h->where, push_event, NULL, a, &err, &f);
	if (a->p->env.emit && h->hook) /* a function hook reports like a command */
		a->p->env.emit(a->p->env.emit_arg, "hook",
		               rc ? json_pack("{s:s, s:s, s:s}", "event", a->type, "function",
		                              h->where, "error", err.msg)
		                  : json_pack("{s:s, s:s, s:i}", "event", a->type, "function",
		                              h->where, "exit_status", 0));
	report(a->p, h, &f); /* not when ended by the stop (no fault) */
	json_decref(a->fields);
	batch_done(a->batch);
	rt_wg_done(&a->p->wg);
	free(a);
}

typedef struct {
	pl_engine *p;
	pl_hook *k;
	char type[TYPE_MAX];
	char *json;
} hook_arg;

static void hook_goroutine(void *arg) {
	hook_arg *a = arg;
	char ev_env[TYPE_MAX + 32], pid_env[48];
	snprintf(ev_env, sizeof ev_env, "MOONSHIM_EVENT=%s", a->type);
	snprintf(pid_env, sizeof pid_env, "MOONSHIM_CONTAINER_PID=%d", current_pid(a->p));
	char *env[] = {ev_env, pid_env, NULL};
	hx_result r;
	ms_err err = {0};
	json_t *f;
	if (hx_run(a->k->argv, env, a->json, strlen(a->json), a->k->timeout_ns, HOOK_OUTPUT_MAX, &r,
	           &err) == 0) {
		f = json_pack("{s:s, s:s, s:i, s:b, s:s%, s:s%}", "event", a->type, "command",
		              a->k->argv[0], "exit_status", r.status, "timed_out", r.timed_out,
		              "stdout", r.out, r.out_len, "stderr", r.err, r.err_len);
		hx_result_free(&r);
	} else {
		f = json_pack("{s:s, s:s, s:s}", "event", a->type, "command", a->k->argv[0],
		              "error", err.msg);
	}
	if (a->p->env.emit && f)
		a->p->env.emit(a->p->env.emit_arg, "hook", f);
	else
		json_decref(f);
	free(a->json);
	rt_wg_done(&a->p->wg);
	free(a);
}

static void run_hooks(pl_engine *p, const char *type, json_t *fields) {
	for (int i = 0; i < p->nhooks; i++) {
		if (strcmp(p->hooks[i].type, "*") && strcmp(p->hooks[i].type, type))
			continue;
		json_t *ev = fields ? json_deep_copy(fields) : json_object();
		json_object_set_new(ev, "type", json_string(type));
		hook_arg *a = calloc(1, sizeof *a);
		char *js = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(ev);
		if (!a || !js) {
			free(a);
			free(js);
			return;
		}
		*a = (hook_arg){.p = p, .k = &p->hooks[i], .json = js};
		snprintf(a->type, sizeof a->type, "%s", type);
		rt_wg_add(&p->wg, 1);
		rt_go(hook_goroutine, a, "alert hook");
	}
}

/* A pressure event for handler h: its rule's, and has the pressure lasted
 * h's duration? Each event says the stall passed the threshold over the
 * window before it; back-to-back events make a streak. */
static bool pressure_due(pl_handler *h, json_t *fields) {
	const char *rule = json_string_value(json_object_get(fields, "rule"));
	if (!rule || strcmp(rule, h->rule))
		return false;
	int64_t now = rt_now(), window = h->spec.window_us * 1000;
	/* the span the event measured (a poll may have seen less than a
	 * window: the stall passed the threshold within it all the same) */
	json_int_t seen = json_integer_value(json_object_get(fields, "window_us")) * 1000;
	if (seen <= 0 || seen > window)
		seen = window;
	if (!h->last_at || now - h->last_at > (int64_t)(window * PSI_STREAK_SLACK))
		h->streak_start = now - seen;
	h->last_at = now;
	/* one window past the threshold is the rule met; longer durations
	 * need the streak */
	if (h->duration_ns > window && now - h->streak_start < h->duration_ns)
		return false;
	json_object_set_new(fields, "lasted_s",
	                    json_real((double)(now - h->streak_start) / RT_SECOND));
	h->streak_start = now; /* the next call after another full duration */
	return true;
}

int pl_psi_rules(pl_engine *p, cg_psi_spec *out, int max) {
	int n = 0;
	for (int i = 0; p && i < p->n; i++) {
		if (!p->h[i].psi)
			continue;
		bool dup = false;
		for (int k = 0; k < i && !dup; k++)
			dup = p->h[k].psi && !strcmp(p->h[k].rule, p->h[i].rule);
		if (!dup && n < max)
			out[n++] = p->h[i].spec;
	}
	return n;
}

static void dispatch(pl_engine *p, const char *type, json_t *fields, pl_batch *b) {
	if (!p || p->stopped)
		return;
	run_hooks(p, type, fields);
	bool pressure = !strcmp(type, "pressure");
	for (int i = 0; i < p->n; i++) {
		if (strcmp(p->h[i].type, "*") && strcmp(p->h[i].type, type))
			continue;
		if (pressure && p->h[i].psi && !pressure_due(&p->h[i], fields))
			continue;
		run_arg *a = malloc(sizeof *a);
		if (!a)
			return;
		*a = (run_arg){.p = p,
		               .i = i,
		               .fields = fields ? json_deep_copy(fields) : json_object(),
		               .batch = b};
		snprintf(a->type, sizeof a->type, "%s", type);
		if (b)
			__atomic_add_fetch(&b->pending, 1, __ATOMIC_ACQ_REL);
		rt_wg_add(&p->wg, 1);
		rt_go_stack(handler_goroutine, a, "policy handler", LW_STACK_SIZE);
	}
}

void pl_dispatch(pl_engine *p, const char *type, json_t *fields) {
	dispatch(p, type, fields, NULL);
}

void pl_dispatch_then(pl_engine *p, const char *type, json_t *fields, void (*done)(void *arg),
                      void *arg) {
	pl_batch *b = malloc(sizeof *b);
	if (!b) { /* nothing to wait for then: say so rather than never */
		dispatch(p, type, fields, NULL);
		done(arg);
		return;
	}
	*b = (pl_batch){.pending = 1, .done = done, .arg = arg};
	dispatch(p, type, fields, b);
	batch_done(b); /* the dispatch's own count */
}

void pl_stop(pl_engine *p) {
	if (!p)
		return;
	p->stopped = true;
	rt_wg_wait(&p->wg);
	for (int i = 0; i < p->nhooks; i++)
		for (int k = 0; p->hooks[i].argv[k]; k++)
			free(p->hooks[i].argv[k]);
	free(p);
}
