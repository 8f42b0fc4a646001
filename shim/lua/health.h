/*
 * health.h — health-check semantics as a pure state machine (prefix hc_):
 * Docker's HEALTHCHECK and Kubernetes' startup/liveness/readiness probes in
 * one model. No I/O, no threads, no clock: the caller runs each probe when
 * hc_next_due() says, feeds the result to hc_record() with the times it
 * measured (rt_now() ns), and emits an event for every transition returned.
 *
 * ─── One check ───────────────────────────────────────────────────────────────
 *
 * A check is STARTING until its first decisive result, then HEALTHY or
 * UNHEALTHY; it never returns to STARTING.
 *   - success_threshold consecutive passes make it HEALTHY (from STARTING or
 *     UNHEALTHY); failure_threshold consecutive failures (Docker's retries)
 *     make it UNHEALTHY. A pass resets the failing streak, a failure the
 *     passing one.
 *   - FAIL, TIMEOUT and ERROR are all failures. A result that took longer
 *     than the timeout is a TIMEOUT whatever it says; TIMEOUT and ERROR log
 *     exit code -1, as Docker does.
 *   - Start period (Docker): while the check is STARTING, a failed probe that
 *     began less than start_period after the clock started is logged but
 *     not counted. The first time it turns HEALTHY the start period is over.
 * Scheduling: the first probe is due initial_delay after the clock started,
 * or one period after it when initial_delay is 0 (Docker). Each later probe
 * is due one period after the previous one *ended* (no overlap). The period
 * is start_interval while STARTING inside the start period, capped so a
 * probe runs right when the start period ends; interval otherwise.
 * A startup check stops for good once it is HEALTHY or UNHEALTHY.
 *
 * ─── A set of checks (one container) ─────────────────────────────────────────
 *
 * Kubernetes gating: while the set has a startup check that has not passed,
 * liveness and readiness checks do not run (they stay STARTING, next due
 * HC_NEVER). When every startup check is HEALTHY their clocks start: their
 * initial delay and start period count from that moment (Podman's hand-over).
 * Two aggregates, each a hc_status:
 *   health     from startup and liveness checks: UNHEALTHY if any is
 *              UNHEALTHY, else STARTING if any is STARTING, else HEALTHY.
 *              A failed startup check is a failed container (Kubernetes).
 *   readiness  the same rule over startup and readiness checks. "Ready" is
 *              readiness == HC_HEALTHY. Readiness never affects health, and
 *              liveness never affects readiness (Kubernetes: a failed
 *              readiness probe takes the pod out of endpoints, no restart).
 * A set without liveness or startup checks is HEALTHY; without readiness or
 * startup checks it is ready. Reacting (kill, restart) is the caller's job.
 */
#ifndef MOONSHIM_HEALTH_H
#define MOONSHIM_HEALTH_H

#include "base.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_NEVER                INT64_MAX /* as RT_FOREVER: no probe is due */
#define HC_LOG_MAX              5         /* results kept per check (Docker's maxLogEntries) */
#define HC_OUTPUT_MAX           4096      /* output bytes kept per result (Docker's maxOutputLen) */
#define HC_TRUNCATED            "..."     /* appended to a cut output, as Docker does */
#define HC_NAME_MAX             64        /* a check's name, NUL included */
#define HC_REASON_MAX           160
#define HC_TRANSITIONS_MAX      3 /* one result changes at most: its check, health, readiness */
#define HC_PERIOD_MIN_NS        1000000LL /* 1 ms: Docker's floor; sub-second periods are fine */
#define HC_DEFAULT_INTERVAL_NS  30000000000LL /* Docker --interval=30s */
#define HC_DEFAULT_TIMEOUT_NS   30000000000LL /* Docker --timeout=30s */
#define HC_DEFAULT_START_INT_NS 5000000000LL  /* Docker --start-interval=5s */
#define HC_DEFAULT_RETRIES      3             /* Docker --retries, K8s failureThreshold */

typedef enum { HC_STARTING, HC_HEALTHY, HC_UNHEALTHY } hc_status;
typedef enum { HC_ROLE_LIVENESS, HC_ROLE_READINESS, HC_ROLE_STARTUP } hc_role;
typedef enum { HC_PASS, HC_FAIL, HC_TIMEOUT, HC_ERROR } hc_outcome;

/* Zero means the default for interval (30 s), timeout (30 s), start_interval
 * (5 s), failure_threshold (3) and success_threshold (1); start_period 0 is
 * none. Periods and timeouts are at least HC_PERIOD_MIN_NS. */
typedef struct hc_config {
	const char *name; /* unique in a set; copied */
	hc_role role;
	int64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns, initial_delay_ns;
	int failure_threshold; /* Docker's retries */
	int success_threshold; /* 0 or 1 for a startup check (it ends at its first pass) */
} hc_config;

/* What the caller measured. output need not be NUL-terminated. */
typedef struct hc_result {
	int64_t start_ns, end_ns;
	hc_outcome outcome;
	int exit_code;
	const char *output;
	size_t output_len;
} hc_result;

/* A logged result: output cut to HC_OUTPUT_MAX bytes (on a UTF-8 boundary)
 * plus HC_TRUNCATED, NUL-terminated; output_len excludes the NUL. */
typedef struct hc_entry {
	int64_t start_ns, end_ns;
	hc_outcome outcome;
	int exit_code;
	size_t output_len;
	char *output; /* NUL-terminated, at most HC_OUTPUT_MAX + "..." (owned by the log) */
} hc_entry;

typedef enum { HC_OF_CHECK, HC_OF_HEALTH, HC_OF_READINESS } hc_subject;
typedef struct hc_transition {
	hc_subject subject;
	const char *check; /* the check whose result caused it (lives as long as the check) */
	hc_status from, to;
	int64_t at_ns; /* the result's end */
	char reason[HC_REASON_MAX];
} hc_transition;

const char *hc_status_name(hc_status s); /* "starting", "healthy", "unhealthy" */

/* ─── One check ────────────────────────────────────────────────────────── */

typedef struct hc_check hc_check;

/* 0, or -EINVAL with a message naming the check and the field. */
int hc_config_check(const hc_config *c, ms_err *err);
/* A check whose clock starts at now (container start). NULL on a bad config
 * (-EINVAL) or ENOMEM, with err set. */
hc_check *hc_new(const hc_config *c, int64_t now, ms_err *err);
void hc_free(hc_check *h);
const hc_config *hc_config_of(const hc_check *h); /* defaults filled in */
int64_t hc_next_due(const hc_check *h);           /* HC_NEVER: not running */
/* Apply a result; true (and *t filled, t may be NULL) if the status changed.
 * A result for a check that is not running is ignored. */
bool hc_record(hc_check *h, const hc_result *r, hc_transition *t);
hc_status hc_status_of(const hc_check *h);
int hc_failing_streak(const hc_check *h);
int hc_log_len(const hc_check *h);
const hc_entry *hc_log_at(const hc_check *h, int i); /* 0 is the oldest */
/* docker inspect's State.Health: {"Status","FailingStreak","Log":[{"Start",
 * "End","ExitCode","Output"}]}, times in RFC 3339 UTC. Monotonic times map
 * to wall clock as mono + wall_offset_ns (CLOCK_REALTIME - CLOCK_MONOTONIC).
 * Invalid UTF-8 in outputs becomes U+FFFD. NULL on ENOMEM. */
json_t *hc_to_json(const hc_check *h, int64_t wall_offset_ns);

/* ─── Probe counters ───────────────────────────────────────────────────────
 *
 * What an exporter needs of a check's probes: counts by outcome and a
 * duration histogram over Prometheus' default bounds (seconds, "le": a
 * probe of exactly a bound counts in that bound's bucket). Fixed size, no
 * allocation per probe; the caller holds its own lock. */

#define HC_BUCKETS 11 /* .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 s */

typedef struct hc_probes {
	uint64_t outcomes[HC_ERROR + 1];  /* by hc_outcome */
	uint64_t buckets[HC_BUCKETS + 1]; /* per bucket, not cumulative; the last: above 10 s */
	int64_t sum_ns;
} hc_probes;

/* Count one probe of that outcome that took duration_ns (< 0 counts as 0). */
void hc_probes_add(hc_probes *p, hc_outcome o, int64_t duration_ns);
/* {"pass","fail","timeout","error","duration":{"le":[bounds, s],"counts":
 * [HC_BUCKETS + 1],"sum": s}} (publish.h's "Probes"); NULL on ENOMEM. */
json_t *hc_probes_json(const hc_probes *p);

/* ─── A set of checks ──────────────────────────────────────────────────── */

typedef struct hc_set hc_set;

/* n checks of one container started at now; names must be unique. */
hc_set *hc_set_new(const hc_config *cfgs, int n, int64_t now, ms_err *err);
void hc_set_free(hc_set *s);
hc_check *hc_set_at(const hc_set *s, int i);
/* The earliest due probe, its check's index in *which (-1 if none). */
int64_t hc_set_next_due(const hc_set *s, int *which);
/* Record a result of check i; returns how many transitions were written to
 * out (check, then health, then readiness, each only if it changed). */
int hc_set_record(hc_set *s, int i, const hc_result *r, hc_transition out[HC_TRANSITIONS_MAX]);
hc_status hc_set_health(const hc_set *s);
hc_status hc_set_readiness(const hc_set *s);
/* State.Health of the first liveness check (else the first check) with the
 * set's health as "Status", plus "Ready" (bool) and "Checks": [{"Name",
 * "Role", "Status", "FailingStreak", "Log"}]. */
json_t *hc_set_to_json(const hc_set *s, int64_t wall_offset_ns);

#endif
