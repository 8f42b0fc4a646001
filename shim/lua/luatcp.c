/*
 * luatcp.c — the `tcp` library scripts get (luaapi.h): plain TCP
 * connections on the netpoller, from inside the container's network
 * namespace when the world has one.
 *
 *   local c, err = tcp.connect(host, port [, {timeout = s}])
 *   c:send(data [, timeout])        -> #data, or nil, message
 *   c:receive(n | "l" | "a" [, timeout]) -> string, or nil, message
 *   c:close()
 *
 * A connection is a userdata owning its socket; __gc and __close close it,
 * so a dropped or `<close>` connection leaks no fd. Every wait parks the
 * task (lw_park) on the netpoller under a deadline: the call's timeout, else
 * the one given to connect, else TCP_TIMEOUT_DEFAULT. What arrives is kept
 * in a read buffer of at most TCP_MAX_RECEIVE bytes (allocated on the first
 * receive, dropped whenever it empties), so bytes read past a line stay for
 * the next call, and so do bytes that came before a timeout.
 *
 * I/O failures are results — nil and "tcp HOST:PORT: STAGE: WHAT", WHAT
 * being "timeout", "closed" (the peer closed, or c:close() from another
 * task) or the system's error text. Misuse is an error raised in the
 * script: bad arguments, a call on a closed connection, two tasks using
 * one connection at once.
 */
#define _GNU_SOURCE
#include "luaapi.h"

#include "io.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TCP_TIMEOUT_DEFAULT (10 * RT_SECOND)
#define TCP_TIMEOUT_MIN_S   1e-9              /* above 0: a connection has a deadline */
#define TCP_MAX_RECEIVE     (1u << 20)        /* one receive's result, and the read buffer */
#define TCP_RBUF_INIT       4096              /* a check's reply, usually */
#define TCP_NAME_MAX        (NC_HOST_MAX + 8) /* "[" host "]:" port */
#define TCP_MT              "moonshim.tcp"

enum { RECV_COUNT, RECV_LINE, RECV_ALL };

typedef struct {
	nc_conn nc;
	char name[TCP_NAME_MAX + 1]; /* host:port, in messages */
	int64_t timeout;             /* default for send/receive, ns */
	bool busy;                   /* a task is parked on it */
	bool closing;                /* close() came while busy: the task closes it */
	bool eof;                    /* the peer's end is read */
	/* the read buffer: buf[start, end) is received, not yet returned */
	char *buf;
	size_t cap, start, end;
	/* the parked call: its arguments, then its outcome */
	int mode;
	size_t want;     /* RECV_COUNT's n */
	const char *out; /* send: the data (the script's string, alive on its stack) */
	size_t out_len;
	int64_t deadline;
	int rc;           /* 0 or -errno; connect: the dial's */
	size_t got, skip; /* receive: result bytes at buf + start, then skip more */
	const char *stage;
	nc_why why; /* connect's */
	int ref;    /* connect: the userdata, in the registry while parked */
	char host[NC_HOST_MAX + 1], port[6];
	int netns;
} tcp_conn;

static int l_send(lua_State *L);
static int l_receive(lua_State *L);

/* ─── Closing ─────────────────────────────────────────────────────────── */

static void drop_buffer(tcp_conn *c) {
	free(c->buf);
	c->buf = NULL;
	c->cap = c->start = c->end = 0;
}

static void conn_close(tcp_conn *c) {
	nc_close(&c->nc);
	drop_buffer(c);
}

static tcp_conn *check_conn(lua_State *L, const char *what) {
	tcp_conn *c = luaL_checkudata(L, 1, TCP_MT);
	if (c->nc.fd < 0 || c->closing)
		luaL_error(L, "tcp %s: %s on a closed connection", c->name, what);
	if (c->busy)
		luaL_error(L, "tcp %s: %s while another task uses the connection", c->name, what);
	return c;
}

/* nil, "tcp host:port: stage: what" */
static int push_failure(lua_State *L, tcp_conn *c) {
	const char *what = c->rc == -ETIMEDOUT                      ? "timeout"
	                   : c->rc == -ECANCELED || c->rc == -EPIPE ? "closed"
	                   : c->rc == 0                             ? "closed"
	                                                            : strerror(-c->rc);
	lua_pushnil(L);
	lua_pushfstring(L, "tcp %s: %s: %s", c->name, c->stage, what);
	return 2;
}

/* After a parked call, under the lock: the task is done with c. */
static void conn_release(tcp_conn *c) {
	c->busy = false;
	if (c->closing) {
		conn_close(c);
		c->closing = false;
		if (!c->rc || c->rc == -ETIMEDOUT)
			c->rc = -ECANCELED;
	}
}

static int l_close(lua_State *L) {
	tcp_conn *c = luaL_checkudata(L, 1, TCP_MT);
	if (c->busy && c->nc.pd) { /* the parked task wakes with -ECANCELED and closes */
		c->closing = true;
		rt_poll_evict(c->nc.pd);
	} else if (!c->busy) {
		conn_close(c);
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_gc(lua_State *L) { /* never busy: a parked task holds it on its stack */
	conn_close(luaL_checkudata(L, 1, TCP_MT));
	return 0;
}

static int l_tostring(lua_State *L) {
	tcp_conn *c = luaL_checkudata(L, 1, TCP_MT);
	lua_pushfstring(L, "tcp{%s%s}", c->name, c->nc.fd < 0 ? ", closed" : "");
	return 1;
}

/* ─── Timeouts ────────────────────────────────────────────────────────── */

/* The timeout at idx in ns, dflt if nil; fn names the call in the error. */
static int64_t timeout_arg(lua_State *L, int idx, int64_t dflt, const char *fn) {
	if (lua_isnoneornil(L, idx))
		return dflt;
	return lw_seconds(L, idx, fn, "the timeout", TCP_TIMEOUT_MIN_S, LW_SECONDS_MAX,
	                  LW_SEC_REFUSE);
}

/* ─── Connecting ──────────────────────────────────────────────────────── */

/* The connection's metatable, made on the first connect of a world. */
static void set_metatable(lua_State *L) {
	static const luaL_Reg methods[] = {
	    {"send", l_send}, {"receive", l_receive}, {"close", l_close}, {NULL, NULL}};
	if (luaL_newmetatable(L, TCP_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushliteral(L, "locked"); /* a script may not swap __gc for a loop */
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
}

static void connect_work(void *ctx) {
	tcp_conn *c = ctx;
	c->rc = nc_dial(&c->nc, c->host, c->port, c->netns, c->deadline, &c->why);
}

static int connect_push(lua_State *L, void *ctx) {
	tcp_conn *c = ctx;
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
	luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
	c->busy = false;
	if (!c->rc)
		return 1;
	lua_pop(L, 1);
	lua_pushnil(L);
	lua_pushfstring(L, "tcp connect %s: %s: %s", c->name, c->why.stage,
	                c->rc == -ETIMEDOUT ? "timeout"
	                : c->why.why        ? c->why.why
	                                    : strerror(-c->rc));
	return 2;
}

/* tcp.connect(host, port [, {timeout = s}]) */
static int l_connect(lua_State *L) {
	size_t hlen;
	const char *host = luaL_checklstring(L, 1, &hlen);
	lua_Integer port = luaL_checkinteger(L, 2);
	luaL_argcheck(L, port >= 1 && port <= 65535, 2, "a port is 1 to 65535");
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') /* "[::1]" as in a URL */
		host++, hlen -= 2;
	luaL_argcheck(L, hlen >= 1 && hlen <= NC_HOST_MAX && !memchr(host, 0, hlen), 1,
	              "a host name or address of 1 to 255 characters");
	int64_t timeout = TCP_TIMEOUT_DEFAULT;
	if (lua_istable(L, 3)) {
		lua_getfield(L, 3, "timeout");
		timeout = timeout_arg(L, -1, timeout, "tcp.connect");
		lua_pop(L, 1);
	} else if (!lua_isnoneornil(L, 3)) {
		luaL_argerror(L, 3, "options are a table, {timeout = seconds}");
	}
	tcp_conn *c = lua_newuserdatauv(L, sizeof *c, 0);
	*c = (tcp_conn){.nc = {.fd = -1}, .timeout = timeout, .netns = la_netns(L), .busy = true};
	set_metatable(L);
	memcpy(c->host, host, hlen);
	snprintf(c->port, sizeof c->port, "%d", (int)port);
	snprintf(c->name, sizeof c->name, strchr(c->host, ':') ? "[%s]:%s" : "%s:%s", c->host,
	         c->port);
	c->deadline = rt_deadline_in(timeout);
	lua_pushvalue(L, -1);
	c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return lw_park(L, c, connect_work, connect_push);
}

/* ─── Sending ─────────────────────────────────────────────────────────── */

static void send_work(void *ctx) {
	tcp_conn *c = ctx;
	struct iovec iov = {(void *)c->out, c->out_len};
	c->rc = c->out_len ? nc_send_all(c->nc.pd, &iov, 1, c->deadline) : 0;
}

static int send_push(lua_State *L, void *ctx) {
	tcp_conn *c = ctx;
	conn_release(c);
	c->out = NULL;
	if (c->rc)
		return push_failure(L, c);
	lua_pushinteger(L, (lua_Integer)c->out_len);
	return 1;
}

/* c:send(data [, timeout]) */
static int l_send(lua_State *L) {
	tcp_conn *c = check_conn(L, "send");
	c->out = luaL_checklstring(L, 2, &c->out_len);
	c->deadline = rt_deadline_in(timeout_arg(L, 3, c->timeout, "send"));
	c->stage = "sending";
	c->busy = true;
	return lw_park(L, c, send_work, send_push);
}

/* ─── Receiving ───────────────────────────────────────────────────────── */

/* Read more at the buffer's end, making room first (moving what is kept to
 * the front, growing up to TCP_MAX_RECEIVE): 0, -errno, or -ENOBUFS when
 * the buffer is full of what this call has not returned yet. */
static int fill(tcp_conn *c) {
	if (c->start && c->end == c->cap) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	if (c->end == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : TCP_RBUF_INIT;
		cap = cap > TCP_MAX_RECEIVE ? TCP_MAX_RECEIVE : cap;
		if (cap == c->cap)
			return -ENOBUFS;
		char *p = realloc(c->buf, cap);
		if (!p)
			return -ENOMEM;
		c->buf = p;
		c->cap = cap;
	}
	ssize_t k = rt_read(c->nc.pd, c->buf + c->end, c->cap - c->end, c->deadline);
	if (k < 0)
		return (int)k;
	if (k == 0)
		c->eof = true;
	c->end += (size_t)k;
	return 0;
}

/* Is the call's result in the buffer? Sets got (and skip, the newline). */
static bool ready(tcp_conn *c, size_t *scanned) {
	size_t have = c->end - c->start;
	switch (c->mode) {
	case RECV_COUNT:
		c->got = have < c->want ? have : c->want;
		return have >= c->want || c->eof;
	case RECV_LINE: {
		char *s = c->buf + c->start,
		     *nl = have > *scanned ? memchr(s + *scanned, '\n', have - *scanned) : NULL;
		*scanned = have;
		if (!nl) {
			c->got = have;
			return c->eof;
		}
		c->got = (size_t)(nl - s);
		c->skip = 1;
		if (c->got && s[c->got - 1] == '\r')
			c->got--, c->skip++;
		return true;
	}
	default:
		c->got = have;
		return c->eof;
	}
}

static void receive_work(void *ctx) {
	tcp_conn *c = ctx;
	size_t scanned = 0;
	c->got = c->skip = 0;
	c->rc = 0;
	while (!ready(c, &scanned) && !(c->rc = fill(c)))
		;
}

static int receive_push(lua_State *L, void *ctx) {
	tcp_conn *c = ctx;
	conn_release(c);
	if (c->rc == -ENOBUFS) {
		lua_pushnil(L);
		lua_pushfstring(L, "tcp %s: %s: more than %d bytes", c->name, c->stage,
		                (int)TCP_MAX_RECEIVE);
		return 2;
	}
	/* at EOF, what arrived is the answer; nothing at all is "closed" */
	bool nothing = c->eof && !c->got && !c->skip && c->mode != RECV_ALL &&
	               !(c->mode == RECV_COUNT && !c->want);
	if (c->rc || nothing)
		return push_failure(L, c);
	lua_pushlstring(L, c->buf ? c->buf + c->start : "", c->got);
	c->start += c->got + c->skip;
	if (c->start == c->end)
		drop_buffer(c);
	return 1;
}

/* c:receive(n | "l" | "a" [, timeout]); "*l" and "*a" as LuaSocket spells them */
static int l_receive(lua_State *L) {
	tcp_conn *c = check_conn(L, "receive");
	if (lua_type(L, 2) == LUA_TNUMBER) {
		lua_Integer n = luaL_checkinteger(L, 2);
		luaL_argcheck(L, n >= 0 && n <= TCP_MAX_RECEIVE, 2, "a count of 0 to 1 MiB");
		c->mode = RECV_COUNT;
		c->want = (size_t)n;
		c->stage = "receiving bytes";
	} else {
		const char *p = luaL_optstring(L, 2, "l");
		p += *p == '*';
		if (!strcmp(p, "l"))
			c->mode = RECV_LINE, c->stage = "receiving a line";
		else if (!strcmp(p, "a"))
			c->mode = RECV_ALL, c->stage = "receiving to the end";
		else
			return luaL_argerror(L, 2, "a byte count, \"l\" (a line) or \"a\" (all)");
	}
	c->deadline = rt_deadline_in(timeout_arg(L, 3, c->timeout, "receive"));
	c->busy = true;
	return lw_park(L, c, receive_work, receive_push);
}

/* ─── The library ─────────────────────────────────────────────────────── */

void la_open_tcp(lw_world *w) {
	static const luaL_Reg fns[] = {{"connect", l_connect}, {NULL, NULL}};
	lw_register_lib(w, "tcp", fns);
}
