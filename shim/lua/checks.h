/*
 * checks.h — health checks written in Lua, run on the runtime (prefix hk_).
 *
 * A script declares checks while it loads:
 *
 *   check {
 *     name = "web", role = "liveness",          -- or "readiness", "startup"
 *     interval = 2, timeout = 1, retries = 3,    -- seconds; sub-second is fine
 *     start_period = 5, start_interval = 0.5, success_threshold = 1,
 *     run = function()
 *       local r, err = http.get("http://127.0.0.1:8080/healthz", {timeout = 1})
 *       return r and r.status == 200, r and r.status or err
 *     end,
 *   }
 *
 * run returns ok [, output]; an error or a run longer than timeout fails
 * it. The semantics (start period, retries, thresholds, roles) are
 * health.c's, Docker's and Kubernetes'. Each check runs on its own
 * goroutine as a task of the world; status changes go to the event
 * callback as "health" events. A probe that raises, is stopped for its
 * CPU budget or runs past its timeout is also an "error" event {"script",
 * "line" (when known), "check", "reason": "raised"|"budget"|"timeout",
 * "message", "suppressed" (when some were held back)}, at most one per
 * script per the world's report period (lw_report_admit): a failing
 * check says why at once, not only after `retries` failures. Every
 * probe is counted by outcome and duration (hc_probes, hk_json's
 * "Probes"), across restarts.
 *
 * Phase. The first probe of every check is due one interval after
 * hk_start (or initial_delay after it), with no random phase: checks
 * started together probe together. That is deliberate. Measured with
 * bench/lua_bench.c (1,000 HTTP checks at 1 s, 2 cores), spreading the
 * first probes over the interval costs 2.5x the CPU (5.6% of a core
 * against 2.2% then), because each lone probe wakes a sleeping thread
 * from epoll and puts it back, where a burst runs back to back on threads
 * already awake. Tests also rely on a short check's first probe coming at
 * once. A script that wants its checks apart sets initial_delay per check.
 */
#ifndef MOONSHIM_CHECKS_H
#define MOONSHIM_CHECKS_H

#include <jansson.h>
#include <stdbool.h>

#include "base.h"
#include "luaworld.h"

typedef struct hk_checks hk_checks;

/* type and fields (consumed) of an event */
typedef void (*hk_event_fn)(void *arg, const char *type, json_t *fields);

/* Give w's scripts check{}; call before loading them. */
hk_checks *hk_new(lw_world *w, hk_event_fn ev, void *arg);
/* Start every declared check (after the scripts loaded); 0 checks is fine. */
int hk_start(hk_checks *c, ms_err *err);
int hk_count(hk_checks *c);
/* on: the container's process is going away (a restart): no probe
 * starts, and the results of those running are dropped. off: probes go
 * on where they were (the restart did not happen). */
void hk_pause(hk_checks *c, bool on);
/* A new process of the container: every check starts over, STARTING,
 * with its clock (initial delay, start period) from now, as for a new
 * container; a "health" event reports the set's health going back to
 * starting. Probes resume. */
void hk_restart(hk_checks *c);
/* Stop the checks and wait for them; frees c. */
void hk_stop(hk_checks *c);
/* Docker-style status of all checks (State.Health shape). */
json_t *hk_json(hk_checks *c);

#endif
