/*
 * luaapi.c — the libraries a world gives its scripts beyond the engine's
 * own (sleep, now, log): http (GET and POST on the netpoller, from inside
 * the container's network namespace when the world has one), exec and
 * json (jansson); tcp is luatcp.c's. Blocking calls park the task (lw_park).
 */
#define _GNU_SOURCE
#include "luaapi.h"

#include "forkhelper.h"
#include "io.h"
#include "luachan.h"
#include "base.h"

#include <errno.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HTTP_HEADERS 32
#define HEADER_NAME_BUF  64 /* a response header name lower-cased on the stack */

#define NETNS_KEY "moonshim.netns"
#define POOLS_KEY "moonshim.httppools" /* a task function's idle keep-alive connections */
/* A task (a check's run, a handler) probes one or two services: one idle
 * connection per service, a few services. */
#define POOL_PER_KEY 1
#define POOL_MAX     4

/* The network namespace a world's http connects from, kept in the world
 * (a shim may hold several containers' worlds): fd + 1, so 0 means ours. */
void la_set_netns(lw_world *w, int fd) {
	lw_set_ptr(w, NETNS_KEY, (void *)(intptr_t)(fd + 1));
}

int la_netns(lua_State *L) {
	return (int)(intptr_t)lw_get_ptr(L, NETNS_KEY) - 1;
}

/* ─── http ──────────────────────────────────────────────────────────── */

static int pool_gc(lua_State *L) {
	nc_pool **p = lua_touserdata(L, 1);
	nc_pool_free(*p);
	*p = NULL;
	return 0;
}

/* The keep-alive pool of the calling task's function — the one its
 * coroutine started with, e.g. a check's run — so each check finds the
 * connection it left, however many checks run at once. Kept in a table of
 * the registry with weak keys: the connections are closed when the
 * function is collected or the world closed. NULL without memory. */
static nc_pool *caller_pool(lua_State *L) {
	lua_Debug ar;
	int level = 0;
	while (lua_getstack(L, level + 1, &ar))
		level++;
	if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "f", &ar)) /* pushes it */
		return NULL;
	if (lua_getfield(L, LUA_REGISTRYINDEX, POOLS_KEY) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, 0, 0);
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, POOLS_KEY);
	}
	nc_pool *pool = NULL;
	lua_pushvalue(L, -2); /* function, pools, function */
	if (lua_rawget(L, -2) == LUA_TUSERDATA) {
		pool = *(nc_pool **)lua_touserdata(L, -1);
	} else {
		lua_pop(L, 1);
		nc_pool **p = lua_newuserdatauv(L, sizeof *p, 0);
		*p = NULL;
		lua_createtable(L, 0, 1);
		lua_pushcfunction(L, pool_gc);
		lua_setfield(L, -2, "__gc");
		lua_setmetatable(L, -2);
		pool = *p = nc_pool_new(POOL_PER_KEY, POOL_MAX);
		lua_pushvalue(L, -3); /* function, pools, pool, function */
		lua_pushvalue(L, -2);
		lua_rawset(L, -4);
	}
	lua_pop(L, 3);
	return pool;
}

/* Small enough for malloc's per-thread cache: the error message (1 KiB
 * as an ms_err) is on the parked goroutine's stack and copied out only on
 * failure. The URL and the body are the caller's strings, which stay on the
 * coroutine's stack (arguments 1 and 2) while the task is parked. */
typedef struct {
	http_request req;
	http_response resp;
	int rc;
	char *errmsg; /* on failure: the message (NULL: no memory for it) */
	char **hdrs;  /* opts.headers as "Name: value", NULL-terminated; or NULL */
} http_call;

static void http_work(void *ctx) {
	http_call *c = ctx;
	ms_err err;
	err.code = 0;
	err.msg[0] = 0;
	c->rc = http_do(&c->req, &c->resp, &err);
	if (c->rc)
		c->errmsg = strdup(err.msg);
}

static void http_free(http_call *c) {
	http_response_free(&c->resp);
	free(c->errmsg);
	for (int i = 0; c->hdrs && c->hdrs[i]; i++)
		free(c->hdrs[i]);
	free(c->hdrs);
	free(c);
}

/* The headers as {name = value}, names lower-cased: one spelling to look
 * up. A name too long for the buffer is left as it is. */
static void push_headers(lua_State *L, const http_response *r) {
	lua_createtable(L, 0, (int)r->nheaders);
	for (size_t i = 0; i < r->nheaders; i++) {
		const char *h = r->headers[i], *colon = strchr(h, ':');
		if (!colon)
			continue;
		char name[HEADER_NAME_BUF];
		size_t n = (size_t)(colon - h);
		if (n <= sizeof name) {
			for (size_t k = 0; k < n; k++)
				name[k] = (char)(h[k] >= 'A' && h[k] <= 'Z' ? h[k] + 32 : h[k]);
			lua_pushlstring(L, name, n);
		} else {
			luaL_Buffer b;
			luaL_buffinit(L, &b);
			for (const char *p = h; p < colon; p++)
				luaL_addchar(&b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
			luaL_pushresult(&b);
		}
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		lua_pushstring(L, v);
		lua_rawset(L, -3);
	}
}

/* On success a table {status, reason, body, headers = {name = value},
 * truncated, elapsed}; on failure nil and the message (as io functions
 * do, so `local r, err = http.get(...)` reads naturally). */
static int http_push(lua_State *L, void *ctx) {
	http_call *c = ctx;
	if (c->rc) {
		lua_pushnil(L);
		lua_pushstring(L, c->errmsg ? c->errmsg : "http: out of memory");
		http_free(c);
		return 2;
	}
	lua_createtable(L, 0, 6);
	lua_pushinteger(L, c->resp.status);
	lua_setfield(L, -2, "status");
	lua_pushstring(L, c->resp.reason);
	lua_setfield(L, -2, "reason");
	lua_pushlstring(L, c->resp.body, c->resp.body_len);
	lua_setfield(L, -2, "body");
	lua_pushboolean(L, c->resp.truncated);
	lua_setfield(L, -2, "truncated");
	lua_pushnumber(L, (double)c->resp.elapsed_ns / RT_SECOND);
	lua_setfield(L, -2, "elapsed");
	push_headers(L, &c->resp);
	lua_setfield(L, -2, "headers");
	http_free(c);
	return 1;
}

/* opts.headers ({name = value}) as "Name: value" strings into c->hdrs. */
static int request_headers(lua_State *L, http_call *c) {
	if (!(c->hdrs = calloc(MAX_HTTP_HEADERS + 1, sizeof *c->hdrs)))
		return -ENOMEM;
	int n = 0;
	lua_pushnil(L);
	while (lua_next(L, -2)) { /* past MAX_HTTP_HEADERS the rest are ignored */
		char *h = NULL;
		if (n < MAX_HTTP_HEADERS && lua_type(L, -2) == LUA_TSTRING &&
		    lua_type(L, -1) == LUA_TSTRING &&
		    asprintf(&h, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1)) < 0)
			h = NULL;
		if (h)
			c->hdrs[n++] = h;
		lua_pop(L, 1);
	}
	c->req.headers = (const char *const *)c->hdrs;
	return 0;
}

/* opts: {headers = {...}, timeout = s, max_body = n, keepalive = true}.
 * url and body are strings at the given stack slots (body_len bytes); fn
 * names the call in errors. */
static int http_request_from(lua_State *L, const char *fn, const char *method, const char *url,
                             const char *body, size_t body_len, int opts) {
	int64_t timeout_ns = 0; /* http's default; read before c exists: it may raise */
	if (opts && lua_istable(L, opts)) {
		if (lua_getfield(L, opts, "timeout") != LUA_TNIL)
			timeout_ns =
			    lw_seconds(L, -1, fn, "timeout", 0, LW_SECONDS_MAX, LW_SEC_REFUSE);
		lua_pop(L, 1);
	}
	http_call *c = calloc(1, sizeof *c);
	if (!c)
		return luaL_error(L, "http: out of memory");
	c->req = (http_request){.method = method,
	                        .url = url,
	                        .body = body,
	                        .body_len = body_len,
	                        .timeout_ns = timeout_ns,
	                        .netns_fd = la_netns(L)};
	if (opts && lua_istable(L, opts)) {
		if (lua_getfield(L, opts, "max_body") == LUA_TNUMBER)
			c->req.max_body = (size_t)lua_tointeger(L, -1);
		lua_pop(L, 1);
		if (lua_getfield(L, opts, "keepalive") == LUA_TBOOLEAN && lua_toboolean(L, -1))
			c->req.pool = caller_pool(L);
		lua_pop(L, 1);
		int rc = lua_getfield(L, opts, "headers") == LUA_TTABLE ? request_headers(L, c) : 0;
		lua_pop(L, 1);
		if (rc) {
			http_free(c);
			return luaL_error(L, "http: out of memory");
		}
	}
	return lw_park(L, c, http_work, http_push);
}

static int l_http_get(lua_State *L) {
	return http_request_from(L, "http.get", "GET", luaL_checkstring(L, 1), NULL, 0, 2);
}

static int l_http_post(lua_State *L) {
	size_t len;
	const char *body = luaL_checklstring(L, 2, &len);
	return http_request_from(L, "http.post", "POST", luaL_checkstring(L, 1), body, len, 3);
}

/* ─── exec ──────────────────────────────────────────────────────────── */

#define EXEC_MAX_ARGS   64
#define EXEC_MAX_OUTPUT (64 * 1024)
#define EXEC_TIMEOUT_NS (10 * RT_SECOND)

typedef struct {
	char *argv[EXEC_MAX_ARGS + 1], *env[EXEC_MAX_ARGS + 1];
	const la_container *ct; /* exec.container: where; NULL: the host */
	char *user, *cwd;       /* exec.container's user ("UID[:GID]") and cwd */
	char *in;
	size_t in_len;
	int64_t timeout;
	hx_result r;
	ms_err err;
	int rc;
} exec_call;

static void exec_free(exec_call *c) {
	for (int i = 0; c->argv[i]; i++)
		free(c->argv[i]);
	for (int i = 0; c->env[i]; i++)
		free(c->env[i]);
	free(c->in);
	free(c->user);
	free(c->cwd);
	hx_result_free(&c->r);
	free(c);
}

/* Docker's exec health check: the command as a second process of the
 * container (its namespaces, cgroup, user, caps, seccomp; the container's
 * env plus env), made by the fork helper, collected like a host command
 * but killed alone at the deadline (it is no group leader). */
static int exec_in_container(exec_call *c) {
	int nargs = 0;
	while (c->argv[nargs])
		nargs++;
	spec_process p = {0};
	if (spec_exec_process(c->ct->s, c->argv, nargs, c->cwd, c->user, false, &p, &c->err))
		return c->err.code;
	size_t ne = 0, add = 0;
	while (p.env && p.env[ne])
		ne++;
	while (c->env[add])
		add++;
	char **env = realloc(p.env, (ne + add + 1) * sizeof *env);
	if (!env) {
		spec_process_free(&p);
		return ms_fail(&c->err, -ENOMEM, "exec.container: out of memory");
	}
	/* ours first: getenv takes the first of a name */
	memmove(env + add, env, ne * sizeof *env);
	for (size_t i = 0; i < add; i++)
		env[i] = c->env[i], c->env[i] = NULL;
	env[ne + add] = NULL;
	p.env = env;
	int child[3] = {-1, -1, -1}, ours[3] = {-1, -1, -1};
	if (hx_pipes(child, ours, &c->err)) {
		spec_process_free(&p);
		return c->err.code;
	}
	fh_job j = {.s = c->ct->s, .p = &p, .init_pid = c->ct->init_pid, .o = c->ct->o};
	memcpy(j.o.stdio, child, sizeof child);
	j.o.hold = false;
	j.o.clone_parent = true;
	int rc = fh_create(&j);
	for (int i = 0; i < 3; i++)
		close(child[i]);
	spec_process_free(&p);
	if (rc) {
		for (int i = 0; i < 3; i++)
			close(ours[i]);
		c->err = j.err;
		return ms_wrap(&c->err, "exec.container %s", c->argv[0]);
	}
	hx_collect(j.pid, false, ours, c->in, c->in_len, c->timeout, EXEC_MAX_OUTPUT, &c->r);
	return 0;
}

static void exec_work(void *ctx) {
	exec_call *c = ctx;
	c->rc = c->ct ? exec_in_container(c)
	              : hx_run(c->argv, c->env, c->in, c->in_len, c->timeout, EXEC_MAX_OUTPUT,
	                       &c->r, &c->err);
}

static int exec_push(lua_State *L, void *ctx) {
	exec_call *c = ctx;
	if (c->rc) {
		lua_pushnil(L);
		lua_pushstring(L, c->err.msg);
		exec_free(c);
		return 2;
	}
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, c->r.status);
	lua_setfield(L, -2, "status");
	lua_pushlstring(L, c->r.out, c->r.out_len);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, c->r.err, c->r.err_len);
	lua_setfield(L, -2, "stderr");
	lua_pushboolean(L, c->r.timed_out);
	lua_setfield(L, -2, "timed_out");
	exec_free(c);
	return 1;
}

/* exec.host({cmd, args...} [, {timeout = s, stdin = text, env = {K = V}}]),
 * exec.container(the same [, {..., user = "UID[:GID]", cwd = dir}]) */
static int exec_call_from(lua_State *L, const char *fn, const la_container *ct) {
	luaL_checktype(L, 1, LUA_TTABLE);
	int64_t timeout = EXEC_TIMEOUT_NS; /* read before c exists: it may raise */
	if (lua_istable(L, 2)) {
		if (lua_getfield(L, 2, "timeout") != LUA_TNIL)
			timeout =
			    lw_seconds(L, -1, fn, "timeout", 0, LW_SECONDS_MAX, LW_SEC_REFUSE);
		lua_pop(L, 1);
	}
	exec_call *c = calloc(1, sizeof *c);
	if (!c)
		return luaL_error(L, "exec: out of memory");
	c->timeout = timeout;
	c->ct = ct;
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	if (n < 1 || n > EXEC_MAX_ARGS) {
		exec_free(c);
		return luaL_error(L, "%s: the command is a list of 1 to %d strings", fn,
		                  EXEC_MAX_ARGS);
	}
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		c->argv[i - 1] = strdup(luaL_tolstring(L, -1, NULL));
		lua_pop(L, 2);
	}
	if (lua_istable(L, 2)) {
		size_t len;
		if (lua_getfield(L, 2, "stdin") == LUA_TSTRING) {
			const char *s = lua_tolstring(L, -1, &len);
			if ((c->in = malloc(len ? len : 1)))
				memcpy(c->in, s, len), c->in_len = len;
		}
		lua_pop(L, 1);
		if (lua_getfield(L, 2, "env") == LUA_TTABLE) {
			int k = 0;
			lua_pushnil(L);
			while (lua_next(L, -2)) {
				if (lua_type(L, -2) == LUA_TSTRING && k < EXEC_MAX_ARGS) {
					const char *v = luaL_tolstring(L, -1, NULL); /* pushes */
					if (asprintf(&c->env[k], "%s=%s", lua_tostring(L, -3), v) >=
					    0)
						k++;
					lua_pop(L, 1);
				}
				lua_pop(L, 1); /* the value; the key stays for lua_next */
			}
		}
		lua_pop(L, 1);
		if (ct && lua_getfield(L, 2, "user") == LUA_TSTRING)
			c->user = strdup(lua_tostring(L, -1));
		lua_pop(L, 1);
		if (ct && lua_getfield(L, 2, "cwd") == LUA_TSTRING)
			c->cwd = strdup(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	return lw_park(L, c, exec_work, exec_push);
}

static int l_exec_host(lua_State *L) {
	return exec_call_from(L, "exec.host", NULL);
}

#define CONTAINER_KEY "moonshim.container"

void la_set_container(lw_world *w, const la_container *c) {
	lw_set_ptr(w, CONTAINER_KEY, (void *)c);
}

static int l_exec_container(lua_State *L) {
	const la_container *ct = lw_get_ptr(L, CONTAINER_KEY);
	if (!ct)
		return luaL_error(L, "exec.container: no container here");
	return exec_call_from(L, "exec.container", ct);
}

/* ─── json ──────────────────────────────────────────────────────────── */

/* A Lua value to JSON. The recursion is bounded by JL_MAX_DEPTH (a table
 * deeper than that is refused, not followed) and a table met again on
 * the way down is a cycle. path[] holds the tables being converted. */
typedef struct {
	const void *path[JL_MAX_DEPTH + 1];
	char why[128]; /* set on failure */
} to_json_ctx;

static json_t *to_json(lua_State *L, int idx, int depth, to_json_ctx *c);

static json_t *fail_json(to_json_ctx *c, json_t *partial, const char *why) {
	json_decref(partial);
	if (!c->why[0])
		snprintf(c->why, sizeof c->why, "%s", why);
	return NULL;
}

static json_t *table_to_json(lua_State *L, int idx, int depth, to_json_ctx *c) {
	const void *self = lua_topointer(L, idx);
	if (depth >= JL_MAX_DEPTH) {
		snprintf(c->why, sizeof c->why, "table nested deeper than %d", JL_MAX_DEPTH);
		return NULL;
	}
	for (int i = 0; i < depth; i++)
		if (c->path[i] == self)
			return fail_json(c, NULL, "cycle (a table inside itself)");
	if (!lua_checkstack(L, 3))
		return fail_json(c, NULL, "out of stack");
	c->path[depth] = self;
	lua_Unsigned n = lua_rawlen(L, idx);
	if (n > 0) { /* a sequence is an array */
		json_t *a = json_array();
		for (lua_Unsigned i = 1; a && i <= n; i++) {
			lua_rawgeti(L, idx, (lua_Integer)i);
			json_t *v = to_json(L, -1, depth + 1, c);
			lua_pop(L, 1);
			if (!v || json_array_append_new(a, v))
				return fail_json(c, a, "out of memory");
		}
		return a ? a : fail_json(c, NULL, "out of memory");
	}
	json_t *o = json_object();
	if (!o)
		return fail_json(c, NULL, "out of memory");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			lua_pop(L, 2);
			return fail_json(c, o, "a table with non-string keys");
		}
		json_t *v = to_json(L, -1, depth + 1, c);
		if (!v || json_object_set_new(o, lua_tostring(L, -2), v)) {
			lua_pop(L, 2);
			return fail_json(c, o, "out of memory");
		}
		lua_pop(L, 1);
	}
	return o;
}

static json_t *to_json(lua_State *L, int idx, int depth, to_json_ctx *c) {
	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		return lua_isinteger(L, idx) ? json_integer(lua_tointeger(L, idx))
		                             : json_real(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		json_t *j = json_stringn(s, n);
		return j ? j : fail_json(c, NULL, "a string that is not UTF-8");
	}
	case LUA_TTABLE:
		return table_to_json(L, idx, depth, c);
	default:
		snprintf(c->why, sizeof c->why, "a %s has no JSON form", luaL_typename(L, idx));
		return NULL;
	}
}

json_t *la_to_json(lua_State *L, int idx, const char *fn) {
	to_json_ctx c;
	c.why[0] = 0;
	json_t *j = to_json(L, idx, 0, &c);
	if (!j)
		luaL_error(L, "%s: %s", fn, c.why[0] ? c.why : "out of memory");
	return j;
}

/* JSON from jansson to Lua: the trees come from jl_loadb or la_to_json,
 * both bounded by JL_MAX_DEPTH, so the recursion is too. */
void la_push_json(lua_State *L, json_t *j) {
	luaL_checkstack(L, 4, "json.decode: nested too deep");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_foreach(j, k, v) {
			la_push_json(L, v);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY:
		lua_createtable(L, (int)json_array_size(j), 0);
		for (size_t i = 0; i < json_array_size(j); i++) {
			la_push_json(L, json_array_get(j, i));
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, json_integer_value(j));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(j));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		lua_pushboolean(L, json_is_true(j));
		break;
	default:
		lua_pushnil(L);
	}
}

static int l_json_encode(lua_State *L) {
	luaL_checkany(L, 1);
	json_t *j = la_to_json(L, 1, "json.encode");
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	json_decref(j);
	if (!s)
		return luaL_error(L, "json.encode: out of memory");
	lua_pushstring(L, s);
	free(s);
	return 1;
}

static int l_json_decode(lua_State *L) {
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	ms_err e = {0};
	json_t *j = jl_loadb(s, n, JSON_DECODE_ANY, "json.decode", &e);
	if (!j) {
		lua_pushnil(L);
		lua_pushstring(L, e.msg);
		return 2;
	}
	la_push_json(L, j);
	json_decref(j);
	return 1;
}

void la_open(lw_world *w) {
	static const luaL_Reg http_fns[] = {
	    {"get", l_http_get}, {"post", l_http_post}, {NULL, NULL}};
	static const luaL_Reg json_fns[] = {
	    {"encode", l_json_encode}, {"decode", l_json_decode}, {NULL, NULL}};
	lw_register_lib(w, "http", http_fns);
	lw_register_lib(w, "json", json_fns);
	static const luaL_Reg exec_fns[] = {
	    {"host", l_exec_host}, {"container", l_exec_container}, {NULL, NULL}};
	lw_register_lib(w, "exec", exec_fns);
	lc_open(w);
	la_open_tcp(w);
}
