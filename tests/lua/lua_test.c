/*
 * lua_test.c — the Lua engine (shim/lua/luaworld.c): the sandbox, load errors
 * with file and line, parking calls, preemption of a runaway loop while
 * another task keeps its period, the CPU budget, the memory cap, and one
 * goroutine inside a world at a time.
 */
#include "harness.h"
#include "lwtest.h"

#include "../../shim/lua/luaworld.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000LL

static lw_world *world(const char *name, size_t mem, int64_t budget) {
	ms_err err = {0};
	lw_config c = {.name = name, .mem_limit = mem, .cpu_budget_ns = budget};
	lw_world *w = lw_new(&c, &err);
	CHECKF(w, "lw_new: %s", err.msg);
	return w;
}

static int load(lw_world *w, const char *name, const char *src, ms_err *err) {
	return lw_load(w, name, src, strlen(src), err);
}

/* ─── sandbox and errors ────────────────────────────────────────────── */

static int sandbox_main(void *arg) {
	lw_world *w = world("sandbox", 0, 0);
	ms_err err = {0};
	CHECKF(load(w, "probe.lua",
	            "assert(io == nil and os == nil and debug == nil and package == nil)\n"
	            "assert(dofile == nil and loadfile == nil and require == nil and string.dump "
	            "== nil)\n"
	            "assert(load('return 1')() == 1)\n"
	            "local f, e = load('\\27Lua')  -- a binary chunk is refused\n"
	            "assert(f == nil and e:find('binary'), e)\n"
	            "assert(not pcall(collectgarbage, 'collect'))\n"
	            "assert(type(collectgarbage('count')) == 'number')\n",
	            &err) == 0,
	       "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_sandbox_has_no_io_os_debug_or_bytecode) {
	run_rt(1, sandbox_main, NULL);
}

static int syntax_main(void *arg) {
	lw_world *w = world("syntax", 0, 0);
	ms_err err = {0};
	CHECK(load(w, "scripts/bad.lua", "local x = 1\nif x then\n  x = x +\nend\n", &err) != 0);
	CHECKF(strstr(err.msg, "scripts/bad.lua:4:") != NULL, "message: %s", err.msg);
	/* a runtime error names its line too, and the world carries on */
	memset(&err, 0, sizeof err);
	CHECK(load(w, "scripts/boom.lua", "function f() error('boom') end\nf()\n", &err) != 0);
	CHECKF(strstr(err.msg, "scripts/boom.lua:1: boom") != NULL, "message: %s", err.msg);
	memset(&err, 0, sizeof err);
	CHECKF(load(w, "ok.lua", "function g() return 1 end", &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "g", &err) == 0, "%s", err.msg);
	CHECK(lw_call(w, "missing", &err) == -ENOENT);
	lw_free(w);
	return 0;
}

TEST(lua_errors_name_file_and_line_world_survives) {
	run_rt(1, syntax_main, NULL);
}

/* A world named by a 64-character container id keeps the whole id in its
 * messages (its name buffer once counted the NUL and cut the last one). */
static int long_name_main(void *arg) {
	char id[65];
	for (int i = 0; i < 64; i++)
		id[i] = "0123456789abcdef"[i % 16];
	id[64] = 0;
	lw_world *w = world(id, 0, 0);
	ms_err err = {0};
	CHECK(lw_call(w, "missing", &err) == -ENOENT);
	char want[128];
	snprintf(want, sizeof want, "%s: no function missing", id);
	CHECKF(strstr(err.msg, want) != NULL, "message: %s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_world_name_keeps_a_64_character_id) {
	run_rt(1, long_name_main, NULL);
}

/* Script files: read whole, bounded (LW_SCRIPT_MAX); a missing or
 * oversized one is one error naming the path, and the world carries on. */
static int script_file_main(void *arg) {
	lw_world *w = world("files", 0, 0);
	ms_err err = {0};
	char path[] = "/tmp/moonshim-lwfile-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	static const char src[] = "function h() return 2 end\n";
	CHECK(write(fd, src, sizeof src - 1) == (ssize_t)(sizeof src - 1));
	CHECKF(lw_load_file(w, path, &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "h", &err) == 0, "%s", err.msg);
	CHECK(ftruncate(fd, LW_SCRIPT_MAX + 1) == 0); /* a NUL-padded tail: too big */
	memset(&err, 0, sizeof err);
	CHECK(lw_load_file(w, path, &err) == -EFBIG);
	CHECKF(strstr(err.msg, path) && strstr(err.msg, "larger than"), "message: %s", err.msg);
	unlink(path);
	close(fd);
	memset(&err, 0, sizeof err);
	CHECK(lw_load_file(w, path, &err) == -ENOENT);
	CHECKF(strstr(err.msg, path) != NULL, "message: %s", err.msg);
	CHECKF(lw_call(w, "h", &err) == 0, "the world carries on: %s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_script_files_read_bounded_errors_name_the_path) {
	run_rt(1, script_file_main, NULL);
}

/* ─── parking, preemption, budget ───────────────────────────────────── */

static int runaway_main(void *arg) {
	/* one world: the ticker and the runaway share the lock, so the ticker
	 * keeps its period only if the runaway is preempted */
	lw_world *w = world("runaway", 0, 300 * MS);
	ms_err err = {0};
	CHECKF(load(w, "tick.lua",
	            "ticks, late = 0, 0\n"
	            "function ticker()\n"
	            "  local last = now()\n"
	            "  for i = 1, 20 do\n"
	            "    sleep(0.02)\n"
	            "    local t = now()\n"
	            "    if t - last > 0.1 then late = late + 1; log('late', i, t - last) end\n"
	            "    last = t\n"
	            "    ticks = ticks + 1\n"
	            "  end\n"
	            "end\n"
	            "function runaway()\n"
	            "  local n = 0\n"
	            "  while true do n = n + 1 end\n"
	            "end\n"
	            "function report() assert(ticks == 20, ticks); assert(late == 0, 'late ' .. "
	            "late) end\n",
	            &err) == 0,
	       "%s", err.msg);
	result a = {.done = rt_chan_new(sizeof(int), 1)}, b = {.done = rt_chan_new(sizeof(int), 1)};
	int64_t t0 = rt_now();
	CHECK(lw_go(w, "runaway", done_cb, &a, &err) == 0);
	CHECK(lw_go(w, "ticker", done_cb, &b, &err) == 0);
	int x;
	rt_chan_recv(a.done, &x);
	int64_t stopped_after = rt_now() - t0;
	CHECKF(a.rc == -ETIME, "runaway ended with %d: %s", a.rc, a.msg);
	CHECKF(strstr(a.msg, "tick.lua:14:") != NULL, "the message names the loop's line: %s",
	       a.msg);
	CHECKF(stopped_after < 2000 * MS, "stopped after %lld ms", (long long)(stopped_after / MS));
	rt_chan_recv(b.done, &x);
	CHECKF(b.rc == 0, "ticker: %s", b.msg);
	CHECKF(lw_call(w, "report", &err) == 0,
	       "the ticker kept its period while the runaway ran: %s", err.msg);
	lw_stats st;
	lw_stats_get(w, &st);
	CHECK(st.preemptions > 0 && st.killed == 1);
	fprintf(stderr, "runaway stopped after %lld ms with %llu preemptions: %s\n",
	        (long long)(stopped_after / MS), (unsigned long long)st.preemptions, a.msg);
	rt_chan_free(a.done);
	rt_chan_free(b.done);
	lw_free(w);
	return 0;
}

TEST(lua_runaway_preempted_then_stopped_others_keep_period) {
	run_rt(1, runaway_main, NULL);
}

static int pcall_main(void *arg) {
	/* pcall cannot catch the preemption (a yield) nor escape the budget */
	lw_world *w = world("pcall", 0, 100 * MS);
	ms_err err = {0};
	CHECK(load(w, "sneaky.lua",
	           "function f() while true do pcall(function() while true do end end) end end",
	           &err) == 0);
	CHECK(lw_call(w, "f", &err) == -ETIME);
	CHECKF(strstr(err.msg, "sneaky.lua:1:") != NULL, "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_pcall_cannot_escape_the_budget) {
	run_rt(1, pcall_main, NULL);
}

/* ─── memory ────────────────────────────────────────────────────────── */

static int membomb_main(void *arg) {
	lw_world *w = world("bomb", 1 << 20, 0);
	ms_err err = {0};
	CHECK(load(w, "bomb.lua",
	           "function bomb() local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end "
	           "end\n"
	           "function small() return #('y'):rep(100) end\n",
	           &err) == 0);
	CHECK(lw_call(w, "bomb", &err) == -ENOMEM);
	CHECKF(strstr(err.msg, "not enough memory") != NULL, "%s", err.msg);
	lw_stats st;
	lw_stats_get(w, &st);
	CHECKF(st.mem_peak <= (1 << 20), "peak %zu", st.mem_peak);
	/* the world still works once the bomb's garbage is collected */
	memset(&err, 0, sizeof err);
	CHECKF(lw_call(w, "small", &err) == 0, "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_memory_bomb_capped_world_survives) {
	run_rt(1, membomb_main, NULL);
}

/* ─── one goroutine in a world at a time; sleeping tasks cost no CPU ─── */

/* probe(): C code runs unpreempted, so a caller still inside when another
 * arrives means two goroutines ran inside the world at once. (A Lua-level
 * counter cannot tell: sysmon's preemption parks a task mid-loop and hands
 * the world to another, which is allowed.) */
static atomic_int probe_inside, probe_max;
static int l_probe(lua_State *L) {
	int n = atomic_fetch_add(&probe_inside, 1) + 1;
	for (volatile int i = 0; i < 20000; i++) /* stay a while: ~10-50 us */
		if (i == 10000 && atomic_load(&probe_inside) > n)
			n = atomic_load(&probe_inside);
	int m = atomic_load(&probe_max);
	while (n > m && !atomic_compare_exchange_weak(&probe_max, &m, n)) {
	}
	atomic_fetch_sub(&probe_inside, 1);
	return 0;
}

static int lock_main(void *arg) {
	lw_world *w = world("lock", 0, 0);
	ms_err err = {0};
	lw_register(w, "probe", l_probe);
	CHECK(load(w, "race.lua",
	           "done = 0\n"
	           "function worker()\n"
	           "  for i = 1, 50 do\n"
	           "    probe()\n"
	           "    local x = 0 for j = 1, 2000 do x = x + j end\n"
	           "    sleep(0)\n"
	           "  end\n"
	           "  done = done + 1\n"
	           "end\n"
	           "function check() assert(done == 200, done) end\n",
	           &err) == 0);
	result *r = calloc(200, sizeof *r); /* not on the goroutine's stack */
	rt_chan *all = rt_chan_new(sizeof(int), 200);
	for (int i = 0; i < 200; i++) {
		r[i] = (result){.done = all};
		CHECK(lw_go(w, "worker", done_cb, &r[i], &err) == 0);
	}
	int x;
	for (int i = 0; i < 200; i++)
		rt_chan_recv(all, &x);
	for (int i = 0; i < 200; i++)
		CHECKF(r[i].rc == 0, "%s", r[i].msg);
	CHECKF(lw_call(w, "check", &err) == 0, "%s", err.msg);
	CHECKF(atomic_load(&probe_max) == 1, "%d goroutines inside the world at once",
	       atomic_load(&probe_max));
	rt_chan_free(all);
	free(r);
	lw_free(w);
	return 0;
}

TEST(lua_one_goroutine_inside_a_world_at_a_time) {
	run_rt(2, lock_main, NULL);
}

/* ─── loops inside coroutines the script made ───────────────────────── */

static int coroutine_main(void *arg) {
	/* the coroutines inherit the task's count hook: a loop in one is
	 * stopped at the budget, whether the script lets the error through
	 * (wrap) or catches it (resume) and spins on */
	lw_world *w = world("co", 0, 150 * MS);
	ms_err err = {0};
	CHECKF(
	    load(w, "co.lua",
	         "function wrapped() coroutine.wrap(function() while true do end end)() end\n"
	         "function caught()\n"
	         "  while true do\n"
	         "    local ok, e = coroutine.resume(coroutine.create(function() while true do end "
	         "end))\n"
	         "    last = e\n"
	         "  end\n"
	         "end\n"
	         "function nested() coroutine.wrap(function() coroutine.wrap(function() "
	         "while true do end end)() end)() end\n"
	         "function fine() local co = coroutine.wrap(function() for i = 1, 3 do "
	         "coroutine.yield(i) end end) return co() + co() + co() end\n",
	         &err) == 0,
	    "%s", err.msg);
	static const char *const spinners[] = {"wrapped", "caught", "nested"};
	for (int i = 0; i < 3; i++) {
		memset(&err, 0, sizeof err);
		int64_t t0 = rt_now();
		int rc = lw_call(w, spinners[i], &err);
		int64_t took = rt_now() - t0;
		CHECKF(rc != 0 && strstr(err.msg, "co.lua:") && strstr(err.msg, "CPU"),
		       "%s ended with %d: %s", spinners[i], rc, err.msg);
		CHECKF(took < 1000 * MS, "%s stopped after %lld ms", spinners[i],
		       (long long)(took / MS));
	}
	memset(&err, 0, sizeof err);
	CHECKF(lw_call(w, "fine", &err) == 0, "coroutines that yield still work: %s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_loop_in_script_coroutine_stopped_at_budget) {
	run_rt(1, coroutine_main, NULL);
}
