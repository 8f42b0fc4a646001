/*
 * mxcollect.c — mxcollect.h's collector: for every live container under the
 * state roots (pb_scan), its status.json turned into series, and its
 * cgroup's memory, PSI and CPU counters read at the scrape.
 *
 * What must stay true: a status.json is untrusted text (its names come
 * from the user's scripts): a value of the wrong type, a missing section
 * or a cgroup already gone costs that series only, never the scrape; each
 * problem is logged once per container, and counted; one status adds at
 * most MX_CHECKS_MAX checks and MX_KEYS_MAX keys per keyed counter.
 * Nothing is cached between scrapes but the log's memory of what it said.
 */
#define _GNU_SOURCE
#include "mxcollect.h"

#include "cgroup.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAID_MAX 1024 /* problems remembered, so each is logged once */

/* ─── The families ────────────────────────────────────────────────────── */

#define FAMILIES(X)                                                                                \
	X(CONTAINERS, "moonshim_containers", GAUGE,                                                \
	  "Live containers under the state roots, by mode.")                                       \
	X(SCRAPE_SECONDS, "moonshim_exporter_scrape_duration_seconds", GAUGE,                      \
	  "How long this scrape took to collect.")                                                 \
	X(STATUS_ERRORS, "moonshim_exporter_status_errors", COUNTER,                               \
	  "Problems found in published status files (each logged once), counted at every scrape.") \
	X(RUNNING, "moonshim_container_running", GAUGE, "1 while the container's process runs.")   \
	X(START_TIME, "container_start_time_seconds", GAUGE,                                       \
	  "Start time of the container's process since the Unix epoch.")                           \
	X(RESTARTS, "moonshim_container_restarts", COUNTER,                                        \
	  "Restarts of the container's process by its supervisor.")                                \
	X(EXIT_STATUS, "moonshim_container_exit_status", GAUGE,                                    \
	  "Exit status of the container's process once it stopped (128+N: killed by signal N).")   \
	X(UPDATED, "moonshim_status_updated_timestamp_seconds", GAUGE,                             \
	  "When the supervisor last published the container's status.")                            \
	X(HEALTHY, "moonshim_container_healthy", GAUGE,                                            \
	  "1 when the container's health is healthy, 0 otherwise.")                                \
	X(HEALTH_STATUS, "moonshim_container_health_status", GAUGE,                                \
	  "The container's health as a state set: 1 for its status, 0 for the others.")            \
	X(READY, "moonshim_container_ready", GAUGE, "1 when every readiness check passes.")        \
	X(CHECK_HEALTHY, "moonshim_check_healthy", GAUGE,                                          \
	  "1 when the check is healthy, 0 otherwise.")                                             \
	X(CHECK_STATUS, "moonshim_check_status", GAUGE,                                            \
	  "A check's status as a state set: 1 for its status, 0 for the others.")                  \
	X(CHECK_STREAK, "moonshim_check_failing_streak", GAUGE,                                    \
	  "Consecutive failed probes of the check.")                                               \
	X(PROBES, "moonshim_probes", COUNTER,                                                      \
	  "Probes run, by check and outcome (pass, fail, timeout, error).")                        \
	X(PROBE_SECONDS, "moonshim_probe_duration_seconds", HISTOGRAM, "How long probes took.")    \
	X(EVENTS, "moonshim_events", COUNTER, "Events the supervisor emitted, by type.")           \
	X(POLICY_ACTIONS, "moonshim_policy_actions", COUNTER, "Policy actions taken, by action.")  \
	X(POLICY_STEP, "moonshim_policy_step", GAUGE,                                              \
	  "The ladder's step of the last policy action.")                                          \
	X(GO_FINDINGS, "moonshim_go_findings", COUNTER,                                            \
	  "Go-watch findings (goroutine leaks, scheduler anomalies), by type.")                    \
	X(GO_GOMAXPROCS, "moonshim_go_sched_gomaxprocs", GAUGE,                                    \
	  "The Go workload's GOMAXPROCS in its last SCHED sample.")                                \
	X(GO_IDLEPROCS, "moonshim_go_sched_idle_procs", GAUGE,                                     \
	  "Idle P's in the Go workload's last SCHED sample.")                                      \
	X(GO_THREADS, "moonshim_go_sched_threads", GAUGE,                                          \
	  "Threads in the Go workload's last SCHED sample.")                                       \
	X(GO_SPINNING, "moonshim_go_sched_spinning_threads", GAUGE,                                \
	  "Spinning threads in the Go workload's last SCHED sample.")                              \
	X(GO_IDLETHREADS, "moonshim_go_sched_idle_threads", GAUGE,                                 \
	  "Idle threads in the Go workload's last SCHED sample.")                                  \
	X(GO_RUNQUEUE, "moonshim_go_sched_run_queue", GAUGE,                                       \
	  "Goroutines in the global run queue in the Go workload's last SCHED sample.")            \
	X(SCRIPT_ERRORS, "moonshim_script_errors", COUNTER,                                        \
	  "Errors raised by checks and handlers (or their timeouts), by script.")                  \
	X(SV_GOROUTINES, "moonshim_supervisor_goroutines", GAUGE,                                  \
	  "Goroutines of the container's supervisor.")                                             \
	X(SV_STEALS, "moonshim_supervisor_steals", COUNTER,                                        \
	  "Work steals in the supervisor's runtime.")                                              \
	X(SV_PARKS, "moonshim_supervisor_parks", COUNTER,                                          \
	  "Goroutine parks in the supervisor's runtime.")                                          \
	X(SV_SWITCHES, "moonshim_supervisor_switches", COUNTER,                                    \
	  "Goroutine switches in the supervisor's runtime.")                                       \
	X(SV_THREADS, "moonshim_supervisor_threads", GAUGE,                                        \
	  "Threads of the container's supervisor.")                                                \
	X(SV_RSS, "moonshim_supervisor_resident_memory_bytes", GAUGE,                              \
	  "Resident memory of the container's supervisor.")                                        \
	X(MEM_USAGE, "container_memory_usage_bytes", GAUGE,                                        \
	  "Memory charged to the container's cgroup (memory.current).")                            \
	X(MEM_WSS, "container_memory_working_set_bytes", GAUGE,                                    \
	  "Memory usage less inactive file pages, as cAdvisor counts it.")                         \
	X(MEM_PEAK, "container_memory_max_usage_bytes", GAUGE,                                     \
	  "The highest memory usage recorded (memory.peak).")                                      \
	X(MEM_LIMIT, "container_spec_memory_limit_bytes", GAUGE,                                   \
	  "The container's memory.max (0: no limit).")                                             \
	X(MEM_HIGH, "moonshim_memory_high_bytes", GAUGE,                                           \
	  "The container's memory.high (v1: memory.soft_limit_in_bytes; 0: no limit).")            \
	X(MEM_EVENTS, "moonshim_memory_events", COUNTER,                                           \
	  "memory.events by event (low, high, max, oom, oom_kill).")                               \
	X(OOM_EVENTS, "container_oom_events", COUNTER, "OOM kills in the container's cgroup.")     \
	X(PSI_CPU_SOME, "container_pressure_cpu_waiting_seconds", COUNTER,                         \
	  "Time some tasks waited for CPU (PSI some total).")                                      \
	X(PSI_CPU_FULL, "container_pressure_cpu_stalled_seconds", COUNTER,                         \
	  "Time all tasks stalled on CPU (PSI full total).")                                       \
	X(PSI_MEM_SOME, "container_pressure_memory_waiting_seconds", COUNTER,                      \
	  "Time some tasks waited for memory (PSI some total).")                                   \
	X(PSI_MEM_FULL, "container_pressure_memory_stalled_seconds", COUNTER,                      \
	  "Time all tasks stalled on memory (PSI full total).")                                    \
	X(PSI_IO_SOME, "container_pressure_io_waiting_seconds", COUNTER,                           \
	  "Time some tasks waited for I/O (PSI some total).")                                      \
	X(PSI_IO_FULL, "container_pressure_io_stalled_seconds", COUNTER,                           \
	  "Time all tasks stalled on I/O (PSI full total).")                                       \
	X(CPU_USAGE, "container_cpu_usage_seconds", COUNTER, "CPU time the container used.")       \
	X(CPU_PERIODS, "container_cpu_cfs_periods", COUNTER,                                       \
	  "Enforcement periods of the CPU quota.")                                                 \
	X(CPU_THROTTLED, "container_cpu_cfs_throttled_periods", COUNTER,                           \
	  "Periods in which the container was throttled.")                                         \
	X(CPU_THROTTLED_S, "container_cpu_cfs_throttled_seconds", COUNTER,                         \
	  "Time the container was throttled.")

#define ENUM_(id, name, type, help) F_##id,
enum { FAMILIES(ENUM_) F_N };
#define ROW_(id, name, type, help) {name, EX_##type, help},
static const ex_family families[F_N] = {FAMILIES(ROW_)};

/* ─── The collector ───────────────────────────────────────────────────── */

struct mx {
	const char *roots[2]; /* run's (depth 1), containerd's (depth 2) */
	FILE *log;
	cg_host host;
	bool have_host;
	pthread_mutex_t mu; /* said, nsaid, status_errors */
	uint64_t said[SAID_MAX];
	size_t nsaid;
	double status_errors;
};

/* One scrape of one container. */
typedef struct sc {
	mx *m;
	ex_set *set;
	const pb_entry *e;
	ex_label base[5]; /* id, mode, container, pod, namespace */
	int live[2];      /* by mode: run, containerd */
} sc;

mx *mx_new(const char *run_root, const char *containerd_root, FILE *log) {
	mx *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->roots[0] = run_root, m->roots[1] = containerd_root, m->log = log;
	pthread_mutex_init(&m->mu, NULL);
	cg_err e;
	m->have_host = cg_host_detect(&m->host, "/proc/self/mounts", &e) == 0;
	if (!m->have_host && log)
		fprintf(log, "moonshim metrics: no cgroup series: %s\n", e.msg);
	return m;
}

void mx_free(mx *m) {
	if (m)
		pthread_mutex_destroy(&m->mu);
	free(m);
}

static uint64_t fnv(const char *a, const char *b) {
	uint64_t h = 1469598103934665603ull;
	for (const char *s = a; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	for (const char *s = b; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* A problem in a container's status: counted, logged the first time. */
static void bad(sc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(sc *c, const char *fmt, ...) {
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *key = c->e ? c->e->key : "";
	uint64_t h = fnv(key, msg);
	bool seen = false;
	pthread_mutex_lock(&c->m->mu);
	c->m->status_errors++;
	for (size_t i = 0; i < c->m->nsaid && i < SAID_MAX && !seen; i++)
		seen = c->m->said[i] == h;
	if (!seen)
		c->m->said[c->m->nsaid++ % SAID_MAX] = h;
	pthread_mutex_unlock(&c->m->mu);
	if (!seen && c->m->log) {
		char esc[EX_VALUE_MAX * 2];
		ex_escape(key, esc, sizeof esc); /* the key is a directory name: any bytes */
		fprintf(c->m->log, "moonshim metrics: %s: %s\n", esc, msg);
		fflush(c->m->log);
	}
}

/* ─── Reading status.json ─────────────────────────────────────────────── */

/* obj[key] when it has the wanted type; absent or null is no problem,
 * another type is. */
static json_t *get(sc *c, json_t *obj, const char *where, const char *key, json_type want) {
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	if (!v || json_is_null(v))
		return NULL;
	bool ok = json_typeof(v) == want || (want == JSON_REAL && json_is_integer(v)) ||
	          (want == JSON_TRUE && json_is_boolean(v));
	if (!ok) {
		static const char *const names[] = {"an object", "an array", "a string",
		                                    "a number",  "a number", "a boolean",
		                                    "a boolean", "null"};
		bad(c, "%s%s%s: not %s", where, *where ? "." : "", key, names[want]);
		return NULL;
	}
	return v;
}

static bool num(sc *c, json_t *obj, const char *where, const char *key, double *out) {
	json_t *v = get(c, obj, where, key, JSON_REAL);
	if (v)
		*out = json_number_value(v);
	return v != NULL;
}

/* RFC 3339 ("2026-12-05T21:25:37.5Z", or with an offset) to Unix seconds. */
static bool parse_time(const char *s, double *out) {
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return false;
	double frac = 0;
	if (*p == '.') {
		char *end;
		frac = strtod(p, &end);
		p = end;
	}
	long off = 0;
	if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':')
		off = (*p == '-' ? -1 : 1) * (atol(p + 1) * 3600 + atol(p + 4) * 60);
	else if (strcmp(p, "Z"))
		return false;
	*out = (double)timegm(&tm) - (double)off + frac;
	return true;
}

/* A sample of the container being scraped (its labels are the set's
 * scope) with extra labels. */
static void add(sc *c, int fam, const ex_label *extra, int nx, double v) {
	ex_add(c->set, fam, extra, nx, v);
}

static void add_num(sc *c, int fam, json_t *obj, const char *where, const char *key) {
	double v;
	if (num(c, obj, where, key, &v))
		add(c, fam, NULL, 0, v);
}

static void add_time(sc *c, int fam, json_t *obj, const char *where, const char *key) {
	json_t *s = get(c, obj, where, key, JSON_STRING);
	double t;
	if (s && !parse_time(json_string_value(s), &t))
		bad(c, "%s.%s: not an RFC 3339 time", where, key);
	else if (s)
		add(c, fam, NULL, 0, t);
}

/* {"<key>": count} as one counter per key, label `label`. */
static void keyed(sc *c, int fam, json_t *obj, const char *where, const char *label) {
	const char *k;
	json_t *v;
	int n = 0;
	if (!obj)
		return;
	json_object_foreach(obj, k, v) {
		if (n++ == MX_KEYS_MAX) {
			bad(c, "%s: more than %d keys (the rest left out)", where, MX_KEYS_MAX);
			break;
		}
		if (!json_is_number(v)) {
			bad(c, "%s.%s: not a number", where, k);
			continue;
		}
		add(c, fam, &(ex_label){label, k}, 1, json_number_value(v));
	}
}

/* ─── Sections ────────────────────────────────────────────────────────── */

static void process(sc *c, json_t *st) {
	json_t *p = get(c, st, "", "process", JSON_OBJECT);
	json_t *s = get(c, p, "process", "status", JSON_STRING);
	if (s)
		add(c, F_RUNNING, NULL, 0, !strcmp(json_string_value(s), "running"));
	add_time(c, F_START_TIME, p, "process", "started");
	add_num(c, F_RESTARTS, p, "process", "restarts");
	add_num(c, F_EXIT_STATUS, p, "process", "exit_status");
	add_time(c, F_UPDATED, st, "", "updated");
}

static const char *const statuses[] = {"starting", "healthy", "unhealthy"};

/* A state set: 1 for `now`, 0 for the other known statuses. */
static void state_set(sc *c, int fam, ex_label *extra, int nx, const char *now) {
	bool known = false;
	for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
		extra[nx] = (ex_label){"status", statuses[i]};
		add(c, fam, extra, nx + 1, !strcmp(now, statuses[i]));
		known |= !strcmp(now, statuses[i]);
	}
	if (!known) {
		extra[nx] = (ex_label){"status", now};
		add(c, fam, extra, nx + 1, 1);
	}
}

static void probes(sc *c, json_t *pr, ex_label *l, const char *where) {
	static const char *const outcomes[] = {"pass", "fail", "timeout", "error"};
	for (size_t i = 0; i < sizeof outcomes / sizeof *outcomes; i++) {
		double v;
		l[2] = (ex_label){"outcome", outcomes[i]};
		if (num(c, pr, where, outcomes[i], &v))
			add(c, F_PROBES, l, 3, v);
	}
	json_t *d = get(c, pr, where, "duration", JSON_OBJECT);
	json_t *le = get(c, d, where, "le", JSON_ARRAY),
	       *counts = get(c, d, where, "counts", JSON_ARRAY);
	double sum;
	if (!le || !counts || !num(c, d, where, "sum", &sum))
		return;
	size_t n = json_array_size(le);
	if (n > MX_BUCKETS_MAX || json_array_size(counts) != n + 1) {
		bad(c, "%s.duration: want at most %d bounds and one count more", where,
		    MX_BUCKETS_MAX);
		return;
	}
	double b[MX_BUCKETS_MAX], k[MX_BUCKETS_MAX + 1];
	for (size_t i = 0; i <= n; i++) {
		json_t *bv = i < n ? json_array_get(le, i) : NULL, *kv = json_array_get(counts, i);
		if ((i < n && (!json_is_number(bv) || (i && json_number_value(bv) <= b[i - 1]))) ||
		    !json_is_number(kv) || json_number_value(kv) < 0) {
			bad(c, "%s.duration: bounds must be ascending numbers, counts numbers >= 0",
			    where);
			return;
		}
		if (i < n)
			b[i] = json_number_value(bv);
		k[i] = json_number_value(kv);
	}
	ex_histogram(c->set, F_PROBE_SECONDS, l, 2, b, k, (int)n, sum);
}

static void check(sc *c, json_t *ck, size_t i) {
	char where[64];
	snprintf(where, sizeof where, "health.Checks[%zu]", i);
	if (!json_is_object(ck)) {
		bad(c, "%s: not an object", where);
		return;
	}
	json_t *name = get(c, ck, where, "Name", JSON_STRING);
	json_t *role = get(c, ck, where, "Role", JSON_STRING);
	json_t *st = get(c, ck, where, "Status", JSON_STRING);
	if (!name) {
		bad(c, "%s: no Name", where);
		return;
	}
	ex_label l[4] = {{"check", json_string_value(name)},
	                 {"role", role ? json_string_value(role) : NULL}};
	if (st) {
		add(c, F_CHECK_HEALTHY, l, 2, !strcmp(json_string_value(st), "healthy"));
		state_set(c, F_CHECK_STATUS, l, 2, json_string_value(st));
	}
	double streak;
	if (num(c, ck, where, "FailingStreak", &streak))
		add(c, F_CHECK_STREAK, l, 2, streak);
	json_t *pr = get(c, ck, where, "Probes", JSON_OBJECT);
	if (pr) {
		char pw[80];
		snprintf(pw, sizeof pw, "%s.Probes", where);
		probes(c, pr, l, pw);
	}
}

static void health(sc *c, json_t *st) {
	json_t *h = get(c, st, "", "health", JSON_OBJECT);
	json_t *s = get(c, h, "health", "Status", JSON_STRING);
	if (s) {
		ex_label x[1];
		add(c, F_HEALTHY, NULL, 0, !strcmp(json_string_value(s), "healthy"));
		state_set(c, F_HEALTH_STATUS, x, 0, json_string_value(s));
	}
	json_t *ready = get(c, h, "health", "Ready", JSON_TRUE);
	if (ready)
		add(c, F_READY, NULL, 0, json_is_true(ready));
	json_t *checks = get(c, h, "health", "Checks", JSON_ARRAY);
	for (size_t i = 0; i < json_array_size(checks); i++) {
		if (i == MX_CHECKS_MAX) {
			bad(c, "health.Checks: more than %d (the rest left out)", MX_CHECKS_MAX);
			break;
		}
		check(c, json_array_get(checks, i), i);
	}
}

static void go_watch(sc *c, json_t *st) {
	json_t *g = get(c, st, "", "go", JSON_OBJECT);
	keyed(c, F_GO_FINDINGS, get(c, g, "go", "findings", JSON_OBJECT), "go.findings", "type");
	json_t *s = get(c, g, "go", "sched", JSON_OBJECT);
	static const struct {
		int fam;
		const char *key;
	} sched[] = {{F_GO_GOMAXPROCS, "gomaxprocs"},   {F_GO_IDLEPROCS, "idleprocs"},
	             {F_GO_THREADS, "threads"},         {F_GO_SPINNING, "spinningthreads"},
	             {F_GO_IDLETHREADS, "idlethreads"}, {F_GO_RUNQUEUE, "runqueue"}};
	for (size_t i = 0; s && i < sizeof sched / sizeof *sched; i++)
		add_num(c, sched[i].fam, s, "go.sched", sched[i].key);
}

static void supervisor(sc *c, json_t *st) {
	json_t *p = get(c, st, "", "policy", JSON_OBJECT);
	keyed(c, F_POLICY_ACTIONS, get(c, p, "policy", "actions", JSON_OBJECT), "policy.actions",
	      "action");
	add_num(c, F_POLICY_STEP, p, "policy", "step");
	json_t *e = get(c, st, "", "errors", JSON_OBJECT);
	keyed(c, F_SCRIPT_ERRORS, get(c, e, "errors", "by_script", JSON_OBJECT), "errors.by_script",
	      "script");
	keyed(c, F_EVENTS, get(c, st, "", "events", JSON_OBJECT), "events", "type");
	json_t *r = get(c, st, "", "runtime", JSON_OBJECT);
	add_num(c, F_SV_GOROUTINES, r, "runtime", "goroutines");
	add_num(c, F_SV_STEALS, r, "runtime", "steals");
	add_num(c, F_SV_PARKS, r, "runtime", "parks");
	add_num(c, F_SV_SWITCHES, r, "runtime", "switches");
	add_num(c, F_SV_THREADS, r, "runtime", "threads");
	add_num(c, F_SV_RSS, r, "runtime", "rss_bytes");
}

/* ─── The cgroup, read now ────────────────────────────────────────────── */

static double limit(int64_t v) {
	return v < 0 ? 0 : (double)v; /* CG_NOLIMIT: 0, as cAdvisor shows "no limit" */
}

static void memory(sc *c, cg *g, json_t *st) {
	cg_err e;
	cg_memory mm;
	if (cg_read_memory(g, &mm, &e) == 0) {
		add(c, F_MEM_USAGE, NULL, 0, (double)mm.current);
		if (mm.peak >= 0)
			add(c, F_MEM_PEAK, NULL, 0, (double)mm.peak);
		add(c, F_MEM_LIMIT, NULL, 0, limit(mm.max));
		add(c, F_MEM_HIGH, NULL, 0, limit(mm.high));
		cg_memory_stat ms;
		if (cg_read_memory_stat(g, &ms, &e) == 0 && ms.inactive_file >= 0) {
			int64_t wss = mm.current - ms.inactive_file;
			add(c, F_MEM_WSS, NULL, 0, wss > 0 ? (double)wss : 0);
		}
	}
	cg_memory_events me;
	if (cg_read_memory_events(g, false, &me, &e))
		return;
	/* v1 has no memory.high counter: the supervisor's watcher counts the
	 * soft-limit crossings as memory.high events */
	json_t *seen = json_object_get(json_object_get(st, "events"), "memory.high");
	if (c->m->host.layout != CG_LAYOUT_V2 && json_is_number(seen) &&
	    json_number_value(seen) > (double)me.high)
		me.high = (int64_t)json_number_value(seen);
	const struct {
		const char *name;
		int64_t v;
	} ev[] = {{"low", me.low},
	          {"high", me.high},
	          {"max", me.max},
	          {"oom", me.oom},
	          {"oom_kill", me.oom_kill}};
	for (size_t i = 0; i < sizeof ev / sizeof *ev; i++)
		add(c, F_MEM_EVENTS, &(ex_label){"event", ev[i].name}, 1, (double)ev[i].v);
	add(c, F_OOM_EVENTS, NULL, 0, (double)me.oom_kill);
}

static void cpu_and_psi(sc *c, cg *g) {
	cg_err e;
	cg_cpu_stat cs;
	if (cg_read_cpu_stat(g, &cs, &e) == 0) {
		add(c, F_CPU_USAGE, NULL, 0, (double)cs.usage_usec / 1e6);
		add(c, F_CPU_PERIODS, NULL, 0, (double)cs.nr_periods);
		add(c, F_CPU_THROTTLED, NULL, 0, (double)cs.nr_throttled);
		add(c, F_CPU_THROTTLED_S, NULL, 0, (double)cs.throttled_usec / 1e6);
	}
	static const int fam[CG_RES_N] = {F_PSI_CPU_SOME, F_PSI_MEM_SOME, F_PSI_IO_SOME};
	for (int r = 0; r < CG_RES_N; r++) {
		cg_pressure p;
		if (cg_read_pressure(g, (cg_resource)r, &p, &e))
			continue;
		if (p.some.present)
			add(c, fam[r], NULL, 0, (double)p.some.total / 1e6);
		if (p.full.present)
			add(c, fam[r] + 1, NULL, 0, (double)p.full.total / 1e6);
	}
}

static void cgroup_series(sc *c, json_t *st) {
	json_t *rel = get(c, st, "", "cgroup", JSON_STRING);
	if (!rel || !c->m->have_host)
		return;
	cg_err e;
	cg *g = cg_open(&c->m->host, json_string_value(rel), false, &e);
	if (!g) {
		if (e.code != -ENOENT)
			bad(c, "cgroup: %s", e.msg);
		return; /* gone with its container: no series */
	}
	memory(c, g, st);
	cpu_and_psi(c, g);
	cg_close(g);
}

/* ─── A scrape ────────────────────────────────────────────────────────── */

static const char *label_of(sc *c, json_t *labels, const char *key) {
	json_t *v = get(c, labels, "labels", key, JSON_STRING);
	return v ? json_string_value(v) : NULL;
}

static void container(const pb_entry *e, void *arg) {
	sc *c = arg;
	if (!e->live)
		return;
	c->e = e;
	json_t *st = e->status, *mode = get(c, st, "", "mode", JSON_STRING);
	json_t *labels = get(c, st, "", "labels", JSON_OBJECT);
	const char *m = mode ? json_string_value(mode) : "run";
	c->live[!strcmp(m, "containerd")]++;
	c->base[0] = (ex_label){"id", e->key};
	c->base[1] = (ex_label){"mode", m};
	c->base[2] = (ex_label){"container", label_of(c, labels, "container")};
	c->base[3] = (ex_label){"pod", label_of(c, labels, "pod")};
	c->base[4] = (ex_label){"namespace", label_of(c, labels, "namespace")};
	ex_scope(c->set, c->base, 5);
	process(c, st);
	health(c, st);
	go_watch(c, st);
	supervisor(c, st);
	cgroup_series(c, st);
	c->e = NULL;
}

/* A status.json that is there but could not be taken (pb_scan_report). */
static void unreadable(const char *key, const char *msg, void *arg) {
	sc *c = arg;
	pb_entry e = {.key = ""};
	snprintf(e.key, sizeof e.key, "%s", key);
	c->e = &e;
	bad(c, "%s", msg);
	c->e = NULL;
}

static double mono(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *mx_scrape(mx *m, ex_format f, size_t *len) {
	double t0 = mono();
	sc c = {.m = m, .set = ex_new(families, F_N, f)};
	if (!c.set)
		return NULL;
	for (int r = 0; r < 2; r++) {
		ms_err err = {0};
		if (m->roots[r] &&
		    pb_scan_report(m->roots[r], r + 1, container, unreadable, &c, &err))
			bad(&c, "%s", err.msg);
	}
	ex_scope(c.set, NULL, 0);
	static const char *const modes[2] = {"run", "containerd"};
	for (int r = 0; r < 2; r++)
		ex_add(c.set, F_CONTAINERS, &(ex_label){"mode", modes[r]}, 1, c.live[r]);
	pthread_mutex_lock(&m->mu);
	double errors = m->status_errors;
	pthread_mutex_unlock(&m->mu);
	ex_add(c.set, F_STATUS_ERRORS, NULL, 0, errors);
	ex_add(c.set, F_SCRAPE_SECONDS, NULL, 0, mono() - t0);
	char *out = ex_render(c.set, len);
	ex_free(c.set);
	return out;
}
