/*
 * defaultpolicy_test.c — the built-in default policy (policies/default.lua)
 * on goroutine-leak events: it acts (a dry-run notify) on a "confirmed"
 * leak of the workload only, never on a "suspected" one (docs/go-watch.md
 * §2.4: a pool warming up is suspected, never confirmed).
 */
#include "harness.h"
#include "lwtest.h"

#include "../../shim/lua/luaapi.h"
#include "../../shim/lua/luaworld.h"
#include "../../shim/lua/policy.h"

#include <string.h>

extern const unsigned char moonshim_lua_default[];
extern const unsigned long moonshim_lua_default_len;

static int actions;
static char trigger[64];
static void collect(void *arg, const char *type, json_t *fields) {
	if (!strcmp(type, "policy.action")) {
		actions++;
		const char *t = json_string_value(json_object_get(fields, "trigger"));
		snprintf(trigger, sizeof trigger, "%s", t ? t : "");
		CHECK(json_is_true(json_object_get(fields, "dry_run")));
	}
	json_decref(fields);
}

static void handled(void *arg) {
	rt_chan_close(arg);
}

/* Dispatch one go.goroutine_leak event of that stage and wait for its handlers. */
static void leak_event(pl_engine *p, const char *stage) {
	json_t *f = json_pack("{s:s, s:s, s:s, s:s}", "kind", "site", "stage", stage, "subject",
	                      "workload", "detail", "350 goroutines blocked");
	rt_chan *done = rt_chan_new(1, 0);
	pl_dispatch_then(p, "go.goroutine_leak", f, handled, done);
	char x;
	rt_chan_recv(done, &x);
	rt_chan_free(done);
	json_decref(f);
}

static int default_main(void *arg) {
	ms_err err = {0};
	lw_config c = {.name = "default"};
	lw_world *w = lw_new(&c, &err);
	CHECKF(w, "lw_new: %s", err.msg);
	la_open(w);
	pl_env env = {.pid = -1, .pidfd = -1, .emit = collect};
	pl_engine *p = pl_new(w, &env);
	CHECKF(lw_load(w, "policies/default.lua", (const char *)moonshim_lua_default,
	               moonshim_lua_default_len, &err) == 0,
	       "%s", err.msg);
	leak_event(p, "suspected");
	CHECKF(actions == 0, "%d actions on a suspected leak", actions);
	leak_event(p, "confirmed");
	CHECKF(actions == 1 && !strcmp(trigger, "go.goroutine_leak"), "%d actions, trigger %s",
	       actions, trigger);
	lw_stop_tasks(w);
	pl_stop(p);
	lw_free(w);
	return 0;
}

TEST(default_policy_acts_on_confirmed_leaks_only) {
	run_rt(1, default_main, NULL);
}
