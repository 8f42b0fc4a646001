/*
 * checks.c — check{} declarations from Lua, and a goroutine per check that
 * runs it when due (health.c decides when) and records the outcome.
 */
#define _GNU_SOURCE
#include "checks.h"

#include "health.h"
#include "rt.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HK_MAX 10000 /* checks per world */
#define HK_KEY "moonshim.checks"

typedef struct hk_def {
	char name[HC_NAME_MAX];
	hc_config cfg;
	int ref;                 /* run, in the registry */
	char script[LW_SRC_MAX]; /* where run is defined: its script and line */
	int line;
	hc_probes probes; /* every probe's outcome and duration, under the checks' mu;
	                     kept across restarts (counters never go back) */
} hk_def;

struct hk_checks {
	lw_world *w;
	hk_def *defs; /* grows as scripts declare checks */
	int n, cap;
	bool started; /* no more declarations: runners point into defs */
	hc_set *set;
	rt_mutex mu;    /* guards set, paused, epoch and the defs' probes */
	bool paused;    /* hk_pause: no probe starts */
	uint64_t epoch; /* bumped by hk_pause and hk_restart: older results are dropped */
	rt_chan **kick; /* per runner, capacity 1: look at the schedule again */
	hk_event_fn ev;
	void *ev_arg;
	rt_chan *done;
	rt_waitgroup wg;
	int64_t wall_offset; /* CLOCK_REALTIME - rt_now(), for the JSON's times */
};

/* ─── check{} ───────────────────────────────────────────────────────── */

static int64_t seconds_field(lua_State *L, const char *key, int64_t dflt) {
	int64_t v = dflt;
	if (lua_getfield(L, 1, key) != LUA_TNIL)
		v = lw_seconds(L, -1, "check", key, 0, LW_SECONDS_MAX, LW_SEC_REFUSE);
	lua_pop(L, 1);
	return v;
}

static int int_field(lua_State *L, const char *key, int dflt) {
	int t = lua_getfield(L, 1, key);
	int v = dflt;
	if (t == LUA_TNUMBER && lua_isinteger(L, -1))
		v = (int)lua_tointeger(L, -1);
	else if (t != LUA_TNIL)
		luaL_error(L, "check: %s must be an integer", key);
	lua_pop(L, 1);
	return v;
}

static int l_check(lua_State *L) {
	hk_checks *c = lw_get_ptr(L, HK_KEY);
	luaL_checktype(L, 1, LUA_TTABLE);
	if (!c)
		return luaL_error(L, "check: not available here");
	if (c->started)
		return luaL_error(L, "check: declare checks while the script loads, not later");
	if (c->n == HK_MAX)
		return luaL_error(L, "check: at most %d checks", HK_MAX);
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 16;
		hk_def *nd = realloc(c->defs, (size_t)cap * sizeof *nd);
		if (!nd)
			return luaL_error(L, "check: out of memory");
		c->defs = nd;
		c->cap = cap;
	}
	hk_def *d = &c->defs[c->n];
	memset(d, 0, sizeof *d);
	if (lua_getfield(L, 1, "name") != LUA_TSTRING)
		return luaL_error(L, "check: name must be a string");
	snprintf(d->name, sizeof d->name, "%s", lua_tostring(L, -1));
	lua_pop(L, 1);
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->defs[i].name, d->name))
			return luaL_error(L, "check: \"%s\" is declared twice", d->name);
	const char *role = "liveness";
	if (lua_getfield(L, 1, "role") == LUA_TSTRING)
		role = lua_tostring(L, -1);
	d->cfg.role = !strcmp(role, "liveness")    ? HC_ROLE_LIVENESS
	              : !strcmp(role, "readiness") ? HC_ROLE_READINESS
	              : !strcmp(role, "startup")   ? HC_ROLE_STARTUP
	                                           : (hc_role)-1;
	if ((int)d->cfg.role < 0)
		return luaL_error(
		    L, "check \"%s\": role must be liveness, readiness or startup, not \"%s\"",
		    d->name, role);
	lua_pop(L, 1);
	d->cfg.name = d->name;
	d->cfg.interval_ns = seconds_field(L, "interval", 0);
	d->cfg.timeout_ns = seconds_field(L, "timeout", 0);
	d->cfg.start_period_ns = seconds_field(L, "start_period", 0);
	d->cfg.start_interval_ns = seconds_field(L, "start_interval", 0);
	d->cfg.initial_delay_ns = seconds_field(L, "initial_delay", 0);
	d->cfg.failure_threshold = int_field(L, "retries", 0);
	d->cfg.success_threshold = int_field(L, "success_threshold", 0);
	ms_err err = {0};
	if (hc_config_check(&d->cfg, &err))
		return luaL_error(L, "check \"%s\": %s", d->name, err.msg);
	if (lua_getfield(L, 1, "run") != LUA_TFUNCTION)
		return luaL_error(L, "check \"%s\": run must be a function", d->name);
	lua_Debug ar;
	lua_pushvalue(L, -1);
	if (lua_getinfo(L, ">S", &ar)) {
		snprintf(d->script, sizeof d->script, "%s", ar.short_src);
		d->line = ar.linedefined;
	}
	d->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	c->n++;
	return 0;
}

hk_checks *hk_new(lw_world *w, hk_event_fn ev, void *arg) {
	hk_checks *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->w = w;
	c->ev = ev;
	c->ev_arg = arg;
	c->mu = (rt_mutex)RT_MUTEX_INIT;
	c->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->wall_offset = (int64_t)ts.tv_sec * RT_SECOND + ts.tv_nsec - rt_now();
	lw_set_ptr(w, HK_KEY, c);
	lw_register(w, "check", l_check);
	return c;
}

int hk_count(hk_checks *c) {
	return c ? c->n : 0;
}

/* ─── running ───────────────────────────────────────────────────────── */

typedef struct {
	bool ok;
	char *output;    /* number, or a string on the heap: the runner's stack stays small */
	char number[24]; /* an integer output (a status code), as tostring writes it */
} run_result;

/* An integer in decimal, as Lua's tostring writes it (no snprintf). */
static void format_integer(char *out, lua_Integer v) {
	char tmp[24];
	int n = 0;
	lua_Unsigned u = v < 0 ? 0 - (lua_Unsigned)v : (lua_Unsigned)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*out++ = '-';
	while (n)
		*out++ = tmp[--n];
	*out = 0;
}

/* run's results: ok [, output] */
static int take_result(lua_State *co, int nres, void *arg) {
	run_result *r = arg;
	int base = lua_gettop(co) - nres + 1;
	r->ok = nres >= 1 && lua_toboolean(co, base);
	if (nres >= 2 && lua_isinteger(co, base + 1)) {
		format_integer(r->number, lua_tointeger(co, base + 1));
		r->output = r->number;
	} else if (nres >= 2) {
		size_t n;
		const char *s = luaL_tolstring(co, base + 1, &n);
		r->output = strndup(s, n < HC_OUTPUT_MAX ? n : HC_OUTPUT_MAX);
		lua_pop(co, 1);
	}
	return 0;
}

static void emit(hk_checks *c, const hc_transition *t) {
	static const char *const subjects[] = {"check", "health", "readiness"};
	json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s}", "subject", subjects[t->subject], "check",
	                      t->check ? t->check : "", "from", hc_status_name(t->from), "to",
	                      hc_status_name(t->to), "reason", t->reason);
	if (c->ev)
		c->ev(c->ev_arg, "health", f);
	else
		json_decref(f);
}

/* A probe that raised, was stopped for its budget or ran past its timeout:
 * an "error" event naming the script and line, at most one per script per
 * the world's report period (lw_report_admit), the held-back ones counted
 * in the next. For a timeout (or an error of unknown place) the place is
 * run's definition. */
static void report(hk_checks *c, const hk_def *d, const lw_fault *f, int64_t took,
                   int64_t timeout) {
	/* no fault: it returned, late */
	static const char *const reasons[] = {[LW_FAULT_NONE] = "timeout",
	                                      [LW_FAULT_RAISED] = "raised",
	                                      [LW_FAULT_BUDGET] = "budget"};
	bool known = f->kind && f->script[0]; /* else where run is defined */
	const char *script = known ? f->script : d->script;
	int line = known ? f->line : d->line;
	uint64_t held;
	if (!c->ev || !lw_report_admit(c->w, script, &held))
		return;
	char msg[160] = "";
	if (!f->kind)
		snprintf(msg, sizeof msg, "the check ran %lld ms, past its timeout (%lld ms)",
		         (long long)(took / RT_MILLISECOND), (long long)(timeout / RT_MILLISECOND));
	json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "script", script, "check", d->name, "reason",
	                      reasons[f->kind], "message", f->kind ? f->message : msg);
	if (e && line > 0)
		json_object_set_new(e, "line", json_integer(line));
	if (e && held)
		json_object_set_new(e, "suppressed", json_integer((json_int_t)held));
	if (e)
		c->ev(c->ev_arg, "error", e);
}

typedef struct {
	hk_checks *c;
	int i;
} runner_arg;

static void runner(void *p) {
	runner_arg *a = p;
	hk_checks *c = a->c;
	int i = a->i;
	free(a);
	hk_def *d = &c->defs[i];
	for (;;) {
		rt_mutex_lock(&c->mu);
		int64_t due = c->paused ? HC_NEVER : hc_next_due(hc_set_at(c->set, i));
		int64_t timeout = hc_config_of(hc_set_at(c->set, i))->timeout_ns;
		uint64_t epoch = c->epoch;
		rt_mutex_unlock(&c->mu);
		rt_case cs[2] = {{.c = c->done, .dir = RT_RECV}, {.c = c->kick[i], .dir = RT_RECV}};
		int got = rt_select(cs, 2, due == HC_NEVER ? RT_FOREVER : due);
		if (got == 0)
			break; /* stopped */
		if (got == 1)
			continue; /* paused or restarted: a new schedule */
		run_result r = {0};
		ms_err err; /* 1 KiB: set, not zeroed, every second of every check */
		err.code = 0;
		err.msg[0] = 0;
		hc_result res = {.start_ns = rt_now()};
		lw_fault f;
		int rc = lw_call_ref(c->w, d->ref, d->name, NULL, take_result, &r, &err, &f);
		res.end_ns = rt_now();
		if (rc == -ECANCELED) /* the world stopped under the probe: no result */
			break;
		bool late = res.end_ns - res.start_ns > timeout;
		if (rc) {
			res.outcome = HC_ERROR;
			res.exit_code = -1;
			res.output = err.msg;
		} else if (late) {
			res.outcome = HC_TIMEOUT;
			res.exit_code = -1;
			res.output = "the check ran past its timeout";
		} else {
			res.outcome = r.ok ? HC_PASS : HC_FAIL;
			res.exit_code = r.ok ? 0 : 1;
			res.output = r.output;
		}
		if (res.output)
			res.output_len = strlen(res.output);
		hc_transition t[HC_TRANSITIONS_MAX];
		rt_mutex_lock(&c->mu);
		/* a probe of the process a restart replaced says nothing of the new one */
		int n = c->epoch == epoch ? hc_set_record(c->set, i, &res, t) : 0;
		/* as hc_record classifies it: past the timeout is a timeout */
		hc_probes_add(&d->probes, late ? HC_TIMEOUT : res.outcome,
		              res.end_ns - res.start_ns);
		rt_mutex_unlock(&c->mu);
		for (int k = 0; k < n; k++)
			emit(c, &t[k]);
		if (rc || late)
			report(c, d, &f, res.end_ns - res.start_ns, timeout);
		if (r.output != r.number)
			free(r.output);
	}
	rt_wg_done(&c->wg);
}

/* The declared checks as a set whose clock starts now. */
static hc_set *new_set(hk_checks *c, ms_err *err) {
	hc_config *cfgs = malloc((size_t)c->n * sizeof *cfgs);
	if (!cfgs) {
		ms_fail(err, -ENOMEM, "out of memory");
		return NULL;
	}
	for (int i = 0; i < c->n; i++) { /* names point into defs, which moved as it grew */
		cfgs[i] = c->defs[i].cfg;
		cfgs[i].name = c->defs[i].name;
	}
	hc_set *set = hc_set_new(cfgs, c->n, rt_now(), err);
	free(cfgs);
	return set;
}

int hk_start(hk_checks *c, ms_err *err) {
	c->started = true;
	if (!c->n)
		return 0;
	if (!(c->set = new_set(c, err)))
		return err->code ? err->code : -EINVAL;
	if (!(c->kick = calloc((size_t)c->n, sizeof *c->kick)))
		return ms_fail(err, -ENOMEM, "out of memory");
	for (int i = 0; i < c->n; i++)
		if (!(c->kick[i] = rt_chan_new(1, 1)))
			return ms_fail(err, -ENOMEM, "out of memory");
	c->done = rt_chan_new(1, 0);
	for (int i = 0; i < c->n; i++) {
		runner_arg *a = malloc(sizeof *a);
		if (!a)
			return ms_fail(err, -ENOMEM, "out of memory");
		*a = (runner_arg){c, i};
		rt_wg_add(&c->wg, 1);
		rt_go_stack(runner, a, "health check", LW_STACK_SIZE);
	}
	return 0;
}

/* Wake every runner to read the schedule again (a full kick channel
 * already says so). */
static void kick_runners(hk_checks *c) {
	char b = 0;
	for (int i = 0; c->kick && i < c->n; i++) {
		rt_case cs[1] = {{.c = c->kick[i], .dir = RT_SEND, .elem = &b}};
		rt_select(cs, 1, 0);
	}
}

void hk_pause(hk_checks *c, bool on) {
	if (!c || !c->set)
		return;
	rt_mutex_lock(&c->mu);
	c->epoch += on;
	c->paused = on;
	rt_mutex_unlock(&c->mu);
	kick_runners(c);
}

void hk_restart(hk_checks *c) {
	if (!c || !c->set)
		return;
	ms_err err = {0};
	hc_set *fresh = new_set(c, &err);
	if (!fresh) { /* the old set goes on; at least the probes resume */
		rt_mutex_lock(&c->mu);
		c->paused = false;
		rt_mutex_unlock(&c->mu);
		kick_runners(c);
		return;
	}
	rt_mutex_lock(&c->mu);
	hc_status was = hc_set_health(c->set);
	hc_set_free(c->set);
	c->set = fresh;
	c->paused = false;
	c->epoch++;
	rt_mutex_unlock(&c->mu);
	kick_runners(c);
	if (was != HC_STARTING) {
		hc_transition t = {.subject = HC_OF_HEALTH, .from = was, .to = HC_STARTING};
		snprintf(t.reason, sizeof t.reason, "the container restarted");
		emit(c, &t);
	}
}

void hk_stop(hk_checks *c) {
	if (!c)
		return;
	if (c->done) {
		rt_chan_close(c->done);
		rt_wg_wait(&c->wg);
		rt_chan_free(c->done);
	}
	for (int i = 0; c->kick && i < c->n; i++)
		if (c->kick[i])
			rt_chan_free(c->kick[i]);
	free(c->kick);
	hc_set_free(c->set);
	free(c->defs);
	free(c);
}

json_t *hk_json(hk_checks *c) {
	if (!c || !c->set)
		return json_null();
	rt_mutex_lock(&c->mu);
	json_t *j = hc_set_to_json(c->set, c->wall_offset);
	json_t *checks = json_object_get(j, "Checks"); /* in the defs' order */
	for (int i = 0; i < c->n && checks; i++)
		json_object_set_new(json_array_get(checks, (size_t)i), "Probes",
		                    hc_probes_json(&c->defs[i].probes));
	rt_mutex_unlock(&c->mu);
	return j;
}
