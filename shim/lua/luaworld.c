/*
 * luaworld.c — the Lua engine: worlds, the sandbox, the capped allocator,
 * tasks as coroutines on goroutines, parking calls, preemption and budgets.
 *
 * Invariants:
 *  - w->mu is held exactly while a goroutine is inside lua_* calls on w;
 *    a task drops it around every park (sleep, preemption).
 *  - A task's coroutine is anchored in the registry (task->ref) while the
 *    task lives; the task struct is the goroutine's rt_set_local pointer,
 *    so sysmon's preempt hook finds the coroutine to arm.
 *  - The count hook only ever yields; stopping a task is the host's
 *    decision after the yield (pcall inside the script cannot catch it).
 *  - Coroutines are reused: a task takes one from the world's idle list
 *    (or makes one) and gives it back reset, so a check that runs every
 *    second does not allocate a thread, its stack and its CallInfo each
 *    time. An idle coroutine is anchored in the registry like a live one.
 *  - Lua raises on an allocation past the world's cap; C code allocates in
 *    Lua only inside a task's resume or a protected call (protected()),
 *    never where a raise would be a panic.
 *  - Lua runs only on goroutines of LW_STACK_SIZE: it lets C recurse to
 *    its own limit (200 levels), which a 64 KiB stack does not hold.
 *  - No script code runs where no hook can stop it: setmetatable refuses
 *    __gc (finalizers run with hooks off), and a task's coroutine is reset
 *    (its pending <close> handlers run) while it is still the task.
 */
#define _GNU_SOURCE
#include "luaworld.h"

#include "rt.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* instructions between the count hook's looks at the clock (~50 µs of
 * Lua): the bound on how long a spinning coroutine goes unnoticed */
#define HOOK_EVERY 10000
/* Idle coroutines a world keeps for its next tasks: about 1 KiB each; as
 * many as a burst of checks has in flight at once (1,000 started together
 * park in http.get side by side), beyond that they are left to the GC. */
#define IDLE_THREADS_MAX 1024
/* The allocator keeps freed blocks of up to SMALL_MAX bytes (in classes
 * SMALL_STEP apart) for the world's next allocations, up to KEPT_MAX bytes:
 * a burst of checks makes and drops the same few small tables and strings
 * each second, and malloc's own per-thread cache (7 blocks a size) does
 * not hold a burst, so without this each of them went to malloc's bins and
 * its arena grew and shrank every second. */
#define SMALL_STEP 16
#define SMALL_MAX  256
#define KEPT_MAX   (128 * 1024)
#if defined(__SANITIZE_ADDRESS__)
#define KEEP_BLOCKS 0 /* ASan sees every block's use and free */
#else
#define KEEP_BLOCKS 1
#endif

struct lw_world {
	lua_State *L;
	rt_mutex mu;
	lw_config cfg;
	size_t mem_used, mem_peak;
	void *kept[SMALL_MAX / SMALL_STEP]; /* freed small blocks by class, linked */
	size_t kept_bytes;
	uint64_t tasks, preemptions, killed;
	char name[LW_NAME_MAX + 1];
	/* closed by lw_stop_tasks: waits in sleep() and on channels end their
	 * task, go() refuses; go_wg counts the tasks go() started */
	rt_chan *done;
	bool stopping;
	rt_waitgroup go_wg;
	rt_chan *load_stop; /* for the next task made: lw_load's top level */
	/* coroutines of ended tasks, ready for the next (their registry refs) */
	struct idle_thread {
		lua_State *co;
		int ref;
	} * idle;
	int nidle, capidle;
	/* lw_report_admit's: the last report of each script, and how many
	 * were held back since */
	rt_mutex report_mu;
	struct report {
		char script[LW_SRC_MAX];
		int64_t last;
		uint64_t held;
	} reports[LW_REPORT_SCRIPTS];
	int nreports;
};

typedef enum { REQ_NONE = 0, REQ_PARK } req_kind;

typedef struct lw_task {
	lw_world *w;
	lua_State *co;
	int ref;
	volatile int in_lua;      /* read by the preempt hook on sysmon */
	volatile int preempt_req; /* set by sysmon: yield at the next hook */
	bool preempted;           /* the count hook yielded */
	int64_t resumed_at;       /* rt_now() when the current resume began */
	int preempt_line;
	char preempt_src[128];
	req_kind req;
	void *park_ctx;
	void (*park_work)(void *ctx);
	int (*park_push)(lua_State *L, void *ctx);
	bool cancel;          /* park_push said: end the task (the world stops) */
	bool budget_per_wait; /* go() tasks: the budget counts from the last wait */
	rt_chan *stop;        /* closed: this task's waits end (NULL: the world's done) */
	int64_t cpu_ns;       /* spent inside the world in this run */
} lw_task;

/* ─── memory ────────────────────────────────────────────────────────── */

/* Small blocks are malloc'd at their class's full size, so a kept block
 * fits any request of its class. Under w->mu, as every Lua call is. */
static int size_class(size_t n) {
	return KEEP_BLOCKS && n && n <= SMALL_MAX ? (int)((n - 1) / SMALL_STEP) : -1;
}

static void *block_get(lw_world *w, size_t n) {
	int c = size_class(n);
	if (c < 0)
		return malloc(n);
	void *p = w->kept[c];
	if (!p)
		return malloc((size_t)(c + 1) * SMALL_STEP);
	memcpy(&w->kept[c], p, sizeof p);
	w->kept_bytes -= (size_t)(c + 1) * SMALL_STEP;
	return p;
}

static void block_put(lw_world *w, void *p, size_t n) {
	int c = size_class(n);
	size_t sz = (size_t)(c + 1) * SMALL_STEP;
	if (c < 0 || w->kept_bytes + sz > KEPT_MAX) {
		free(p);
		return;
	}
	memcpy(p, &w->kept[c], sizeof p);
	w->kept[c] = p;
	w->kept_bytes += sz;
}

static void blocks_free(lw_world *w) {
	for (size_t c = 0; c < sizeof w->kept / sizeof *w->kept; c++)
		for (void *p = w->kept[c], *next; p; p = next) {
			memcpy(&next, p, sizeof next);
			free(p);
		}
	memset(w->kept, 0, sizeof w->kept);
	w->kept_bytes = 0;
}

/* A block of nsize bytes in place of ptr's osize: the same one while the
 * class holds, realloc between large sizes, else a copy. */
static void *block_resize(lw_world *w, void *ptr, size_t osize, size_t nsize) {
	int oc = size_class(osize), nc = size_class(nsize);
	if (oc < 0 && nc < 0)
		return realloc(ptr, nsize);
	if (oc >= 0 && oc == nc)
		return ptr;
	void *p = block_get(w, nsize);
	if (p) {
		memcpy(p, ptr, osize < nsize ? osize : nsize);
		block_put(w, ptr, osize);
	}
	return p;
}

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
	lw_world *w = ud;
	size_t old = ptr ? osize : 0; /* with no block, osize is a type tag */
	if (nsize == 0) {
		if (ptr)
			block_put(w, ptr, osize);
		w->mem_used -= old;
		return NULL;
	}
	if (nsize > old && w->mem_used + (nsize - old) > w->cfg.mem_limit)
		return NULL; /* Lua raises "not enough memory" in the script */
	void *p = ptr ? block_resize(w, ptr, osize, nsize) : block_get(w, nsize);
	if (!p)
		return NULL;
	w->mem_used = w->mem_used - old + nsize;
	if (w->mem_used > w->mem_peak)
		w->mem_peak = w->mem_used;
	return p;
}

/* ─── the API scripts see (first slice: time and logging) ───────────── */

static lw_task *task_of(lua_State *L) {
	lw_task *t = rt_get_local();
	return t && t->co == L ? t : NULL;
}

int lw_park(lua_State *L, void *ctx, void (*work)(void *ctx),
            int (*push)(lua_State *L, void *ctx)) {
	lw_task *t = task_of(L);
	if (!t)
		return luaL_error(L, "a blocking call is allowed only in a task's own coroutine, "
		                     "not in one the script made");
	t->req = REQ_PARK;
	t->park_ctx = ctx;
	t->park_work = work;
	t->park_push = push;
	return lua_yield(L, 0);
}

#define WORLD_KEY "moonshim.world"

static lw_world *world_of(lua_State *L) {
	lua_getfield(L, LUA_REGISTRYINDEX, WORLD_KEY);
	lw_world *w = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return w;
}

rt_chan *lw_done(lua_State *L) {
	lw_task *t = task_of(L);
	return t && t->stop ? t->stop : world_of(L)->done;
}

void lw_cancel(lua_State *L) {
	lw_task *t = task_of(L);
	if (t)
		t->cancel = true;
}

typedef struct {
	int64_t deadline;
	rt_chan *done;
	bool stopped;
} sleep_call;

/* The world's done channel never carries a value: ready only once closed. */
static void sleep_work(void *ctx) {
	sleep_call *s = ctx;
	s->stopped = rt_select(&(rt_case){.c = s->done, .dir = RT_RECV}, 1, s->deadline) == 0;
}

static int sleep_push(lua_State *L, void *ctx) {
	if (((sleep_call *)ctx)->stopped)
		lw_cancel(L);
	return 0;
}

/* sleep(seconds): parks the task. */
static int api_sleep(lua_State *L) {
	int64_t ns = lw_seconds(L, 1, "sleep", "the duration", 0, LW_SECONDS_MAX, LW_SEC_CLAMP);
	sleep_call *c = lua_newuserdatauv(L, sizeof *c, 0); /* lives on the stack while parked */
	*c = (sleep_call){.deadline = rt_deadline_in(ns), .done = lw_done(L)};
	return lw_park(L, c, sleep_work, sleep_push);
}

int64_t lw_seconds(lua_State *L, int idx, const char *fn, const char *field, double min_s,
                   double max_s, lw_sec_over over) {
	int isnum = 0;
	double s = lua_tonumberx(L, idx, &isnum);
	if (isnum && s > max_s && over == LW_SEC_CLAMP)
		s = max_s;
	if (!isnum || !(s >= min_s && s <= max_s)) { /* NaN fails both */
		char got[32], msg[256];              /* lua_pushfstring has no %g */
		if (isnum)
			snprintf(got, sizeof got, "%g", s);
		else
			snprintf(got, sizeof got, "a %s", luaL_typename(L, idx));
		snprintf(msg, sizeof msg,
		         "%s: %s must be a number of seconds from %g to %g, not %s", fn, field,
		         min_s, max_s, got);
		luaL_error(L, "%s", msg);
	}
	return (int64_t)(s * RT_SECOND);
}

static int api_now(lua_State *L) {
	lua_pushnumber(L, (double)rt_now() / RT_SECOND);
	return 1;
}

static int api_log(lua_State *L) {
	lw_task *t = rt_get_local();
	lw_world *w = t ? t->w : NULL;
	luaL_Buffer b;
	int n = lua_gettop(L);
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	const char *text = lua_tostring(L, -1);
	lua_Debug ar;
	const char *src = "?";
	int line = 0;
	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
		src = ar.short_src;
		line = ar.currentline;
	}
	if (w && w->cfg.log)
		w->cfg.log(w->cfg.log_arg, src, line, text);
	else
		fprintf(stderr, "lua[%s]: %s:%d: %s\n", w ? w->name : "?", src, line, text);
	return 0;
}

/* collectgarbage("count") only: a script may look, not drive the GC. */
static int api_collectgarbage(lua_State *L) {
	const char *opt = luaL_optstring(L, 1, "count");
	if (strcmp(opt, "count"))
		return luaL_error(L, "collectgarbage: only \"count\" is allowed");
	lua_pushnumber(L, (double)lua_gc(L, LUA_GCCOUNT, 0) +
	                      (double)lua_gc(L, LUA_GCCOUNTB, 0) / 1024);
	return 1;
}

/* load(text [, name]): text chunks only, in the caller's globals. */
static int api_load(lua_State *L) {
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");
	if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;
	}
	return 1;
}

static int api_go(lua_State *L);

/* setmetatable(t, mt) as the base library's (its original is upvalue 1),
 * except that mt may not have __gc: Lua runs finalizers with hooks off,
 * where neither preemption nor the CPU budget can stop one that loops,
 * and at the world's close nothing else could. A metatable without __gc
 * never makes t finalized, even if __gc is added to it later. */
static int api_setmetatable(lua_State *L) {
	if (lua_istable(L, 2)) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc finalizers are not allowed in "
			                     "scripts (use a <close> variable)");
		lua_pop(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static void open_sandbox(lua_State *L) {
	static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
	                                {LUA_COLIBNAME, luaopen_coroutine},
	                                {LUA_TABLIBNAME, luaopen_table},
	                                {LUA_STRLIBNAME, luaopen_string},
	                                {LUA_MATHLIBNAME, luaopen_math},
	                                {LUA_UTF8LIBNAME, luaopen_utf8},
	                                {NULL, NULL}};
	for (const luaL_Reg *l = libs; l->name; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	static const char *const removed[] = {"dofile", "loadfile", "require", NULL};
	for (const char *const *r = removed; *r; r++) {
		lua_pushnil(L);
		lua_setglobal(L, *r);
	}
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump"); /* bytecode out is bytecode in elsewhere */
	lua_pop(L, 1);
	lua_getglobal(L, "setmetatable");
	lua_pushcclosure(L, api_setmetatable, 1);
	lua_setglobal(L, "setmetatable");
	static const luaL_Reg api[] = {{"sleep", api_sleep},
	                               {"now", api_now},
	                               {"go", api_go},
	                               {"log", api_log},
	                               {"print", api_log},
	                               {"load", api_load},
	                               {"collectgarbage", api_collectgarbage},
	                               {NULL, NULL}};
	for (const luaL_Reg *a = api; a->name; a++) {
		lua_pushcfunction(L, a->func);
		lua_setglobal(L, a->name);
	}
}

/* ─── preemption ────────────────────────────────────────────────────── */

/* Every task's coroutine carries a count hook, and the coroutines a
 * script makes inherit it (lua_newthread copies the creator's hook), so a
 * loop is seen wherever it spins. In the task's own coroutine the hook
 * yields when sysmon asked (preemption) or the budget is spent (the run
 * loop then stops the task). In a coroutine the script made it cannot
 * yield to us — that yield would go to the script's resume — so past the
 * budget it raises an error there, and the task's own coroutine, once
 * back in Lua, is stopped at its next hook. */
static void count_hook(lua_State *L, lua_Debug *ar) {
	lw_task *t = rt_get_local();
	if (!t)
		return;
	bool own = L == t->co;
	bool over = t->cpu_ns + (rt_now() - t->resumed_at) > t->w->cfg.cpu_budget_ns;
	bool asked = own && __atomic_exchange_n(&t->preempt_req, 0, __ATOMIC_ACQ_REL);
	if (own) /* back to the slow beat after sysmon's count of 1 */
		lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	if (!over && !asked)
		return;
	if (lua_getinfo(L, "Sl", ar)) {
		snprintf(t->preempt_src, sizeof t->preempt_src, "%s", ar->short_src);
		t->preempt_line = ar->currentline;
	}
	if (!own)
		luaL_error(L, "stopped after %d ms of CPU (budget %d ms)",
		           (int)((t->cpu_ns + rt_now() - t->resumed_at) / 1000000),
		           (int)(t->w->cfg.cpu_budget_ns / 1000000));
	t->preempted = true;
	lua_yield(L, 0);
}

/* On sysmon: a goroutine ran past its slice. If it is inside Lua, ask its
 * coroutine's hook to yield at the next instruction (lua_sethook is safe
 * from another thread by design: the mask is an atomic value). */
static void preempt_hook(uint64_t id, void *local, void *arg) {
	lw_task *t = local;
	if (t && __atomic_load_n(&t->in_lua, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&t->preempt_req, 1, __ATOMIC_RELEASE);
		lua_sethook(t->co, count_hook, LUA_MASKCOUNT, 1);
	}
}

/* ─── tasks ─────────────────────────────────────────────────────────── */

static void lock(lw_world *w) {
	rt_mutex_lock(&w->mu);
}

static void unlock(lw_world *w) {
	rt_mutex_unlock(&w->mu);
}

/* Run the function on top of w->L's stack as a task on this goroutine.
 * Called with the lock held; returns with it held. */
typedef int (*take_fn)(lua_State *co, int nres, void *arg);
typedef int (*args_fn)(lua_State *co, void *arg);

static int run_task_take(lw_world *w, const char *what, args_fn args, take_fn take, void *arg,
                         int thread_ref, bool budget_per_wait, ms_err *err, lw_fault *fault);

static int run_task(lw_world *w, const char *what, ms_err *err) {
	return run_task_take(w, what, NULL, NULL, NULL, LUA_NOREF, false, err, NULL);
}

/* ─── protected calls ───────────────────────────────────────────────── */

/* Lua raises on an allocation past the world's cap; outside a protected
 * call that is a panic (abort). So every allocation made from C outside a
 * task's resume runs in here: fn(L, arg) as a pcall on L, which must be a
 * thread that is not running (the world's own, or a task's before or after
 * its resume). Returns the pcall's status; on an error its message is left
 * on L's stack. */
typedef struct {
	int (*fn)(lua_State *L, void *arg);
	void *arg;
} pcall_ctx;

static int pcall_tramp(lua_State *L) {
	pcall_ctx *c = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return c->fn(L, c->arg);
}

static int protected(lua_State *L, int nargs, int nres, int (*fn)(lua_State *L, void *arg),
                     void *arg) {
	pcall_ctx c = {fn, arg};
	if (!lua_checkstack(L, 2)) {
		lua_pushliteral(L, "out of memory"); /* a preallocated string */
		return LUA_ERRMEM;
	}
	lua_pushcfunction(L, pcall_tramp); /* light: no allocation */
	lua_insert(L, -nargs - 1);
	lua_pushlightuserdata(L, &c);
	return lua_pcall(L, nargs + 1, nres, 0);
}

/* A new coroutine anchored in the registry: pushes the ref as an integer. */
static int new_thread(lua_State *L, void *arg) {
	lua_newthread(L);
	lua_pushinteger(L, luaL_ref(L, LUA_REGISTRYINDEX)); /* pops the thread */
	return 1;
}

/* A coroutine for a task: an idle one, or a new one anchored in the
 * registry. Under the lock; 0, or LUA_ERRMEM when the world's cap leaves
 * no room for one. */
static int thread_take(lw_world *w, lw_task *t) {
	if (w->nidle) {
		struct idle_thread *it = &w->idle[--w->nidle];
		t->co = it->co;
		t->ref = it->ref;
		return 0;
	}
	int st = protected(w->L, 0, 1, new_thread, NULL);
	if (st != LUA_OK) {
		lua_pop(w->L, 1);
		return st;
	}
	t->ref = (int)lua_tointeger(w->L, -1);
	lua_pop(w->L, 1);
	lua_rawgeti(w->L, LUA_REGISTRYINDEX, t->ref);
	t->co = lua_tothread(w->L, -1);
	lua_pop(w->L, 1);
	return 0;
}

/* The task's coroutine back to the idle list, reset (a task that ended by
 * an error or was stopped mid-yield is unwound: its pending to-be-closed
 * variables are closed), or to the GC when the list is full. Under the
 * lock. */
static void thread_give_back(lw_world *w, lw_task *t, bool finished) {
	if (!finished || lua_status(t->co) != LUA_OK)
		lua_resetthread(t->co);
	lua_settop(t->co, 0);
	if (w->nidle == w->capidle && w->capidle < IDLE_THREADS_MAX) {
		int cap = w->capidle ? w->capidle * 2 : 16;
		struct idle_thread *n = realloc(w->idle, (size_t)cap * sizeof *n);
		if (n) {
			w->idle = n;
			w->capidle = cap;
		}
	}
	if (w->nidle < w->capidle)
		w->idle[w->nidle++] = (struct idle_thread){t->co, t->ref};
	else
		luaL_unref(w->L, LUA_REGISTRYINDEX, t->ref);
}

/* args and take run in protected calls on the task's coroutine (not
 * running then): an allocation past the cap is the task's error. */
typedef struct {
	args_fn args;
	take_fn take;
	void *arg;
	int n, rc;
} call_io;

static int args_in(lua_State *co, void *p) {
	call_io *io = p;
	return io->n = io->args(co, io->arg);
}

static int take_in(lua_State *co, void *p) {
	call_io *io = p;
	io->rc = io->take(co, lua_gettop(co), io->arg);
	return 0;
}

static int io_fail(lw_task *t, int st, const char *what, ms_err *err) {
	const char *m = lua_tostring(t->co, -1);
	int rc = ms_fail(err, st == LUA_ERRMEM ? -ENOMEM : -EINVAL, "%s: %s%s", what,
	                 m ? m : "error", st == LUA_ERRMEM ? " (the world's memory limit)" : "");
	lua_pop(t->co, 1);
	return rc;
}

static int task_args(lw_task *t, args_fn args, void *arg, int *nargs, const char *what,
                     ms_err *err) {
	call_io io = {.args = args, .arg = arg};
	int st = protected(t->co, 0, LUA_MULTRET, args_in, &io);
	if (st != LUA_OK)
		return io_fail(t, st, what, err);
	*nargs = io.n;
	return 0;
}

/* The results are moved into the protected call as its arguments, where
 * take finds them as the top nres values, as it would have. */
static int task_take(lw_task *t, take_fn take, void *arg, int nres, const char *what, ms_err *err) {
	call_io io = {.take = take, .arg = arg};
	int st = protected(t->co, nres, 0, take_in, &io);
	return st != LUA_OK ? io_fail(t, st, what, err) : io.rc;
}

/* Where the error that ended co was raised: the innermost Lua function on
 * its stack (a coroutine that raised keeps its stack until reset). */
static void raised_at(lua_State *co, lw_fault *f) {
	lua_Debug ar;
	for (int level = 0; lua_getstack(co, level, &ar); level++)
		if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
			snprintf(f->script, sizeof f->script, "%s", ar.short_src);
			f->line = ar.currentline;
			return;
		}
}

/* A failed task's fault: its kind, and where the message's Lua part
 * starts (after run_task_take's "what: "). */
static int fault_of(int rc, lw_fault *f, lw_fault_kind kind, const char *what, const ms_err *err) {
	if (!f || !rc || rc == -ECANCELED)
		return rc;
	f->kind = kind;
	size_t k = strlen(what) + 2;
	f->message =
	    strlen(err->msg) >= k && !strncmp(err->msg, what, k - 2) ? err->msg + k : err->msg;
	return rc;
}

/* thread_ref: the coroutine to run it in (go() made it, anchored in the
 * registry); LUA_NOREF: an idle one or a new one. fault (may be NULL):
 * how it failed. */
static int run_task_take(lw_world *w, const char *what, args_fn args, take_fn take, void *take_arg,
                         int thread_ref, bool budget_per_wait, ms_err *err, lw_fault *fault) {
	lw_fault ignored;
	if (!fault)
		fault = &ignored;
	*fault = (lw_fault){.kind = LW_FAULT_NONE, .message = ""};
	lw_fault_kind kind = LW_FAULT_RAISED;
	lw_task t = {
	    .w = w, .budget_per_wait = budget_per_wait, .ref = thread_ref, .stop = w->load_stop};
	w->load_stop = NULL; /* one task's: lw_load's */
	if (thread_ref != LUA_NOREF) {
		lua_rawgeti(w->L, LUA_REGISTRYINDEX, thread_ref);
		t.co = lua_tothread(w->L, -1);
		lua_pop(w->L, 1);
	} else if (thread_take(w, &t)) {
		lua_pop(w->L, 1); /* the function */
		return ms_fail(err, -ENOMEM, "%s: out of memory (world cap %zu bytes)", what,
		               w->cfg.mem_limit);
	}
	lua_xmove(w->L, t.co, 1); /* the function */
	/* a reused coroutine may carry sysmon's count of 1: the slow beat */
	lua_sethook(t.co, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	w->tasks++;
	void *saved_local = rt_get_local();
	rt_set_local(&t);
	int rc = 0, nres = 0, nargs = 0;
	bool finished = false; /* returned (not an error, not stopped while yielded) */
	if (args && (rc = task_args(&t, args, take_arg, &nargs, what, err)))
		goto out;
	for (;;) {
		t.req = REQ_NONE;
		t.preempted = false;
		t.resumed_at = rt_now();
		__atomic_store_n(&t.in_lua, 1, __ATOMIC_RELEASE);
		int st = lua_resume(t.co, w->L, nargs, &nres);
		__atomic_store_n(&t.in_lua, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&t.preempt_req, 0, __ATOMIC_RELEASE);
		t.cpu_ns += rt_now() - t.resumed_at;
		nargs = 0;
		if (st == LUA_OK) {
			if (take)
				rc = task_take(&t, take, take_arg, nres, what, err);
			finished = true;
			break;
		}
		if (st != LUA_YIELD) {
			raised_at(t.co, fault);
			const char *m = lua_tostring(t.co, -1);
			rc = ms_fail(err, st == LUA_ERRMEM ? -ENOMEM : -EINVAL, "%s: %s%s", what,
			             m ? m : "error",
			             st == LUA_ERRMEM ? " (the world's memory limit)" : "");
			break;
		}
		lua_pop(t.co, nres);
		if (t.cpu_ns > w->cfg.cpu_budget_ns) {
			w->killed++;
			kind = LW_FAULT_BUDGET;
			snprintf(fault->script, sizeof fault->script, "%s", t.preempt_src);
			fault->line = t.preempt_line;
			rc = ms_fail(err, -ETIME,
			             "%s: %s:%d: stopped after %lld ms of CPU (budget %lld ms)",
			             what, t.preempt_src[0] ? t.preempt_src : "?", t.preempt_line,
			             (long long)(t.cpu_ns / 1000000),
			             (long long)(w->cfg.cpu_budget_ns / 1000000));
			break;
		}
		if (t.req == REQ_PARK) {
			unlock(w);
			t.park_work(t.park_ctx);
			lock(w);
			nargs = t.park_push(t.co, t.park_ctx);
			if (t.cancel) {
				rc = ms_fail(err, -ECANCELED, "%s: ended: the world is stopping",
				             what);
				break;
			}
			if (t.budget_per_wait)
				t.cpu_ns = 0;
		} else if (t.preempted) {
			w->preemptions++;
			unlock(w);
			rt_yield();
			lock(w);
		} else {
			rc = ms_fail(err, -EINVAL,
			             "%s: coroutine.yield outside a coroutine the script made",
			             what);
			break;
		}
	}
out:
	/* still this task's (the count hook's) while the coroutine is reset:
	 * a pending <close> handler that loops is stopped by the budget, as
	 * the script's own code would be */
	t.resumed_at = rt_now();
	thread_give_back(w, &t, finished);
	rt_set_local(saved_local);
	return fault_of(rc, fault, kind, what, err);
}

lw_world *lw_new(const lw_config *c, ms_err *err) {
	lw_world *w = calloc(1, sizeof *w);
	if (!w) {
		ms_fail(err, -ENOMEM, "out of memory");
		return NULL;
	}
	w->cfg = *c;
	if (!w->cfg.mem_limit)
		w->cfg.mem_limit = LW_DEFAULT_MEM;
	if (!w->cfg.cpu_budget_ns)
		w->cfg.cpu_budget_ns = LW_DEFAULT_BUDGET;
	if (!w->cfg.load_wait_ns)
		w->cfg.load_wait_ns = LW_DEFAULT_LOAD_WAIT;
	if (!w->cfg.report_every_ns)
		w->cfg.report_every_ns = LW_DEFAULT_REPORT_EVERY;
	w->report_mu = (rt_mutex)RT_MUTEX_INIT;
	snprintf(w->name, sizeof w->name, "%s", c->name ? c->name : "lua");
	w->cfg.name = w->name;
	w->mu = (rt_mutex)RT_MUTEX_INIT;
	w->go_wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	if (!(w->done = rt_chan_new(1, 0))) {
		free(w);
		ms_fail(err, -ENOMEM, "out of memory");
		return NULL;
	}
	if (!(w->L = lua_newstate(capped_alloc, w))) {
		blocks_free(w);
		rt_chan_free(w->done);
		free(w);
		ms_fail(err, -ENOMEM, "lua: cannot create a state within %zu bytes", c->mem_limit);
		return NULL;
	}
	open_sandbox(w->L);
	lua_pushlightuserdata(w->L, w);
	lua_setfield(w->L, LUA_REGISTRYINDEX, WORLD_KEY);
	rt_set_preempt_hook(preempt_hook, NULL);
	return w;
}

void lw_stop_tasks(lw_world *w) {
	if (!w)
		return;
	lock(w);
	bool first = !w->stopping;
	w->stopping = true;
	unlock(w);
	if (first)
		rt_chan_close(w->done);
	rt_wg_wait(&w->go_wg);
}

void lw_free(lw_world *w) {
	if (!w)
		return;
	lw_stop_tasks(w);
	lua_close(w->L);
	blocks_free(w);
	free(w->idle);
	rt_chan_free(w->done);
	free(w);
}

/* ─── loading ───────────────────────────────────────────────────────── */

/* A script's top level runs on a goroutine of LW_STACK_SIZE (the parser
 * recurses as deep as the text nests, up to Lua's C-call limit), and its
 * waits (sleep, channels) end at the world's stop or after the load's
 * wait limit: the caller, supervision, waits for it before it lets the
 * container start. */
typedef struct {
	lw_world *w;
	const char *chunkname, *src;
	size_t len;
	ms_err *err;
	int rc;
	rt_chan *stop, *over; /* stop: the top level's waits end; over: the load ended */
	bool timed_out;
	rt_waitgroup loaded, watched;
} load_call;

static void load_deadline(void *p) {
	load_call *c = p;
	rt_case cs[2] = {{.c = c->over, .dir = RT_RECV}, {.c = c->w->done, .dir = RT_RECV}};
	int which = rt_select(cs, 2, rt_deadline_in(c->w->cfg.load_wait_ns));
	if (which != 0) {
		c->timed_out = which < 0;
		rt_chan_close(c->stop);
	}
	rt_wg_done(&c->watched);
}

static void load_here(void *p) {
	load_call *c = p;
	lw_world *w = c->w;
	char name[256];
	snprintf(name, sizeof name, "@%s", c->chunkname);
	lock(w);
	int st = luaL_loadbufferx(w->L, c->src, c->len, name, "t");
	if (st != LUA_OK) {
		const char *m = lua_tostring(w->L, -1);
		if (!m)
			m = "cannot load";
		/* the parser's own limits ("C stack overflow") name no script */
		bool named = !strncmp(m, c->chunkname, strlen(c->chunkname));
		c->rc = ms_fail(c->err, st == LUA_ERRMEM ? -ENOMEM : -EINVAL, "%s%s%s",
		                named ? "" : c->chunkname, named ? "" : ": ", m);
		lua_pop(w->L, 1);
	} else {
		w->load_stop = c->stop;
		c->rc = run_task(w, c->chunkname, c->err);
	}
	unlock(w);
	rt_wg_done(&c->loaded);
}

int lw_load(lw_world *w, const char *chunkname, const char *src, size_t len, ms_err *err) {
	load_call c = {.w = w,
	               .chunkname = chunkname,
	               .src = src,
	               .len = len,
	               .err = err,
	               .loaded = RT_WAITGROUP_INIT,
	               .watched = RT_WAITGROUP_INIT};
	if (!(c.stop = rt_chan_new(1, 0)) || !(c.over = rt_chan_new(1, 0))) {
		rt_chan_free(c.stop);
		return ms_fail(err, -ENOMEM, "%s: out of memory", chunkname);
	}
	rt_wg_add(&c.loaded, 1);
	rt_wg_add(&c.watched, 1);
	rt_go(load_deadline, &c, "lua load deadline");
	rt_go_stack(load_here, &c, "lua load", LW_STACK_SIZE);
	rt_wg_wait(&c.loaded);
	rt_chan_close(c.over);
	rt_wg_wait(&c.watched);
	if (c.rc == -ECANCELED && c.timed_out)
		c.rc = ms_fail(err, -ETIMEDOUT,
		               "%s: its top level still waited after %lld s and was ended (a "
		               "script's top level runs before the container starts; wait in "
		               "go() or a handler instead)",
		               chunkname, (long long)(w->cfg.load_wait_ns / RT_SECOND));
	rt_chan_free(c.stop);
	rt_chan_free(c.over);
	return c.rc;
}

int lw_load_file(lw_world *w, const char *path, ms_err *err) {
	size_t len;
	char *buf = fs_read_file(path, LW_SCRIPT_MAX, &len, err);
	if (!buf)
		return err->code;
	int rc = lw_load(w, path, buf, len, err);
	free(buf);
	return rc;
}

int lw_call(lw_world *w, const char *fn, ms_err *err) {
	lock(w);
	int rc;
	if (lua_getglobal(w->L, fn) != LUA_TFUNCTION) {
		lua_pop(w->L, 1);
		rc = ms_fail(err, -ENOENT, "%s: no function %s", w->name, fn);
	} else {
		rc = run_task(w, fn, err);
	}
	unlock(w);
	return rc;
}

int lw_call_ref(lw_world *w, int ref, const char *what, int (*args)(lua_State *co, void *arg),
                int (*take)(lua_State *co, int nres, void *arg), void *arg, ms_err *err,
                lw_fault *fault) {
	if (fault)
		*fault = (lw_fault){.kind = LW_FAULT_NONE, .message = ""};
	lock(w);
	int rc;
	if (lua_rawgeti(w->L, LUA_REGISTRYINDEX, ref) != LUA_TFUNCTION) {
		lua_pop(w->L, 1);
		rc = ms_fail(err, -ENOENT, "%s: not a function", what);
	} else {
		rc = run_task_take(w, what, args, take, arg, LUA_NOREF, false, err, fault);
	}
	unlock(w);
	return rc;
}

typedef struct {
	lw_world *w;
	char fn[128];
	lw_done_fn done;
	void *arg;
} go_ctx;

static void task_goroutine(void *p) {
	go_ctx *g = p;
	ms_err err = {0};
	int rc = lw_call(g->w, g->fn, &err);
	if (g->done)
		g->done(g->arg, rc, err.msg);
	free(g);
}

int lw_go(lw_world *w, const char *fn, lw_done_fn done, void *arg, ms_err *err) {
	go_ctx *g = calloc(1, sizeof *g);
	if (!g)
		return ms_fail(err, -ENOMEM, "out of memory");
	*g = (go_ctx){.w = w, .done = done, .arg = arg};
	snprintf(g->fn, sizeof g->fn, "%s", fn);
	rt_go_stack(task_goroutine, g, "lua task", LW_STACK_SIZE);
	return 0;
}

/* ─── go(fn, ...) ──────────────────────────────────────────────────── */

typedef struct {
	lw_world *w;
	int fn, args, co; /* registry refs: the function, its arguments, its coroutine */
	char where[160];
} spawn;

static int spawn_args(lua_State *co, void *arg) {
	spawn *s = arg;
	lua_rawgeti(co, LUA_REGISTRYINDEX, s->args);
	int n = (int)lua_rawlen(co, -1);
	luaL_checkstack(co, n, "go: too many arguments");
	for (int i = 1; i <= n; i++)
		lua_rawgeti(co, -i, i);
	lua_remove(co, -n - 1);
	return n;
}

static void spawn_goroutine(void *arg) {
	spawn *s = arg;
	lw_world *w = s->w;
	ms_err err = {0};
	lock(w);
	lua_rawgeti(w->L, LUA_REGISTRYINDEX, s->fn);
	int rc = run_task_take(w, s->where, spawn_args, NULL, s, s->co, true, &err, NULL);
	unlock(w);
	lock(w);
	luaL_unref(w->L, LUA_REGISTRYINDEX, s->fn);
	luaL_unref(w->L, LUA_REGISTRYINDEX, s->args);
	unlock(w);
	if (rc && rc != -ECANCELED) { /* nobody waits for it: say it */
		if (w->cfg.log)
			w->cfg.log(w->cfg.log_arg, s->where, 0, err.msg);
		else
			fprintf(stderr, "lua[%s]: %s\n", w->name, err.msg);
	}
	free(s);
	rt_wg_done(&w->go_wg);
}

/* In a protected call, with fn and its arguments as the call's own: the
 * registry refs of the arguments, the function and the coroutine the task
 * will run in (made here, where running out of the world's memory is the
 * calling script's error, not the new goroutine's panic). */
static int spawn_refs(lua_State *L, void *arg) {
	spawn *s = arg;
	int n = lua_gettop(L);
	lua_createtable(L, n - 1, 0);
	for (int i = 2; i <= n; i++) {
		lua_pushvalue(L, i);
		lua_rawseti(L, -2, i - 1);
	}
	s->args = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 1);
	s->fn = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newthread(L);
	s->co = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

/* go(fn, ...): fn(...) as a task of its own on a new goroutine. Its CPU
 * budget counts from its last blocking call, so a long-lived loop that
 * waits is fine and one that spins is stopped. */
static int api_go(lua_State *L) {
	lw_world *w = world_of(L);
	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (w->stopping)
		return luaL_error(L, "go: the world is stopping");
	spawn *s = calloc(1, sizeof *s);
	if (!s)
		return luaL_error(L, "go: out of memory");
	s->w = w;
	lua_Debug ar;
	snprintf(s->where, sizeof s->where, "go");
	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
		snprintf(s->where, sizeof s->where, "%s:%d: go", ar.short_src, ar.currentline);
	s->fn = s->args = s->co = LUA_NOREF;
	if (protected(L, lua_gettop(L), 0, spawn_refs, s) != LUA_OK) {
		luaL_unref(L, LUA_REGISTRYINDEX, s->fn);
		luaL_unref(L, LUA_REGISTRYINDEX, s->args);
		luaL_unref(L, LUA_REGISTRYINDEX, s->co);
		free(s);
		return luaL_error(L, "go: out of memory (world cap %I bytes)",
		                  (lua_Integer)w->cfg.mem_limit);
	}
	rt_wg_add(&w->go_wg, 1);
	rt_go_stack(spawn_goroutine, s, "lua go", LW_STACK_SIZE);
	return 0;
}

void lw_set_ptr(lw_world *w, const char *key, void *p) {
	lock(w);
	lua_pushlightuserdata(w->L, p);
	lua_setfield(w->L, LUA_REGISTRYINDEX, key);
	unlock(w);
}

void *lw_get_ptr(lua_State *L, const char *key) {
	lua_getfield(L, LUA_REGISTRYINDEX, key);
	void *p = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return p;
}

void lw_register(lw_world *w, const char *name, int (*fn)(lua_State *L)) {
	lock(w);
	lua_pushcfunction(w->L, fn);
	lua_setglobal(w->L, name);
	unlock(w);
}

void lw_register_lib(lw_world *w, const char *name, const luaL_Reg *fns) {
	lock(w);
	lua_newtable(w->L);
	luaL_setfuncs(w->L, fns, 0);
	lua_setglobal(w->L, name);
	unlock(w);
}

void lw_stats_get(lw_world *w, lw_stats *s) {
	lock(w);
	*s = (lw_stats){w->mem_used, w->mem_peak, w->tasks, w->preemptions, w->killed};
	unlock(w);
}

bool lw_report_admit(lw_world *w, const char *script, uint64_t *suppressed) {
	int64_t now = rt_now();
	rt_mutex_lock(&w->report_mu);
	struct report *r = NULL, *quiet = NULL;
	for (int i = 0; i < w->nreports && !r; i++)
		if (!strcmp(w->reports[i].script, script))
			r = &w->reports[i];
		else if (!quiet || w->reports[i].last < quiet->last)
			quiet = &w->reports[i];
	bool admit = !r || now - r->last >= w->cfg.report_every_ns;
	if (!r) { /* a new script, in a free slot or the one quiet longest */
		r = w->nreports < LW_REPORT_SCRIPTS ? &w->reports[w->nreports++] : quiet;
		snprintf(r->script, sizeof r->script, "%s", script);
		r->held = 0;
	}
	*suppressed = admit ? r->held : 0;
	if (admit) {
		r->held = 0;
		r->last = now;
	} else {
		r->held++;
	}
	rt_mutex_unlock(&w->report_mu);
	return admit;
}
