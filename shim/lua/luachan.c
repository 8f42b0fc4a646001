/*
 * luachan.c — channels between a world's tasks (Go's, on the runtime's
 * rt_chan): chan([cap]) and its methods send, recv, close, len.
 *
 * A value crosses as a registry reference (int): the sender refs it, the
 * receiver takes it out and unrefs it, both under the world's lock; the
 * rt_chan only ever holds ints, so a waiting task parks on the runtime
 * like any goroutine and the world's lock is free meanwhile. Every wait
 * also watches the world's done channel: a stopping world ends the task.
 *
 * What must stay true: a ref is owned by exactly one side at a time (the
 * sender until the rt_chan took it, then the channel, then the receiver);
 * a channel is never closed while a sender of it is parked (rt_chan_close
 * would abort the sender), so close() refuses then; the channel userdata
 * is on the waiting task's stack, so it cannot be collected under a wait.
 */
#define _GNU_SOURCE
#include "luachan.h"

#include "rt.h"

#include <lauxlib.h>
#include <lua.h>

#define CHAN_MT      "moonshim.chan"
#define CHAN_MAX_CAP 65536

typedef struct {
	rt_chan *c;
	bool closed;
	int senders; /* parked in send */
} lchan;

typedef struct {
	lchan *ch;
	rt_chan *done;
	int64_t deadline;
	int ref;   /* send: the value's; recv: what arrived */
	int which; /* rt_select's answer: 0 the channel, 1 done, -ETIMEDOUT */
	bool ok;   /* recv: false once closed and drained */
} chan_op;

static lchan *check_chan(lua_State *L) {
	lchan *ch = luaL_checkudata(L, 1, CHAN_MT);
	if (!ch->c)
		luaL_error(L, "channel: already collected");
	return ch;
}

/* An optional timeout in seconds at idx: a deadline (none: for ever). */
static int64_t deadline_arg(lua_State *L, int idx) {
	if (lua_isnoneornil(L, idx))
		return RT_FOREVER;
	int64_t ns = lw_seconds(L, idx, "channel", "the timeout", 0, LW_SECONDS_MAX, LW_SEC_REFUSE);
	return ns <= 0 ? 0 : rt_deadline_in(ns);
}

static void send_work(void *ctx) {
	chan_op *o = ctx;
	rt_case cs[2] = {{.c = o->ch->c, .dir = RT_SEND, .elem = &o->ref},
	                 {.c = o->done, .dir = RT_RECV}};
	o->which = rt_select(cs, 2, o->deadline);
}

static int send_push(lua_State *L, void *ctx) {
	chan_op *o = ctx;
	o->ch->senders--;
	if (o->which != 0) /* not taken: the ref is still ours */
		luaL_unref(L, LUA_REGISTRYINDEX, o->ref);
	if (o->which == 1) {
		lw_cancel(L);
		return 0;
	}
	lua_pushboolean(L, o->which == 0);
	return 1;
}

/* ch:send(v [, timeout]) → true, or false at the timeout (0: don't wait) */
static int l_send(lua_State *L) {
	lchan *ch = check_chan(L);
	luaL_checkany(L, 2);
	int64_t deadline = deadline_arg(L, 3);
	if (ch->closed)
		return luaL_error(L, "channel: send on a closed channel");
	chan_op *o = lua_newuserdatauv(L, sizeof *o, 0);
	lua_pushvalue(L, 2);
	*o = (chan_op){.ch = ch,
	               .done = lw_done(L),
	               .deadline = deadline,
	               .ref = luaL_ref(L, LUA_REGISTRYINDEX)};
	ch->senders++;
	return lw_park(L, o, send_work, send_push);
}

static void recv_work(void *ctx) {
	chan_op *o = ctx;
	rt_case cs[2] = {{.c = o->ch->c, .dir = RT_RECV, .elem = &o->ref},
	                 {.c = o->done, .dir = RT_RECV}};
	o->which = rt_select(cs, 2, o->deadline);
	o->ok = cs[0].ok;
}

static int recv_push(lua_State *L, void *ctx) {
	chan_op *o = ctx;
	if (o->which == 1) {
		lw_cancel(L);
		return 0;
	}
	if (o->which != 0) {
		lua_pushnil(L);
		lua_pushboolean(L, false);
		lua_pushliteral(L, "timeout");
		return 3;
	}
	if (!o->ok) {
		lua_pushnil(L);
		lua_pushboolean(L, false);
		return 2;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, o->ref);
	luaL_unref(L, LUA_REGISTRYINDEX, o->ref);
	lua_pushboolean(L, true);
	return 2;
}

/* ch:recv([timeout]) → v, true; nil, false once closed and drained;
 * nil, false, "timeout" */
static int l_recv(lua_State *L) {
	lchan *ch = check_chan(L);
	int64_t deadline = deadline_arg(L, 2);
	chan_op *o = lua_newuserdatauv(L, sizeof *o, 0);
	*o = (chan_op){.ch = ch, .done = lw_done(L), .deadline = deadline, .ref = LUA_NOREF};
	return lw_park(L, o, recv_work, recv_push);
}

static int l_close(lua_State *L) {
	lchan *ch = check_chan(L);
	if (ch->closed)
		return luaL_error(L, "channel: close of a closed channel");
	if (ch->senders)
		return luaL_error(L, "channel: close while %d sender(s) wait", ch->senders);
	ch->closed = true;
	rt_chan_close(ch->c);
	return 0;
}

static int l_len(lua_State *L) {
	lua_pushinteger(L, (lua_Integer)rt_chan_len(check_chan(L)->c));
	return 1;
}

/* Values still buffered go back to the registry's free list. */
static int l_gc(lua_State *L) {
	lchan *ch = luaL_checkudata(L, 1, CHAN_MT);
	if (!ch->c)
		return 0;
	int ref;
	rt_case c = {.c = ch->c, .dir = RT_RECV, .elem = &ref};
	while (rt_select(&c, 1, 0) == 0 && c.ok)
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
	rt_chan_free(ch->c);
	ch->c = NULL;
	return 0;
}

/* The metatable, made by the first chan() of a world. */
static void chan_metatable(lua_State *L) {
	if (!luaL_newmetatable(L, CHAN_MT))
		return;
	static const luaL_Reg methods[] = {
	    {"send", l_send}, {"recv", l_recv}, {"close", l_close}, {"len", l_len}, {NULL, NULL}};
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushliteral(L, "locked"); /* a script may not swap __gc for a loop */
	lua_setfield(L, -2, "__metatable");
}

/* chan([cap]): cap 0 (the default) is unbuffered, as in Go. */
static int l_chan(lua_State *L) {
	lua_Integer cap = luaL_optinteger(L, 1, 0);
	if (cap < 0 || cap > CHAN_MAX_CAP)
		return luaL_error(L, "chan: capacity 0 to %d", CHAN_MAX_CAP);
	rt_chan *c = rt_chan_new(sizeof(int), (size_t)cap);
	if (!c)
		return luaL_error(L, "chan: out of memory");
	lchan *ch = lua_newuserdatauv(L, sizeof *ch, 0);
	*ch = (lchan){.c = c};
	chan_metatable(L);
	lua_setmetatable(L, -2);
	return 1;
}

void lc_open(lw_world *w) {
	lw_register(w, "chan", l_chan);
}
