/* health.c — the health-check state machine: config validation, per-check
 * status and scheduling, startup gating and aggregates of a set, and the
 * docker-inspect JSON. Semantics are documented in health.h. */
#include "health.h"

#include "rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMEOUT_EXIT_CODE (-1) /* Docker logs -1 for a probe that did not exit */

struct hc_check {
	hc_config cfg; /* defaults filled in; cfg.name points at name */
	char name[HC_NAME_MAX];
	hc_status status;
	int64_t start_ns; /* the clock: HC_NEVER while gated */
	int64_t next_ns;
	int fail_streak, pass_streak;
	int log_head, log_len; /* ring: log[(log_head + i) % HC_LOG_MAX] is the i-th oldest */
	hc_entry log[HC_LOG_MAX];
};

static hc_status aggregate(const struct hc_set *s, hc_role ignored);

struct hc_set {
	int n;
	hc_status health, ready; /* cached: recomputed only when a check's status changes */
	hc_check *c[];
};

static const char *const status_names[] = {"starting", "healthy", "unhealthy"};
static const char *const role_names[] = {"liveness", "readiness", "startup"};

const char *hc_status_name(hc_status s) {
	return (unsigned)s <= HC_UNHEALTHY ? status_names[s] : "invalid";
}

/* "liveness", "readiness", "startup" */
static const char *hc_role_name(hc_role r) {
	return (unsigned)r <= HC_ROLE_STARTUP ? role_names[r] : "invalid";
}

/* ─── helpers ────────────────────────────────────────────────────────── */

static int64_t add_sat(int64_t t, int64_t d) {
	return t >= HC_NEVER - d ? HC_NEVER : t + d;
}

/* ".5", ".000000001": a fraction of `digits` digits without trailing zeros */
static void fmt_frac(char *buf, size_t n, int64_t frac, int digits) {
	buf[0] = 0;
	if (!frac)
		return;
	int k = snprintf(buf, n, ".%0*lld", digits, (long long)frac);
	while (k > 1 && buf[k - 1] == '0')
		buf[--k] = 0;
}

/* "30s", "1.5s", "250ms", "500us", "42ns", exactly: for reasons and messages */
static const char *fmt_dur(char *buf, size_t n, int64_t ns) {
	static const struct {
		uint64_t ns;
		const char *name;
		int digits;
	} units[] = {{RT_SECOND, "s", 9},
	             {RT_MILLISECOND, "ms", 6},
	             {RT_MICROSECOND, "us", 3},
	             {1, "ns", 0}};
	uint64_t a = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
	int u = 0;
	while (units[u].ns > 1 && a < units[u].ns)
		u++;
	char frac[16];
	fmt_frac(frac, sizeof frac, (int64_t)(a % units[u].ns), units[u].digits);
	snprintf(buf, n, "%s%llu%s%s", ns < 0 ? "-" : "", (unsigned long long)(a / units[u].ns),
	         frac, units[u].name);
	return buf;
}

/* ─── configuration ──────────────────────────────────────────────────── */

/* "health check "web": interval must be ... (got 500us)", the value as a duration or not */
static int bad(ms_err *err, const hc_config *c, const char *field, const char *rule, int64_t v,
               bool dur) {
	char got[32];
	if (dur)
		fmt_dur(got, sizeof got, v);
	else
		snprintf(got, sizeof got, "%lld", (long long)v);
	return ms_fail(err, -EINVAL, "health check \"%s\": %s %s (got %s)", c->name, field, rule,
	               got);
}

int hc_config_check(const hc_config *c, ms_err *err) {
	if (!c || !c->name || !c->name[0])
		return ms_fail(err, -EINVAL, "health check: name is empty");
	if (strlen(c->name) >= HC_NAME_MAX)
		return ms_fail(err, -EINVAL,
		               "health check \"%.*s...\": name is longer than %d bytes",
		               HC_NAME_MAX / 2, c->name, HC_NAME_MAX - 1);
	if ((unsigned)c->role > HC_ROLE_STARTUP)
		return bad(err, c, "role", "must be liveness, readiness or startup", c->role,
		           false);
	const struct {
		const char *field;
		int64_t v;
		bool period; /* 0 (the default) or at least HC_PERIOD_MIN_NS; else >= 0 */
	} durs[] = {{"interval", c->interval_ns, true},
	            {"timeout", c->timeout_ns, true},
	            {"start_interval", c->start_interval_ns, true},
	            {"start_period", c->start_period_ns, false},
	            {"initial_delay", c->initial_delay_ns, false}};
	for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++)
		if (durs[i].v < 0 || (durs[i].period && durs[i].v && durs[i].v < HC_PERIOD_MIN_NS))
			return bad(err, c, durs[i].field,
			           durs[i].period ? "must be 0 or at least 1ms"
			                          : "must not be negative",
			           durs[i].v, true);
	if (c->failure_threshold < 0)
		return bad(err, c, "failure_threshold", "must not be negative",
		           c->failure_threshold, false);
	if (c->success_threshold < 0 || (c->role == HC_ROLE_STARTUP && c->success_threshold > 1))
		return bad(err, c, "success_threshold",
		           c->role == HC_ROLE_STARTUP
		               ? "must be 0 or 1 for a startup check (it ends at its first pass)"
		               : "must not be negative",
		           c->success_threshold, false);
	return 0;
}

/* ─── one check ──────────────────────────────────────────────────────── */

/* gated, or a startup check that passed or failed */
static bool stopped(const hc_check *h) {
	return h->start_ns == HC_NEVER ||
	       (h->cfg.role == HC_ROLE_STARTUP && h->status != HC_STARTING);
}

static bool in_start_period(const hc_check *h, int64_t t) {
	return h->status == HC_STARTING && t < add_sat(h->start_ns, h->cfg.start_period_ns);
}

/* when the probe after one that ended at t is due */
static int64_t due_after(const hc_check *h, int64_t t) {
	if (stopped(h))
		return HC_NEVER;
	if (!in_start_period(h, t))
		return add_sat(t, h->cfg.interval_ns);
	int64_t next = add_sat(t, h->cfg.start_interval_ns);
	int64_t end = add_sat(h->start_ns, h->cfg.start_period_ns);
	return next < end ? next : end;
}

static void start_clock(hc_check *h, int64_t now) {
	h->start_ns = now;
	h->next_ns =
	    h->cfg.initial_delay_ns > 0 ? add_sat(now, h->cfg.initial_delay_ns) : due_after(h, now);
}

static hc_check *check_new(const hc_config *c, int64_t now, bool gated, ms_err *err) {
	if (hc_config_check(c, err) < 0)
		return NULL;
	hc_check *h = calloc(1, sizeof *h);
	if (!h) {
		ms_fail(err, -ENOMEM, "health check \"%s\": out of memory", c->name);
		return NULL;
	}
	h->cfg = *c;
	snprintf(h->name, sizeof h->name, "%s", c->name);
	h->cfg.name = h->name;
	h->cfg.interval_ns = c->interval_ns ? c->interval_ns : HC_DEFAULT_INTERVAL_NS;
	h->cfg.timeout_ns = c->timeout_ns ? c->timeout_ns : HC_DEFAULT_TIMEOUT_NS;
	h->cfg.start_interval_ns =
	    c->start_interval_ns ? c->start_interval_ns : HC_DEFAULT_START_INT_NS;
	h->cfg.failure_threshold = c->failure_threshold ? c->failure_threshold : HC_DEFAULT_RETRIES;
	h->cfg.success_threshold = c->success_threshold ? c->success_threshold : 1;
	h->status = HC_STARTING;
	h->start_ns = h->next_ns = HC_NEVER;
	if (!gated)
		start_clock(h, now);
	return h;
}

hc_check *hc_new(const hc_config *c, int64_t now, ms_err *err) {
	return check_new(c, now, false, err);
}

void hc_free(hc_check *h) {
	if (!h)
		return;
	for (int i = 0; i < HC_LOG_MAX; i++)
		free(h->log[i].output);
	free(h);
}

const hc_config *hc_config_of(const hc_check *h) {
	return &h->cfg;
}
int64_t hc_next_due(const hc_check *h) {
	return h->next_ns;
}
hc_status hc_status_of(const hc_check *h) {
	return h->status;
}
int hc_failing_streak(const hc_check *h) {
	return h->fail_streak;
}
int hc_log_len(const hc_check *h) {
	return h->log_len;
}
const hc_entry *hc_log_at(const hc_check *h, int i) {
	return i >= 0 && i < h->log_len ? &h->log[(h->log_head + i) % HC_LOG_MAX] : NULL;
}

/* Append r (already classified) to the ring, cutting its output. */
static void log_result(hc_check *h, const hc_result *r, hc_outcome outcome) {
	hc_entry *e;
	if (h->log_len < HC_LOG_MAX)
		e = &h->log[(h->log_head + h->log_len++) % HC_LOG_MAX];
	else
		e = &h->log[h->log_head], h->log_head = (h->log_head + 1) % HC_LOG_MAX;
	e->start_ns = r->start_ns;
	e->end_ns = r->end_ns;
	e->outcome = outcome;
	e->exit_code =
	    outcome == HC_TIMEOUT || outcome == HC_ERROR ? TIMEOUT_EXIT_CODE : r->exit_code;
	/* the output on the heap, sized to fit: an idle check holds only what
	 * its results said, not five 4 KiB buffers */
	size_t n = r->output ? r->output_len : 0;
	if (e->output && e->output_len == n && n <= HC_OUTPUT_MAX &&
	    (n || outcome != HC_TIMEOUT)) { /* as long as the one it replaces: reuse it */
		if (n)
			memcpy(e->output, r->output, n);
		e->output[n] = 0;
		return;
	}
	free(e->output);
	bool cut = n > HC_OUTPUT_MAX;
	if (cut) {
		n = HC_OUTPUT_MAX; /* back off to the first byte of a UTF-8 character */
		while (n > HC_OUTPUT_MAX - 3 && ((unsigned char)r->output[n] & 0xC0) == 0x80)
			n--;
	}
	char d[32];
	if (!n && outcome == HC_TIMEOUT) {
		char msg[96];
		int k = snprintf(msg, sizeof msg, "Health check exceeded timeout (%s)",
		                 fmt_dur(d, sizeof d, h->cfg.timeout_ns));
		e->output = strdup(msg);
		e->output_len = e->output ? (size_t)k : 0;
		return;
	}
	e->output = malloc(n + (cut ? sizeof HC_TRUNCATED : 1));
	if (!e->output) {
		e->output_len = 0;
		return;
	}
	if (n)
		memcpy(e->output, r->output, n);
	if (cut) {
		memcpy(e->output + n, HC_TRUNCATED, sizeof HC_TRUNCATED);
		e->output_len = n + sizeof HC_TRUNCATED - 1;
	} else {
		e->output[n] = 0;
		e->output_len = n;
	}
}

bool hc_record(hc_check *h, const hc_result *r, hc_transition *t) {
	if (stopped(h))
		return false;
	hc_outcome outcome = r->outcome;
	if ((unsigned)outcome > HC_ERROR)
		outcome = HC_ERROR;
	if (r->end_ns - r->start_ns > h->cfg.timeout_ns)
		outcome = HC_TIMEOUT;
	log_result(h, r, outcome);
	hc_status from = h->status, to = from;
	if (outcome == HC_PASS) {
		h->fail_streak = 0;
		h->pass_streak++;
		if (h->pass_streak >= h->cfg.success_threshold)
			to = HC_HEALTHY;
	} else {
		h->pass_streak = 0;
		if (!in_start_period(h, r->start_ns))
			h->fail_streak++;
		if (h->fail_streak >= h->cfg.failure_threshold)
			to = HC_UNHEALTHY;
	}
	h->status = to;
	h->next_ns = due_after(h, r->end_ns);
	if (to == from)
		return false;
	if (!t)
		return true;
	*t = (hc_transition){
	    .subject = HC_OF_CHECK, .check = h->name, .from = from, .to = to, .at_ns = r->end_ns};
	char last[64] = "probe error", d[32];
	if (outcome == HC_TIMEOUT)
		snprintf(last, sizeof last, "timed out after %s",
		         fmt_dur(d, sizeof d, r->end_ns - r->start_ns));
	else if (outcome == HC_FAIL)
		snprintf(last, sizeof last, "exit code %d", r->exit_code);
	if (to == HC_HEALTHY)
		snprintf(t->reason, sizeof t->reason, "%d consecutive pass%s", h->pass_streak,
		         h->pass_streak == 1 ? "" : "es");
	else
		snprintf(t->reason, sizeof t->reason, "%d consecutive failure%s, last: %s",
		         h->fail_streak, h->fail_streak == 1 ? "" : "s", last);
	return true;
}

/* ─── JSON ───────────────────────────────────────────────────────────── */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
	else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

static json_t *json_text(const char *p, size_t n) {
	static const char fffd[] = "\xEF\xBF\xBD";
	char *buf = malloc(n * 3 + 1); /* each invalid byte may become 3 */
	if (!buf)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq((const unsigned char *)p + i, n - i);
		if (k)
			memcpy(buf + o, p + i, k), o += k, i += k;
		else
			memcpy(buf + o, fffd, 3), o += 3, i++;
	}
	json_t *j = json_stringn(buf, o);
	free(buf);
	return j;
}

/* RFC 3339 with nanoseconds in UTC, trailing zeros dropped (Go's RFC3339Nano) */
static json_t *json_time(int64_t mono_ns, int64_t wall_offset_ns) {
	int64_t w = add_sat(mono_ns, wall_offset_ns);
	time_t sec = (time_t)(w / RT_SECOND);
	long ns = (long)(w % RT_SECOND);
	if (ns < 0)
		sec--, ns += RT_SECOND;
	struct tm tm;
	char buf[64], frac[16];
	gmtime_r(&sec, &tm);
	fmt_frac(frac, sizeof frac, ns, 9);
	size_t k = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, sizeof buf - k, "%sZ", frac);
	return json_string(buf);
}

/* State.Health; with a name, also "Name" and "Role" as in a set's "Checks" */
static json_t *health_json(const hc_check *h, hc_status status, bool named, int64_t wall_offset) {
	json_t *log = json_array();
	for (int i = 0; log && i < h->log_len; i++) {
		const hc_entry *e = hc_log_at(h, i);
		if (json_array_append_new(
		        log, json_pack("{s:o?,s:o?,s:i,s:o?}", "Start",
		                       json_time(e->start_ns, wall_offset), "End",
		                       json_time(e->end_ns, wall_offset), "ExitCode", e->exit_code,
		                       "Output", json_text(e->output, e->output_len))) < 0) {
			json_decref(log);
			return NULL;
		}
	}
	return json_pack("{s:s*,s:s*,s:s,s:i,s:o}", "Name", named ? h->name : NULL, "Role",
	                 named ? hc_role_name(h->cfg.role) : NULL, "Status", hc_status_name(status),
	                 "FailingStreak", h->fail_streak, "Log", log);
}

json_t *hc_to_json(const hc_check *h, int64_t wall_offset_ns) {
	return health_json(h, h->status, false, wall_offset_ns);
}

/* ─── probe counters ─────────────────────────────────────────────────── */

/* Prometheus' default histogram bounds (client_golang's DefBuckets) */
static const int64_t bucket_ns[HC_BUCKETS] = {
    5 * RT_MILLISECOND,   10 * RT_MILLISECOND,  25 * RT_MILLISECOND,  50 * RT_MILLISECOND,
    100 * RT_MILLISECOND, 250 * RT_MILLISECOND, 500 * RT_MILLISECOND, RT_SECOND,
    5 * RT_SECOND / 2,    5 * RT_SECOND,        10 * RT_SECOND};

void hc_probes_add(hc_probes *p, hc_outcome o, int64_t duration_ns) {
	if ((unsigned)o > HC_ERROR)
		o = HC_ERROR;
	if (duration_ns < 0)
		duration_ns = 0;
	int b = 0;
	while (b < HC_BUCKETS && duration_ns > bucket_ns[b])
		b++;
	p->outcomes[o]++;
	p->buckets[b]++;
	p->sum_ns += duration_ns;
}

json_t *hc_probes_json(const hc_probes *p) {
	json_t *le = json_array(), *counts = json_array();
	for (int b = 0; le && counts && b <= HC_BUCKETS; b++) {
		if (b < HC_BUCKETS)
			json_array_append_new(le, json_real((double)bucket_ns[b] / RT_SECOND));
		json_array_append_new(counts, json_integer((json_int_t)p->buckets[b]));
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:{s:o, s:o, s:f}}", "pass",
	                 (json_int_t)p->outcomes[HC_PASS], "fail", (json_int_t)p->outcomes[HC_FAIL],
	                 "timeout", (json_int_t)p->outcomes[HC_TIMEOUT], "error",
	                 (json_int_t)p->outcomes[HC_ERROR], "duration", "le", le, "counts", counts,
	                 "sum", (double)p->sum_ns / RT_SECOND);
}

/* ─── a set ──────────────────────────────────────────────────────────── */

hc_set *hc_set_new(const hc_config *cfgs, int n, int64_t now, ms_err *err) {
	hc_set *s = calloc(1, sizeof *s + (size_t)(n > 0 ? n : 0) * sizeof(hc_check *));
	if (!s) {
		ms_fail(err, -ENOMEM, "health checks: out of memory");
		return NULL;
	}
	bool gated = false;
	for (int i = 0; i < n; i++)
		gated |= cfgs[i].role == HC_ROLE_STARTUP;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < i; j++)
			if (cfgs[i].name && cfgs[j].name && !strcmp(cfgs[i].name, cfgs[j].name)) {
				ms_fail(err, -EINVAL, "health check \"%s\": name used twice",
				        cfgs[i].name);
				goto fail;
			}
		s->c[i] = check_new(&cfgs[i], now, gated && cfgs[i].role != HC_ROLE_STARTUP, err);
		if (!s->c[i])
			goto fail;
		s->n++;
	}
	s->health = aggregate(s, HC_ROLE_READINESS);
	s->ready = aggregate(s, HC_ROLE_LIVENESS);
	return s;
fail:
	hc_set_free(s);
	return NULL;
}

void hc_set_free(hc_set *s) {
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		hc_free(s->c[i]);
	free(s);
}
hc_check *hc_set_at(const hc_set *s, int i) {
	return i >= 0 && i < s->n ? s->c[i] : NULL;
}

int64_t hc_set_next_due(const hc_set *s, int *which) {
	int64_t due = HC_NEVER;
	int w = -1;
	for (int i = 0; i < s->n; i++)
		if (s->c[i]->next_ns < due)
			due = s->c[i]->next_ns, w = i;
	if (which)
		*which = w;
	return due;
}

/* UNHEALTHY if any check of the roles is, else STARTING if any is, else
 * HEALTHY. O(checks): run when a status changed, never per result. */
static hc_status aggregate(const hc_set *s, hc_role ignored) {
	hc_status st = HC_HEALTHY;
	for (int i = 0; i < s->n; i++) {
		const hc_check *h = s->c[i];
		if (h->cfg.role == ignored)
			continue;
		if (h->status == HC_UNHEALTHY)
			return HC_UNHEALTHY;
		if (h->status == HC_STARTING)
			st = HC_STARTING;
	}
	return st;
}

hc_status hc_set_health(const hc_set *s) {
	return s->health;
}
hc_status hc_set_readiness(const hc_set *s) {
	return s->ready;
}

/* every startup check passed: start the clocks of the gated checks */
static void release_gated(hc_set *s, int64_t now) {
	for (int i = 0; i < s->n; i++)
		if (s->c[i]->cfg.role == HC_ROLE_STARTUP && s->c[i]->status != HC_HEALTHY)
			return;
	for (int i = 0; i < s->n; i++)
		if (s->c[i]->start_ns == HC_NEVER)
			start_clock(s->c[i], now);
}

static int aggregate_changed(hc_transition *t, hc_subject subj, hc_status from, hc_status to,
                             const hc_check *cause, int64_t at) {
	if (from == to)
		return 0;
	*t = (hc_transition){
	    .subject = subj, .check = cause->name, .from = from, .to = to, .at_ns = at};
	snprintf(t->reason, sizeof t->reason, "%s check \"%s\" is %s",
	         hc_role_name(cause->cfg.role), cause->name, hc_status_name(cause->status));
	return 1;
}

int hc_set_record(hc_set *s, int i, const hc_result *r, hc_transition out[HC_TRANSITIONS_MAX]) {
	hc_check *h = hc_set_at(s, i);
	if (!h)
		return 0;
	hc_status health = s->health, ready = s->ready;
	int n = hc_record(h, r, &out[0]) ? 1 : 0;
	if (!n) /* no check changed: neither did the set (the common case, O(1)) */
		return 0;
	if (h->cfg.role == HC_ROLE_STARTUP && h->status == HC_HEALTHY)
		release_gated(s, r->end_ns);
	s->health = aggregate(s, HC_ROLE_READINESS);
	s->ready = aggregate(s, HC_ROLE_LIVENESS);
	n += aggregate_changed(&out[n], HC_OF_HEALTH, health, s->health, h, r->end_ns);
	n += aggregate_changed(&out[n], HC_OF_READINESS, ready, s->ready, h, r->end_ns);
	return n;
}

json_t *hc_set_to_json(const hc_set *s, int64_t wall_offset_ns) {
	int primary = 0; /* the first liveness check, else the first */
	for (int i = s->n - 1; i >= 0; i--)
		if (s->c[i]->cfg.role == HC_ROLE_LIVENESS)
			primary = i;
	json_t *checks = json_array(), *j;
	if (s->n)
		j = health_json(s->c[primary], hc_set_health(s), false, wall_offset_ns);
	else
		j = json_pack("{s:s,s:i,s:[]}", "Status", "healthy", "FailingStreak", 0, "Log");
	if (!j ||
	    json_object_set_new(j, "Ready", json_boolean(hc_set_readiness(s) == HC_HEALTHY))) {
		json_decref(checks);
		goto fail;
	}
	if (json_object_set_new(j, "Checks", checks)) /* takes checks even when it fails */
		goto fail;
	for (int i = 0; i < s->n; i++)
		if (json_array_append_new(
		        checks, health_json(s->c[i], s->c[i]->status, true, wall_offset_ns)))
			goto fail;
	return j;
fail:
	json_decref(j);
	return NULL;
}
