/*
 * chan_test.c — go() and channels (shim/lua/luachan.c, shim/lua/luaworld.c):
 * values in order across tasks, buffered and unbuffered, timeouts, close
 * and its misuses, and lw_stop_tasks ending waiting and endless tasks.
 */
#include "harness.h"

#include "../../shim/lua/luachan.h"
#include "../../shim/lua/luaworld.h"

#include <errno.h>
#include <string.h>

#define MS 1000000LL

static lw_world *chan_world(const char *name) {
	ms_err err = {0};
	lw_config c = {.name = name};
	lw_world *w = lw_new(&c, &err);
	CHECKF(w, "lw_new: %s", err.msg);
	lc_open(w);
	return w;
}

static int load(lw_world *w, const char *name, const char *src, ms_err *err) {
	return lw_load(w, name, src, strlen(src), err);
}

static int pipeline_main(void *arg) {
	lw_world *w = chan_world("pipeline");
	ms_err err = {0};
	CHECKF(
	    load(w, "pipe.lua",
	         "out = {}\n"
	         "local nums, squares, fin = chan(), chan(8), chan(1)\n"
	         "go(function() for i = 1, 100 do nums:send(i) end nums:close() end)\n"
	         "for k = 1, 3 do\n"
	         "  go(function()\n"
	         "    while true do local v, ok = nums:recv(); if not ok then break end;"
	         " squares:send(v * v) end\n"
	         "    fin:send(k)\n"
	         "  end)\n"
	         "end\n"
	         "go(function()\n"
	         "  local sum, closed = 0, 0\n"
	         "  while closed < 3 do\n"
	         "    local v, ok = squares:recv(0.01)\n"
	         "    if ok then sum = sum + v\n"
	         "    else local _, done = fin:recv(0); if done then closed = closed + 1 end end\n"
	         "  end\n"
	         "  while squares:len() > 0 do sum = sum + squares:recv() end\n"
	         "  out.sum = sum\n"
	         "end)\n",
	         &err) == 0,
	    "%s", err.msg);
	CHECKF(load(w, "wait.lua",
	            "for i = 1, 500 do if out.sum then break end sleep(0.01) end\n"
	            "assert(out.sum == 338350, tostring(out.sum))\n",
	            &err) == 0,
	       "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(chan_pipeline_of_go_tasks_sums_in_order) {
	run_rt(2, pipeline_main, NULL);
}

static int semantics_main(void *arg) {
	lw_world *w = chan_world("semantics");
	ms_err err = {0};
	CHECKF(load(w, "sem.lua",
	            "local c = chan(2)\n"
	            "assert(c:send('a') and c:send({x = 1}))\n"
	            "assert(c:send('full', 0) == false)  -- no room, no wait\n"
	            "local t0 = now()\n"
	            "assert(c:send('full', 0.05) == false and now() - t0 >= 0.04)\n"
	            "assert(c:len() == 2)\n"
	            "assert(c:recv() == 'a' and c:recv().x == 1)\n"
	            "local v, ok, why = c:recv(0.02)\n"
	            "assert(v == nil and ok == false and why == 'timeout')\n"
	            "c:send(7); c:close()\n"
	            "assert(c:recv() == 7)\n"
	            "local v2, ok2 = c:recv()\n"
	            "assert(v2 == nil and ok2 == false)\n"
	            "assert(not pcall(c.send, c, 1))\n"
	            "assert(not pcall(c.close, c))\n"
	            "assert(not pcall(chan, -1))\n"
	            "-- a sender waiting on an unbuffered channel: close refuses\n"
	            "local u = chan()\n"
	            "go(function() u:send('x', 0.5) end)\n"
	            "sleep(0.05)\n"
	            "local okc, e = pcall(u.close, u)\n"
	            "assert(not okc and e:find('wait'), e)\n"
	            "assert(u:recv() == 'x')\n"
	            "-- buffered values left behind are dropped with the channel\n"
	            "for i = 1, 200 do local b = chan(4); b:send({}); b:send('s') end\n",
	            &err) == 0,
	       "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(chan_send_recv_timeout_close_semantics) {
	run_rt(2, semantics_main, NULL);
}

static int stop_main(void *arg) {
	lw_world *w = chan_world("stop");
	ms_err err = {0};
	CHECKF(load(w, "stop.lua",
	            "go(function() while true do sleep(0.01) end end)\n"
	            "go(function() chan():recv() end)\n"
	            "go(function() chan():send(1) end)\n"
	            "go(function() sleep(3600) end)\n",
	            &err) == 0,
	       "%s", err.msg);
	rt_sleep(50 * MS);
	int64_t t0 = rt_now();
	lw_stop_tasks(w);
	int64_t took = rt_now() - t0;
	CHECKF(took < 500 * MS, "the tasks took %lld ms to end", (long long)(took / MS));
	CHECK(load(w, "after.lua", "go(function() end)", &err) != 0);
	CHECKF(strstr(err.msg, "stopping") != NULL, "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(chan_stop_tasks_ends_waiting_and_endless_go_tasks) {
	run_rt(2, stop_main, NULL);
}
