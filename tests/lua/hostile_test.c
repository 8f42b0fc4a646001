/*
 * hostile_test.c — scripts and data that used to kill or hang the
 * supervisor, each run as a task of a real world: the task gets a Lua
 * error naming the problem, and the world (and the process) carries on.
 * JSON nested past JL_MAX_DEPTH and cycles in json.decode/encode and emit;
 * C recursion up to Lua's own limit on a task's stack (xpcall whose
 * handler errors, nested pcall, metamethod chains, deeply nested source);
 * go() past the memory cap; __gc finalizers; a top level that waits
 * forever.
 */
#include "harness.h"
#include "lwtest.h"

#include "../../shim/lua/luaapi.h"
#include "../../shim/lua/luaworld.h"
#include "../../shim/lua/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000LL

/* Load src into w and run its function `main` as a task of its own
 * goroutine (lw_go), as checks and handlers run; its rc, message in r. */
static void run_main(lw_world *w, const char *name, const char *src, result *r) {
	ms_err err = {0};
	CHECKF(lw_load(w, name, src, strlen(src), &err) == 0, "%s", err.msg);
	r->done = rt_chan_new(sizeof(int), 1);
	CHECK(lw_go(w, "main", done_cb, r, &err) == 0);
	int x;
	rt_chan_recv(r->done, &x);
	rt_chan_free(r->done);
}

static lw_world *api_world(const char *name, int64_t budget, size_t mem) {
	ms_err err = {0};
	lw_config c = {.name = name, .cpu_budget_ns = budget, .mem_limit = mem};
	lw_world *w = lw_new(&c, &err);
	CHECKF(w, "lw_new: %s", err.msg);
	la_open(w);
	return w;
}

/* ─── JSON ──────────────────────────────────────────────────────────── */

static int emitted;
static void count_emit(void *arg, const char *type, json_t *fields) {
	emitted++;
	json_decref(fields);
}

static int json_main(void *arg) {
	lw_world *w = api_world("json", 5000 * MS, 0);
	pl_env env = {.pid = -1, .pidfd = -1, .emit = count_emit};
	pl_engine *p = pl_new(w, &env);
	result r = {0};
	run_main(w, "json.lua",
	         "function main()\n"
	         "  local ok, v, e = pcall(json.decode, string.rep('[', 5000))\n"
	         "  assert(ok and v == nil, 'decode of 5000 [ did not return nil, msg')\n"
	         "  assert(e == 'json.decode: JSON nested deeper than 64 levels', e)\n"
	         "  v, e = json.decode(string.rep('{\"a\":', 100000))\n"
	         "  assert(v == nil and e:find('nested deeper than 64'), e)\n"
	         "  local t = {a = 1}; t.self = t\n"
	         "  local ok2, e2 = pcall(json.encode, t)\n"
	         "  assert(not ok2 and e2:find('json.encode: cycle'), e2)\n"
	         "  local l = {1}; l[2] = l\n"
	         "  ok2, e2 = pcall(json.encode, {x = l})\n"
	         "  assert(not ok2 and e2:find('json.encode: cycle'), e2)\n"
	         "  local d = {} for i = 1, 100000 do d = {d} end\n"
	         "  ok2, e2 = pcall(json.encode, d)\n"
	         "  assert(not ok2 and e2:find('json.encode: table nested deeper than 64'), e2)\n"
	         "  ok2, e2 = pcall(emit, 'x', t)\n"
	         "  assert(not ok2 and e2:find('emit: cycle'), e2)\n"
	         "  ok2, e2 = pcall(emit, 'x', {d = d})\n"
	         "  assert(not ok2 and e2:find('emit: table nested deeper than 64'), e2)\n"
	         "  ok2, e2 = pcall(json.encode, {f = print})\n"
	         "  assert(not ok2 and e2:find('json.encode: a function has no JSON form'), e2)\n"
	         "  ok2, e2 = pcall(json.encode, {s = '\\255'})\n"
	         "  assert(not ok2 and e2:find('json.encode: a string that is not UTF%-8'), e2)\n"
	         "  -- the same table twice, not inside itself, is no cycle\n"
	         "  local s = {1, 2}\n"
	         "  assert(json.encode({a = s, b = s}) == '{\"a\":[1,2],\"b\":[1,2]}')\n"
	         "  local deep = string.rep('[', 64) .. '1' .. string.rep(']', 64)\n"
	         "  assert(json.encode(json.decode(deep)) == deep)\n"
	         "  emit('ok', {n = 1})\n"
	         "end\n",
	         &r);
	CHECKF(r.rc == 0, "%s", r.msg);
	CHECK(emitted == 1);
	lw_stop_tasks(w);
	pl_stop(p);
	lw_free(w);
	return 0;
}

TEST(hostile_json_depth_and_cycles_are_lua_errors) {
	run_rt(1, json_main, NULL);
}

/* ─── C recursion ───────────────────────────────────────────────────── */

static int crec_main(void *arg) {
	lw_world *w = api_world("crec", 5000 * MS, 0);
	result r = {0};
	run_main(w, "crec.lua",
	         "function main()\n"
	         "  local ok, e = xpcall(error, function(m) error(m) end, 'x')\n"
	         "  assert(not ok, 'xpcall with an erroring handler')\n"
	         "  local depth = 0\n"
	         "  local function f() depth = depth + 1; return pcall(f) end\n"
	         "  assert(f() and depth > 150, depth)\n"
	         "  local t = setmetatable({}, {__index = function(t, k) return t[k] end})\n"
	         "  assert(not pcall(function() return t.x end))\n"
	         "  local s = setmetatable({}, {__tostring = function(s) return tostring(s) end})\n"
	         "  assert(not pcall(tostring, s))\n"
	         "  local g, err = load('return ' .. string.rep('{', 100000))\n"
	         "  assert(g == nil and err, 'nested source')\n"
	         "  g, err = load('return ' .. string.rep('(', 100000) .. '1' .. "
	         "string.rep(')', 100000))\n"
	         "  assert(g == nil and err, 'nested parentheses')\n"
	         "  local deep = {} for i = 1, 100000 do deep = {deep} end\n"
	         "  assert(type(tostring(deep)) == 'string')\n"
	         "end\n",
	         &r);
	CHECKF(r.rc == 0, "%s", r.msg);
	/* a top level that nests deep is a load error, not a crash */
	ms_err err = {0};
	size_t n = 100000;
	char *src = malloc(n);
	memset(src, '{', n);
	memcpy(src, "x = ", 4);
	CHECK(lw_load(w, "deep.lua", src, n, &err) != 0);
	CHECKF(strstr(err.msg, "deep.lua") && strstr(err.msg, "C stack overflow"), "%s", err.msg);
	free(src);
	lw_free(w);
	return 0;
}

TEST(hostile_c_recursion_stays_on_the_task_stack) {
	run_rt(1, crec_main, NULL);
}

/* ─── go() past the memory cap ──────────────────────────────────────── */

static int gobomb_main(void *arg) {
	lw_world *w = api_world("gobomb", 10000 * MS, 1 << 20); /* the cap stops it */
	result r = {0};
	int64_t start = rt_now();
	run_main(w, "gobomb.lua",
	         "function main()\n"
	         "  local ok, e = pcall(function()\n"
	         "    for i = 1, 30000 do go(function() sleep(100) end) end\n"
	         "  end)\n"
	         "  assert(not ok, 'go() 30000 times fits the cap?')\n"
	         "  assert(e:find('go: out of memory %(world cap 1048576 bytes%)'), e)\n"
	         "end\n",
	         &r);
	CHECKF(r.rc == 0, "%s", r.msg);
	lw_stats st;
	lw_stats_get(w, &st);
	CHECKF(st.mem_peak <= 1 << 20, "peak %zu", st.mem_peak);
	int64_t t0 = rt_now();
	fprintf(stderr, "go() bomb: %llu tasks, peak %zu bytes, stopped by the cap after %lld ms\n",
	        (unsigned long long)st.tasks, st.mem_peak, (long long)((t0 - start) / MS));
	lw_free(w); /* the sleeping go() tasks end */
	CHECKF(rt_now() - t0 < 5000 * MS, "teardown took %lld ms",
	       (long long)((rt_now() - t0) / MS));
	return 0;
}

TEST(hostile_go_past_the_cap_is_the_scripts_error) {
	run_rt(2, gobomb_main, NULL);
}

/* ─── finalizers and waits at the top level ─────────────────────────── */

static int gc_main(void *arg) {
	lw_world *w = api_world("gc", 0, 0);
	ms_err err = {0};
	const char *src = "setmetatable({}, {__gc = function() while true do end end})\n";
	CHECK(lw_load(w, "gc.lua", src, strlen(src), &err) != 0);
	CHECKF(strstr(err.msg, "gc.lua:1: setmetatable: __gc finalizers are not allowed"), "%s",
	       err.msg);
	/* the placeholder idiom: __gc added after setmetatable never runs */
	src = "local mt = {}\nlocal o = setmetatable({}, mt)\n"
	      "mt.__gc = function() while true do end end\n";
	CHECKF(lw_load(w, "late.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	/* the engine's own objects: their metatables are not the script's */
	src = "local c = chan()\nassert(getmetatable(c) == 'locked')\n"
	      "assert(not pcall(setmetatable, c, {}))\n";
	CHECKF(lw_load(w, "chan.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	int64_t t0 = rt_now();
	lw_free(w);
	CHECKF(rt_now() - t0 < 1000 * MS, "closing took %lld ms",
	       (long long)((rt_now() - t0) / MS));
	return 0;
}

TEST(hostile_gc_finalizers_refused_close_is_bounded) {
	run_rt(1, gc_main, NULL);
}

/* A go() task parked with a <close> variable whose handler loops: the
 * world's stop ends the wait, and unwinding the task runs the handler,
 * which the CPU budget stops as it would the script's own loop. */
static int close_main(void *arg) {
	lw_world *w = api_world("close", 100 * MS, 0);
	ms_err err = {0};
	const char *src = "go(function()\n"
	                  "  local x <close> = setmetatable({}, {__close = function()\n"
	                  "    while true do end end})\n"
	                  "  sleep(1e10)\n"
	                  "end)\n";
	CHECKF(lw_load(w, "close.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	rt_sleep(50 * MS); /* it parks */
	int64_t t0 = rt_now();
	lw_free(w);
	int64_t took = rt_now() - t0;
	CHECKF(took < 2000 * MS, "the stop took %lld ms", (long long)(took / MS));
	return 0;
}

TEST(hostile_looping_close_handler_is_stopped_at_the_worlds_stop) {
	run_rt(1, close_main, NULL);
}

static int toplevel_main(void *arg) {
	ms_err err = {0};
	lw_config c = {.name = "top", .load_wait_ns = 300 * MS};
	lw_world *w = lw_new(&c, &err);
	CHECK(w != NULL);
	la_open(w);
	int64_t t0 = rt_now();
	const char *src = "log('waiting')\nsleep(1e10)\n";
	CHECK(lw_load(w, "policy.lua", src, strlen(src), &err) == -ETIMEDOUT);
	int64_t took = rt_now() - t0;
	CHECKF(took < 2000 * MS, "the top level waited %lld ms", (long long)(took / MS));
	CHECKF(strstr(err.msg, "policy.lua: its top level still waited") != NULL, "%s", err.msg);
	/* a channel wait too, and the world still loads and runs scripts */
	src = "local ch = chan()\nch:recv()\n";
	CHECK(lw_load(w, "chan.lua", src, strlen(src), &err) == -ETIMEDOUT);
	src = "function f() sleep(0.01) return 1 end\n";
	CHECKF(lw_load(w, "ok.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "f", &err) == 0, "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(hostile_top_level_wait_is_bounded) {
	run_rt(1, toplevel_main, NULL);
}
