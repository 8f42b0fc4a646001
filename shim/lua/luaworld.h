/*
 * luaworld.h — Lua 5.4 worlds on the runtime (prefix lw_).
 *
 * A world is one lua_State with the scripts loaded into it. Each task (a
 * health check's run, an event handler) is a Lua coroutine resumed by its
 * own goroutine; one goroutine is inside a world at a time (the world's
 * lock, released whenever the task parks), so worlds run in parallel and
 * a world never sees a data race.
 *
 * Blocking calls the API gives scripts (sleep, ...) yield the coroutine
 * with a request; the goroutine drops the lock, does the work parked on
 * the runtime, and resumes the coroutine with the result. A task that runs
 * past its time slice is preempted: sysmon's preempt hook arms a count
 * hook on its coroutine, which yields at the next instruction (a yield, not
 * an error, so a script's pcall cannot catch it); past its CPU budget the
 * task is stopped with an error naming the script and line. Memory is
 * capped per world (lua_Alloc); scripts are text only and see no io, os,
 * debug, package, load of binary chunks or string.dump. A script's error
 * ends its task only.
 */
#ifndef MOONSHIM_LUAWORLD_H
#define MOONSHIM_LUAWORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "rt.h"

#define LW_DEFAULT_MEM    (8u << 20)             /* bytes per world */
#define LW_DEFAULT_BUDGET (200 * RT_MILLISECOND) /* CPU per task run */
/* How long a script's top level may wait (sleep, channels) before the
 * wait is ended with an error: the container starts after the loads. */
#define LW_DEFAULT_LOAD_WAIT (10 * RT_SECOND)
/* The stack of a goroutine that runs Lua. Lua lets C recurse up to its
 * C-call limit (200 levels: nested pcall, metamethods, error handlers,
 * the parser on deeply nested text), about 1 KiB of C stack a level, so
 * the default 64 KiB stack would overflow: every task runs on one of
 * these (lw_load, lw_go and go() make them; other callers of lw_call and
 * lw_call_ref start their goroutines with it). Only touched pages cost. */
#define LW_STACK_SIZE (512u << 10)
/* A script file larger than this is refused (lw_load_file): no check or
 * policy is that big, and reading it must stay bounded. */
#define LW_SCRIPT_MAX (4u << 20)
/* A world's name (a container id: containerd allows 76 characters) is kept
 * whole up to this many bytes; longer ones are cut. */
#define LW_NAME_MAX 256
/* A script's name as messages give it (Lua's short_src: up to 60 bytes). */
#define LW_SRC_MAX 128
/* Reports of a world's script errors (lw_report_admit): at most one per
 * script per this long, and this many scripts remembered (past them the
 * one quiet longest is forgotten). */
#define LW_DEFAULT_REPORT_EVERY (10 * RT_SECOND)
#define LW_REPORT_SCRIPTS       32

typedef struct lw_world lw_world;

typedef struct lw_config {
	const char *name;        /* in messages */
	size_t mem_limit;        /* 0: LW_DEFAULT_MEM */
	int64_t cpu_budget_ns;   /* 0: LW_DEFAULT_BUDGET */
	int64_t load_wait_ns;    /* 0: LW_DEFAULT_LOAD_WAIT */
	int64_t report_every_ns; /* 0: LW_DEFAULT_REPORT_EVERY */
	/* where log() and print() go; NULL: stderr as "lua[name]: text" */
	void (*log)(void *arg, const char *script, int line, const char *text);
	void *log_arg;
} lw_config;

typedef struct lw_stats {
	size_t mem_used, mem_peak;
	uint64_t tasks, preemptions, killed;
} lw_stats;

/* In a goroutine (the runtime must be running). */
lw_world *lw_new(const lw_config *c, ms_err *err);
/* Stop the world's own tasks: go() refuses from now on, a task waiting in
 * sleep() or on a channel (or starting to) ends, and the tasks go()
 * started are waited for. Other tasks run on (an exit handler may still
 * post a webhook). Idempotent. */
void lw_stop_tasks(lw_world *w);
/* After every task of the world ended (lw_stop_tasks is done first). */
void lw_free(lw_world *w);

/* Load a script and run its top level as a task (on a goroutine of its
 * own, waited for). chunkname names it in messages ("scripts/http.lua").
 * A wait at the top level ends after cfg.load_wait_ns with an error. */
int lw_load(lw_world *w, const char *chunkname, const char *src, size_t len, ms_err *err);
int lw_load_file(lw_world *w, const char *path, ms_err *err);

/* Run the global function fn as a task on this goroutine (one started
 * with LW_STACK_SIZE) until it ends; 0, or the error ("script:line:
 * message") in err. */
int lw_call(lw_world *w, const char *fn, ms_err *err);

/* The same on a new goroutine; done(arg, rc, message) when it ends. */
typedef void (*lw_done_fn)(void *arg, int rc, const char *msg);
int lw_go(lw_world *w, const char *fn, lw_done_fn done, void *arg, ms_err *err);

void lw_stats_get(lw_world *w, lw_stats *s);

/* ─── for API modules (the functions a world gives its scripts) ─────── */

typedef struct lua_State lua_State;
struct luaL_Reg;

/* From a C function a task called: park the task. work(ctx) then runs on
 * the task's goroutine without the world's lock (it may block on the
 * runtime: netpoller, timers, channels); afterwards, under the lock,
 * push(L, ctx) pushes what the script's call returns and says how many.
 * ctx must live until push returns (a C function's locals do not: put it
 * in a userdata or malloc it and free it in push). Use as
 * `return lw_park(L, ctx, work, push);`. Only from the task's own
 * coroutine; elsewhere it raises an error. */
int lw_park(lua_State *L, void *ctx, void (*work)(void *ctx), int (*push)(lua_State *L, void *ctx));

/* How a task failed, for its caller to report: raised (an error, the
 * memory cap included) or stopped for its CPU budget; where (the script
 * and line of the innermost Lua function running then; "" and 0 when not
 * known); and the Lua error (message: in the call's err, after "what: ").
 * kind LW_FAULT_NONE: it did not fail, or was ended by the world's stop. */
typedef enum { LW_FAULT_NONE, LW_FAULT_RAISED, LW_FAULT_BUDGET } lw_fault_kind;
typedef struct lw_fault {
	lw_fault_kind kind;
	char script[LW_SRC_MAX];
	int line;
	const char *message;
} lw_fault;

/* Run the function in registry slot ref (luaL_ref) as a task on this
 * goroutine. args(co, arg), if given, pushes its arguments and says how
 * many; take(co, nres, arg), if given, reads its nres results (under the
 * lock) and returns 0 or an error code. what names it in messages.
 * fault, if given, says how it failed. */
int lw_call_ref(lw_world *w, int ref, const char *what, int (*args)(lua_State *co, void *arg),
                int (*take)(lua_State *co, int nres, void *arg), void *arg, ms_err *err,
                lw_fault *fault);

/* Whether a report (an "error" event) of a failure in script goes out now:
 * the first does, then at most one per cfg.report_every_ns; *suppressed is
 * how many were held back before this one (0 when it is held back). */
bool lw_report_admit(lw_world *w, const char *script, uint64_t *suppressed);

/* For API modules' waits: a channel closed when the world stops (select
 * on it next to what you wait for), and, from push, lw_cancel(L) to end
 * the task instead of resuming it. */
typedef struct rt_chan rt_chan;
rt_chan *lw_done(lua_State *L);
void lw_cancel(lua_State *L);

/* Seconds from scripts (timeouts, intervals, sleeps, grace periods), the
 * one conversion to nanoseconds. The number at idx (a field pushed there,
 * or an argument) must lie in [min_s, max_s]; NaN, a non-number, or a
 * value below min_s raises a Lua error "FN: FIELD must be a number of
 * seconds from MIN to MAX, not V". Above max_s, LW_SEC_REFUSE raises the
 * same error and LW_SEC_CLAMP returns max_s (a sleep of 1e10 s is "for
 * ever"). max_s is at most LW_SECONDS_MAX. */
#define LW_SECONDS_MAX (365.0 * 24 * 3600) /* a year: longer is for ever */
typedef enum { LW_SEC_REFUSE, LW_SEC_CLAMP } lw_sec_over;
int64_t lw_seconds(lua_State *L, int idx, const char *fn, const char *field, double min_s,
                   double max_s, lw_sec_over over);

/* A pointer for API modules to find from their C functions (kept in the
 * world's registry under key). */
void lw_set_ptr(lw_world *w, const char *key, void *p);
void *lw_get_ptr(lua_State *L, const char *key);

/* Register a C function as a global of every script in w (before
 * loading them). */
void lw_register(lw_world *w, const char *name, int (*fn)(lua_State *L));
/* Register a table of functions as a global library (e.g. "http"). */
void lw_register_lib(lw_world *w, const char *name, const struct luaL_Reg *fns);

#endif
