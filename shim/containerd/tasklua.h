/*
 * tasklua.h — the Lua side of a container in containerd mode (prefix tl_):
 * the same checks and policies `moonshim run --check/--policy` takes, from
 * the OCI annotations io.moonshim.checks and io.moonshim.policy (a path to
 * a script, or the script itself), else the shim-wide defaults
 * /etc/moonshim/checks.lua and /etc/moonshim/policy.lua. Their events go
 * to the shim's log (containerd's log for the shim) as JSON lines.
 */
#ifndef MOONSHIM_TASKLUA_H
#define MOONSHIM_TASKLUA_H

#include <jansson.h>
#include <sys/types.h>

#include "cgroup.h"
#include "luaengine.h"
#include "oci.h"

#define TL_CHECKS_ANNOTATION "io.moonshim.checks"
#define TL_POLICY_ANNOTATION "io.moonshim.policy"
#define TL_DEFAULT_DIR       "/etc/moonshim"

typedef struct tl_lua tl_lua;

/* NULL when the container has neither checks nor policy. In a goroutine. */
/* ct: the container (its spec, init, how to exec in it; copied). */
tl_lua *tl_start(const la_container *ct, const char *id, cg *cgroup, int pidfd);
/* The PSI rules its policies ask the cgroup watcher for (policy.h). */
int tl_psi_rules(tl_lua *l, cg_psi_spec *out, int max);
/* An event the shim itself found (e.g. the Go watcher's): to the
 * policies and the shim's log, or only the log without Lua (fields
 * consumed). */
void tl_emit(tl_lua *l, const char *id, const char *type, json_t *fields);
/* An event of the container for the policies (fields borrowed). */
void tl_dispatch(tl_lua *l, const char *type, json_t *fields);
/* The exit to the policies, then everything stops; frees l. */
void tl_stop(tl_lua *l, int exit_status);

#endif
