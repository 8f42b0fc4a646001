/*
 * policy.h — Lua policies: handlers on the container's events, and what
 * they may act on (prefix pl_).
 *
 *   on("memory.high", function(ev)        -- any event type, or "*"
 *     local m = cgroup.memory()            -- {current, high, max, peak}
 *     if m.current > 0.9 * m.max then
 *       cgroup.reclaim(64 * 1024 * 1024)
 *       emit("policy.action", {action = "reclaim", bytes = 64 * 1024 * 1024})
 *     end
 *   end)
 *
 * Each matching handler runs as its own task (a goroutine) with the event
 * as a table ({type, time, ...fields}). The library: cgroup.memory(),
 * cgroup.memory_events(), cgroup.pressure(res), cgroup.set{memory_high=,
 * memory_max=, cpu_quota=, cpu_period=, pids_max=}, cgroup.reclaim(bytes),
 * cgroup.freeze(), cgroup.thaw(), cgroup.kill([sig]), container.pid(),
 * container.signal(sig), container.state(), container.stop([grace [, sig]]),
 * container.restart([grace | {grace=, backoff_max=}]) (standalone mode:
 * the supervisor's pl_env.restart does the work, with its backoff; true,
 * or nil and a message), emit(type, fields); and hook(type, {cmd, ...}
 * [, {timeout = s}]): an alert command run with the event as JSON on
 * stdin (MOONSHIM_EVENT, MOONSHIM_CONTAINER_PID in its environment), its
 * status and output reported as a "hook" event.
 *
 * A handler that raises or is stopped for its CPU budget is reported as
 * an "error" event {"script", "line", "handler", "reason", "message"},
 * rate-limited per script as checks' are (checks.h).
 *
 * A restart replaces the container's process: pl_set_process points
 * container.pid/signal/state/stop and hooks at the new one.
 */
#ifndef MOONSHIM_POLICY_H
#define MOONSHIM_POLICY_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "base.h"
#include "luaworld.h"

typedef struct pl_engine pl_engine;

/* What container.restart asks for. */
typedef struct pl_restart {
	int64_t grace_ns;       /* TERM, then this long before SIGKILL to the cgroup */
	int64_t backoff_max_ns; /* cap on the wait before the new process; < 0: the default */
} pl_restart;

typedef struct pl_env {
	cg *cgroup;
	pid_t pid; /* the container's process at pl_new; pl_set_process changes it */
	int pidfd;
	/* where emit() and the engine's own reports go (type, fields consumed) */
	void (*emit)(void *arg, const char *type, json_t *fields);
	void *emit_arg;
	/* container.restart: stop the process, wait out the backoff, start a
	 * new one (on the calling task's goroutine, without the world's lock;
	 * it may park for minutes). 0, or -errno with a message in err. NULL:
	 * restart is not offered here (containerd mode, where the runtime
	 * above restarts). */
	int (*restart)(void *arg, const pl_restart *r, ms_err *err);
	void *restart_arg;
} pl_env;

/* Give w's scripts on(), emit() and the cgroup and container libraries;
 * call before loading them. */
pl_engine *pl_new(lw_world *w, const pl_env *env);
/* The PSI rules the handlers asked for (on("pressure", {...}, fn)), for
 * the cgroup watcher; how many (at most max). After loading the scripts. */
int pl_psi_rules(pl_engine *p, cg_psi_spec *out, int max);
/* The Go detectors' thresholds: the defaults, as gowatch.config{} in a
 * policy changed them (NULL p: NULL). */
struct gd_config;
const struct gd_config *pl_go_config(pl_engine *p);
/* Run the handlers of an event (type; fields borrowed; a pressure event's
 * may gain "lasted_s"). In a goroutine; pressure events from one only. */
void pl_dispatch(pl_engine *p, const char *type, json_t *fields);
/* The same, and done(arg) once every Lua handler it started has ended (at
 * once when none matched, p is NULL or stopped); from some goroutine. */
void pl_dispatch_then(pl_engine *p, const char *type, json_t *fields, void (*done)(void *arg),
                      void *arg);
/* The container's process is now pid (a restart): what container.* and
 * hooks act on from here. The old pidfd is no longer used once it returns. */
void pl_set_process(pl_engine *p, pid_t pid, int pidfd);
int pl_handlers(pl_engine *p);
/* Wait for running handlers; later dispatches do nothing; frees p. */
void pl_stop(pl_engine *p);

#endif
