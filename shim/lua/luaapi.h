/* luaapi.h — libraries for scripts beyond the engine's own (prefix la_):
 * http.get(url [, opts]), http.post(url, body [, opts]) returning
 * {status, reason, body, headers, truncated, elapsed} or nil, message;
 * tcp.connect(host, port [, opts]) returning a connection with send,
 * receive and close (luatcp.c); exec.host(cmd [, opts]) and
 * exec.container(cmd [, opts]) returning {status, stdout, stderr,
 * timed_out} or nil, message; and json.encode(value), json.decode(text). */
#ifndef MOONSHIM_LUAAPI_H
#define MOONSHIM_LUAAPI_H

#include "oci.h"
#include "luaworld.h"

/* Give w's scripts the libraries (before loading them). */
void la_open(lw_world *w);
/* http and tcp connect from this network namespace (an fd of /proc/PID/ns/net;
 * -1: ours). */
void la_set_netns(lw_world *w, int fd);
/* The network namespace fd of the world a task of which called (-1: ours). */
int la_netns(lua_State *L);
/* The tcp library alone (la_open includes it). */
void la_open_tcp(lw_world *w);

/* The container exec.container runs commands in: its spec, its init,
 * and how its processes are made (cgroup, device rules). Borrowed: it
 * must outlive the world. */
typedef struct la_container {
	const spec *s;
	pid_t init_pid;
	ct_opts o;
} la_container;
void la_set_container(lw_world *w, const la_container *c);

#include <jansson.h>

/* JSON to a Lua value on L's stack (j nests at most JL_MAX_DEPTH deep:
 * from jl_loadb or la_to_json), and a Lua value to JSON for modules
 * passing events to and from scripts. A value with no JSON form (a
 * function, a table with non-string keys, nested deeper than
 * JL_MAX_DEPTH, a cycle) raises "fn: why" in the script. */
void la_push_json(lua_State *L, json_t *j);
json_t *la_to_json(lua_State *L, int idx, const char *fn);

#endif
