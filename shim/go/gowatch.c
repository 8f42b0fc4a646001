/*
 * gowatch.c — options, GODEBUG, the stderr line hook and the pprof scraper
 * around one detector. The detector is fed from two goroutines (the tap's
 * reader and the scraper), so it is used under the watcher's lock; the
 * lock is never held across a scrape.
 */
#define _GNU_SOURCE
#include "gowatch.h"

#include "goparse.h"
#include "io.h"
#include "base.h"
#include "rt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAPE_TIMEOUT_NS  (2 * 1000000000LL)
#define SCRAPE_MAX_BODY    (16u << 20) /* a debug=2 dump of 10k goroutines fits */
#define PROFILE_MAX_STACKS 20000
#define DEBUG2_EVERY       4  /* rounds between debug=2 scrapes (when allowed) */
#define EVENTS_MAX         16 /* findings per sample */
#define DEFAULT_INTERVAL_S 3.0
#define DEFAULT_DEBUG2_MAX 1000
#define DEFAULT_TAP_BUFFER (1 << 20) /* as Docker's max-buffer-size */

struct gw {
	bool self; /* the shim's own runtime, not the workload */
	gw_opts o;
	gw_target t;
	gd_detector *d;
	gd_config cfg; /* what d was made with, for a fresh one after a restart */
	bool has_cfg;
	rt_mutex mu;
	rt_chan *done; /* closed by gw_stop */
	rt_waitgroup wg;
	uint64_t sched_lines, sched_torn, gc_lines, scrapes, scrape_errors;
	int64_t last_total; /* goroutines at the last scrape */
	bool leak_profile;  /* the program serves /debug/pprof/goroutineleak */
	bool leak_probed;   /* ... asked once, after the first profile the program served */
	/* Scrapes reuse one connection (keep-alive): a fresh one costs a
	 * thread start inside the target's network namespace and a connect,
	 * each a wait for the CPU on a busy node. Only the scraper touches
	 * pool; target_gen (under mu) tells it the target moved, so a
	 * connection into the old namespace is never reused. */
	nc_pool *pool;
	unsigned pool_gen, target_gen;
	bool has_sched; /* last_sched holds a sample */
	struct {
		int64_t ms, runqueue;
		int gomaxprocs, idleprocs, threads, spinning, idle;
	} last_sched;          /* the last intact SCHED line (the publisher's "go.sched") */
	char last_error[1200]; /* an ms_err message and a URL */
};

/* ─── options ───────────────────────────────────────────────────────── */

void gw_opts_init(gw_opts *o) {
	*o = (gw_opts){.interval_s = DEFAULT_INTERVAL_S,
	               .debug2_max = DEFAULT_DEBUG2_MAX,
	               .stderr_mode = TAP_LOSSLESS,
	               .stderr_buffer = DEFAULT_TAP_BUFFER};
}

int gw_parse_one(const char *key, const char *value, gw_opts *o, ms_err *err) {
	char *end = NULL;
	if (!strcmp(key, "schedtrace")) {
		long ms = value ? strtol(value, &end, 10) : 0;
		if (!value || *end || ms < 1 || ms > 3600000)
			return ms_fail(err, -EINVAL, "--go-watch schedtrace=MS: 1 to 3600000 ms");
		o->schedtrace_ms = (int)ms;
	} else if (!strcmp(key, "gctrace")) {
		o->gctrace = !value || !strcmp(value, "1") || !strcmp(value, "true");
	} else if (!strcmp(key, "maxprocs")) {
		o->maxprocs = !value || !strcmp(value, "1") || !strcmp(value, "true");
	} else if (!strcmp(key, "pprof")) {
		if (!value || strncmp(value, "http://", 7) || strlen(value) >= sizeof o->pprof)
			return ms_fail(err, -EINVAL,
			               "--go-watch pprof=URL: an http:// URL of the program's "
			               "net/http/pprof (e.g. http://127.0.0.1:6060)");
		snprintf(o->pprof, sizeof o->pprof, "%s", value);
		char *p = strstr(o->pprof, "/debug/pprof"); /* the base, whatever was given */
		if (p)
			*p = 0;
		size_t n = strlen(o->pprof);
		while (n > 7 && o->pprof[n - 1] == '/')
			o->pprof[--n] = 0;
	} else if (!strcmp(key, "interval")) {
		double s = value ? strtod(value, &end) : 0;
		if (!value || *end || !(s >= 0.1 && s <= 3600))
			return ms_fail(err, -EINVAL, "--go-watch interval=S: 0.1 to 3600 seconds");
		o->interval_s = s;
	} else if (!strcmp(key, "debug2")) {
		long n = value ? strtol(value, &end, 10) : -1;
		if (!value || *end || n < 0)
			return ms_fail(err, -EINVAL,
			               "--go-watch debug2=N: a goroutine count, 0: never");
		o->debug2_max = (int)n;
	} else if (!strcmp(key, "stderr")) {
		if (value && !strcmp(value, "blocking"))
			o->stderr_mode = TAP_LOSSLESS;
		else if (value && !strcmp(value, "non-blocking"))
			o->stderr_mode = TAP_DROP;
		else
			return ms_fail(err, -EINVAL,
			               "--go-watch stderr=MODE: blocking (nothing lost, the "
			               "default) or non-blocking (drop what the sink cannot take)");
	} else if (!strcmp(key, "stderr-buffer")) {
		if (lf_parse_size(value, &o->stderr_buffer))
			return ms_fail(err, -EINVAL,
			               "--go-watch stderr-buffer=SIZE: bytes, e.g. 4m or 512k");
	} else {
		return ms_fail(err, -EINVAL,
		               "--go-watch: unknown option \"%s\" (schedtrace=MS, gctrace, "
		               "pprof=URL, interval=S, debug2=N, maxprocs, stderr=MODE, "
		               "stderr-buffer=SIZE)",
		               key);
	}
	return 0;
}

int gw_parse(const char *text, gw_opts *o, ms_err *err) {
	char buf[1024];
	if (strlen(text) >= sizeof buf)
		return ms_fail(err, -EINVAL, "--go-watch: too long");
	snprintf(buf, sizeof buf, "%s", text);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		/* a URL may hold '=' and ','-free text only; the key is up to '=' */
		char *eq = strchr(tok, '=');
		if (eq)
			*eq = 0;
		if (gw_parse_one(tok, eq ? eq + 1 : NULL, o, err))
			return err->code;
	}
	if (!o->schedtrace_ms && !o->gctrace && !o->pprof[0])
		return ms_fail(err, -EINVAL,
		               "--go-watch: nothing to watch (schedtrace=MS, gctrace, "
		               "pprof=URL)");
	return 0;
}

/* ─── environment ───────────────────────────────────────────────────── */

static int env_find(char **env, const char *name) {
	size_t n = strlen(name);
	for (int i = 0; env && env[i]; i++)
		if (!strncmp(env[i], name, n) && env[i][n] == '=')
			return i;
	return -1;
}

char **gw_env(char **env, const gw_opts *o, double quota_cores) {
	int n = 0;
	while (env && env[n])
		n++;
	char **out = realloc(env, (size_t)(n + 3) * sizeof *out);
	if (!out)
		return NULL;
	char add[96] = "";
	if (o->schedtrace_ms)
		snprintf(add, sizeof add, "schedtrace=%d", o->schedtrace_ms);
	if (o->gctrace)
		snprintf(add + strlen(add), sizeof add - strlen(add), "%sgctrace=1",
		         add[0] ? "," : "");
	if (add[0]) { /* appended: later keys win, the workload's own others stay */
		int i = env_find(out, "GODEBUG");
		char *v = NULL;
		if (i >= 0 && asprintf(&v, "%s%s%s", out[i], out[i][8] ? "," : "", add) >= 0) {
			free(out[i]);
			out[i] = v;
		} else if (i < 0 && asprintf(&v, "GODEBUG=%s", add) >= 0) {
			out[n++] = v;
		}
	}
	if (o->maxprocs && quota_cores > 0 && env_find(out, "GOMAXPROCS") < 0) {
		char *v = NULL;
		int procs = (int)ceil(quota_cores);
		if (asprintf(&v, "GOMAXPROCS=%d", procs < 1 ? 1 : procs) >= 0)
			out[n++] = v;
	}
	out[n] = NULL;
	return out;
}

/* ─── findings ──────────────────────────────────────────────────────── */

/* under g->mu */
static void keep_sched(gw *g, const gp_sched *s) {
	g->has_sched = true;
	g->last_sched.ms = s->ms;
	g->last_sched.runqueue = s->runqueue;
	g->last_sched.gomaxprocs = s->gomaxprocs;
	g->last_sched.idleprocs = s->idleprocs;
	g->last_sched.threads = s->threads;
	g->last_sched.spinning = s->spinningthreads;
	g->last_sched.idle = s->idlethreads;
}

json_t *gw_json(gw *g) {
	if (!g || g->self)
		return NULL;
	rt_mutex_lock(&g->mu);
	json_t *j =
	    json_pack("{s:I, s:I, s:I}", "sched_lines", (json_int_t)g->sched_lines, "scrapes",
	              (json_int_t)g->scrapes, "goroutines", (json_int_t)g->last_total);
	if (j && g->has_sched)
		json_object_set_new(
		    j, "sched",
		    json_pack("{s:I, s:i, s:i, s:i, s:i, s:i, s:I}", "uptime_ms",
		              (json_int_t)g->last_sched.ms, "gomaxprocs", g->last_sched.gomaxprocs,
		              "idleprocs", g->last_sched.idleprocs, "threads",
		              g->last_sched.threads, "spinningthreads", g->last_sched.spinning,
		              "idlethreads", g->last_sched.idle, "runqueue",
		              (json_int_t)g->last_sched.runqueue));
	rt_mutex_unlock(&g->mu);
	return j;
}

/* A finding as event fields (for gowatch and for the shim's own runtime). */
static json_t *gw_event_fields(const gd_event *e) {
	json_t *f =
	    json_pack("{s:s, s:I, s:f, s:f, s:s}", "kind", e->kind, "count", (json_int_t)e->count,
	              "value", e->value, "threshold", e->threshold, "detail", e->detail);
	if (e->site[0])
		json_object_set_new(f, "site", json_string(e->site));
	if (e->function[0])
		json_object_set_new(f, "function", json_string(e->function));
	if (e->wait[0])
		json_object_set_new(f, "wait", json_string(e->wait));
	if (e->stage[0])
		json_object_set_new(f, "stage", json_string(e->stage));
	if (!strcmp(e->type, "go.goroutine_leak"))
		json_object_set_new(f, "slope_per_min", json_real(e->slope_per_min));
	return f;
}

/* Under g->mu. */
static void report(gw *g, const gd_event *ev, int n) {
	for (int i = 0; i < n; i++) {
		if (!g->t.emit)
			continue;
		json_t *f = gw_event_fields(&ev[i]);
		json_object_set_new(f, "subject", json_string(g->self ? "moonshim" : "workload"));
		g->t.emit(g->t.emit_arg, ev[i].type, f);
	}
}

/* ─── stderr lines ──────────────────────────────────────────────────── */

const char *const gw_markers[] = {"SCHED ", "\ngc ", NULL};

void gw_line(void *arg, const char *text, size_t len) {
	gw *g = arg;
	if (!g || len < 3)
		return;
	gd_event ev[EVENTS_MAX];
	if (!memcmp(text, "gc ", 3)) {
		gp_gc gc;
		if (!gp_parse_gc(text, len, &gc))
			return;
		cg_memory m = {.current = -1, .max = -1};
		cg_err e = {0};
		bool unread = g->t.cgroup && cg_read_memory(g->t.cgroup, &m, &e);
		int64_t limit = m.max > 0 && m.max != CG_NOLIMIT ? m.max : m.high;
		if (limit == CG_NOLIMIT)
			limit = 0;
		rt_mutex_lock(&g->mu);
		if (unread && !g->last_error[0]) /* no gc_thrash without it: go.watch says why */
			snprintf(g->last_error, sizeof g->last_error, "gc_thrash: memory: %s",
			         e.msg);
		g->gc_lines++;
		report(g, ev, gd_feed_gc(g->d, rt_now(), &gc, m.current, limit, ev, EVENTS_MAX));
		rt_mutex_unlock(&g->mu);
		return;
	}
	/* "SCHED " anywhere (a torn line has it after a fragment): memchr for
	 * the 'S' is a vector scan, memmem's set-up costs more than the line */
	const char *p = text, *end = text + len;
	while ((p = memchr(p, 'S', (size_t)(end - p))) && end - p >= 6 && memcmp(p, "SCHED ", 6))
		p++;
	if (!p || end - p < 6)
		return;
	gp_sched *s = malloc(sizeof *s); /* two per-P arrays: too big for a goroutine stack */
	if (!s)
		return;
	gp_sched_kind k = gp_parse_sched(text, len, s);
	rt_mutex_lock(&g->mu);
	if (k == GP_SCHED_OK) {
		g->sched_lines++;
		keep_sched(g, s);
		report(g, ev, gd_feed_sched(g->d, rt_now(), s, g->t.cpu_quota, ev, EVENTS_MAX));
	} else if (k == GP_SCHED_TORN) {
		g->sched_torn++;
	}
	rt_mutex_unlock(&g->mu);
	free(s);
}

/* ─── the scraper ───────────────────────────────────────────────────── */

/* GET base+path into *r; 0 or -errno (g->last_error says why). */
static int get(gw *g, const char *path, http_response *r) {
	char url[512];
	snprintf(url, sizeof url, "%s%s", g->o.pprof, path);
	rt_mutex_lock(&g->mu); /* gw_retarget may swap it */
	int netns = g->t.netns_fd;
	unsigned gen = g->target_gen;
	rt_mutex_unlock(&g->mu);
	if (!g->pool || g->pool_gen != gen) {
		nc_pool_free(g->pool);
		g->pool = nc_pool_new(1, 1); /* NULL (ENOMEM): a connection per scrape */
		g->pool_gen = gen;
	}
	http_request q = {.url = url,
	                  .timeout_ns = SCRAPE_TIMEOUT_NS,
	                  .max_body = SCRAPE_MAX_BODY,
	                  .netns_fd = netns,
	                  .pool = g->pool};
	ms_err err = {0};
	int rc = http_do(&q, r, &err);
	if (rc)
		snprintf(g->last_error, sizeof g->last_error, "%s", err.msg);
	else if (r->status != 200) {
		snprintf(g->last_error, sizeof g->last_error, "GET %s: status %d", url, r->status);
		http_response_free(r);
		rc = -EPROTO;
	}
	return rc;
}

/* true if the program answered with a profile */
static bool scrape_once(gw *g, uint64_t round, bool leak) {
	bool debug2 = !leak && g->o.debug2_max > 0 && round % DEBUG2_EVERY == DEBUG2_EVERY - 1 &&
	              g->last_total > 0 && g->last_total < g->o.debug2_max;
	const char *path = leak     ? "/debug/pprof/goroutineleak?debug=1"
	                   : debug2 ? "/debug/pprof/goroutine?debug=2"
	                            : "/debug/pprof/goroutine?debug=1";
	http_response r = {0};
	if (get(g, path, &r)) {
		rt_mutex_lock(&g->mu);
		g->scrape_errors++;
		rt_mutex_unlock(&g->mu);
		return false;
	}
	gp_profile p = {0};
	char msg[160] = "";
	int rc = gp_parse_profile(r.body, r.body_len, PROFILE_MAX_STACKS, &p, msg, sizeof msg);
	if (!rc && r.truncated)
		p.truncated = true;
	size_t body_len = r.body_len;
	http_response_free(&r);
	gd_event ev[EVENTS_MAX];
	rt_mutex_lock(&g->mu);
	g->scrapes++;
	if (rc) {
		g->scrape_errors++;
		snprintf(g->last_error, sizeof g->last_error, "%s: %s", path, msg);
	} else {
		if (!leak && p.debug == 1)
			g->last_total = p.total;
		report(g, ev, gd_feed_profile(g->d, rt_now(), &p, leak, ev, EVENTS_MAX));
	}
	rt_mutex_unlock(&g->mu);
	gp_profile_free(&p);
	mem_trim_after(body_len); /* a big profile's buffers must not stay resident */
	return rc == 0;
}

/* Does the program serve the GC-based leak profile (Go >= 1.27, or 1.26
 * with the experiment)? Asked once its pprof server has answered: asked
 * before, at our start, the program may not be listening yet and the
 * answer would be "no" for good. */
static void probe_leak_profile(gw *g) {
	http_response r = {0};
	char keep[sizeof g->last_error];
	snprintf(keep, sizeof keep, "%s", g->last_error);
	bool served = !get(g, "/debug/pprof/goroutineleak?debug=1", &r);
	if (served)
		http_response_free(&r);
	rt_mutex_lock(&g->mu);
	g->leak_profile = served;
	snprintf(g->last_error, sizeof g->last_error, "%s", keep); /* a 404 is no error */
	rt_mutex_unlock(&g->mu);
}

static void scraper(void *arg) {
	gw *g = arg;
	int64_t every = (int64_t)(g->o.interval_s * 1e9);
	for (uint64_t round = 0;; round++) {
		rt_case c = {.c = g->done, .dir = RT_RECV};
		if (rt_select(&c, 1, rt_deadline_in(round ? every : every / 3)) == 0)
			break;
		bool served = scrape_once(g, round, false);
		/* the GC-based leak profile has no false positives: used when
		 * served, as well as the goroutine profile (the trend, the sites) */
		rt_mutex_lock(&g->mu); /* gw_retarget re-arms the probe */
		bool probe = served && !g->leak_probed;
		g->leak_probed |= probe;
		rt_mutex_unlock(&g->mu);
		if (probe)
			probe_leak_profile(g);
		rt_mutex_lock(&g->mu);
		bool leak = g->leak_profile;
		rt_mutex_unlock(&g->mu);
		if (leak)
			scrape_once(g, round, true);
	}
	rt_wg_done(&g->wg);
}

/* ─── the shim's own runtime ────────────────────────────────────────── */

#define SELF_MAX_GOROUTINES 4096 /* more: the profile is marked cut (no vanished sites) */
#define SELF_MAX_SITES      256

/* Our goroutines as a profile the site detector reads: one record per
 * (rt_go call site, label, state) with its count and longest wait. A C
 * goroutine has no Go stack to key on; the rt_go that made it is its site,
 * its label its function, and the runtime names its waits as Go does. */
typedef struct self_prof {
	rt_ginfo g[SELF_MAX_GOROUTINES];
	const char *where[SELF_MAX_SITES]; /* rt_go's static "file:line" string */
	gp_stack st[SELF_MAX_SITES];
	gp_frame fr[SELF_MAX_SITES];
	char file[SELF_MAX_SITES][160];
	gp_profile p;
} self_prof;

static void self_profile(self_prof *sp) {
	int live = rt_goroutine_info(sp->g, SELF_MAX_GOROUTINES);
	int n = live < SELF_MAX_GOROUTINES ? live : SELF_MAX_GOROUTINES, k = 0;
	bool cut = live > n;
	for (int i = 0; i < n; i++) {
		const rt_ginfo *gi = &sp->g[i];
		int j = 0;
		while (j < k && !(sp->where[j] == gi->where && sp->fr[j].func == gi->label &&
		                  !strcmp(sp->st[j].state, gi->state)))
			j++;
		if (j == k) {
			if (k == SELF_MAX_SITES) {
				cut = true;
				continue;
			}
			size_t flen = strcspn(gi->where, ":");
			snprintf(sp->file[k], sizeof sp->file[k], "%.*s", (int)flen, gi->where);
			sp->where[k] = gi->where;
			sp->fr[k] =
			    (gp_frame){.func = (char *)gi->label,
			               .file = sp->file[k],
			               .line = gi->where[flen] ? atoi(gi->where + flen + 1) : 0};
			sp->st[k] = (gp_stack){.frames = &sp->fr[k], .nframes = 1};
			snprintf(sp->st[k].state, sizeof sp->st[k].state, "%s", gi->state);
			k++;
		}
		sp->st[j].count++;
		int minutes = (int)(gi->wait_ns / (60 * 1000000000LL));
		if (minutes > sp->st[j].wait_minutes)
			sp->st[j].wait_minutes = minutes;
	}
	sp->p = (gp_profile){
	    .debug = 1, .total = live, .stacks = sp->st, .nstacks = k, .truncated = cut};
}

/* The same detectors on moonshim's own scheduler: its SCHED line (the
 * runtime formats Go's) and its goroutines by site, every interval. */
static void self_sampler(void *arg) {
	gw *g = arg;
	int64_t every = (int64_t)(g->o.interval_s * 1e9);
	gp_sched *s = malloc(sizeof *s);
	self_prof *sp = malloc(sizeof *sp);
	char line[2048];
	gd_event ev[EVENTS_MAX];
	for (;;) {
		rt_case c = {.c = g->done, .dir = RT_RECV};
		if (!s || !sp || rt_select(&c, 1, rt_deadline_in(every)) == 0)
			break;
		rt_sched_sample smp;
		rt_sched_sample_get(&smp);
		int n = rt_sched_format(&smp, line, sizeof line);
		self_profile(sp);
		int64_t now = rt_now();
		rt_mutex_lock(&g->mu);
		if (n > 0 && (size_t)n < sizeof line &&
		    gp_parse_sched(line, (size_t)n, s) == GP_SCHED_OK) {
			g->sched_lines++;
			keep_sched(g, s);
			report(g, ev, gd_feed_sched(g->d, now, s, 0, ev, EVENTS_MAX));
		}
		report(g, ev, gd_feed_profile(g->d, now, &sp->p, false, ev, EVENTS_MAX));
		rt_mutex_unlock(&g->mu);
	}
	free(sp);
	free(s);
	rt_wg_done(&g->wg);
}

static gw *gw_new(const gw_opts *o, const gw_target *t, const gd_config *c) {
	gw *g = calloc(1, sizeof *g);
	if (!g || !(g->d = gd_new(c)) || !(g->done = rt_chan_new(1, 0))) {
		if (g)
			gd_free(g->d);
		free(g);
		return NULL;
	}
	g->o = *o;
	g->t = *t;
	if (c) {
		g->cfg = *c;
		g->has_cfg = true;
	}
	g->mu = (rt_mutex)RT_MUTEX_INIT;
	g->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	return g;
}

gw *gw_watch_self(double interval_s, const gw_target *t, const gd_config *c) {
	gw_opts o;
	gw_opts_init(&o);
	o.interval_s = interval_s > 0 ? interval_s : DEFAULT_INTERVAL_S;
	gw *g = gw_new(&o, t, c);
	if (!g)
		return NULL;
	g->self = true;
	rt_wg_add(&g->wg, 1);
	rt_go(self_sampler, g, "go watch: self");
	return g;
}

gw *gw_start(const gw_opts *o, const gw_target *t, const gd_config *c) {
	gw *g = gw_new(o, t, c);
	if (!g)
		return NULL;
	if (g->o.pprof[0]) {
		rt_wg_add(&g->wg, 1);
		rt_go(scraper, g, "go pprof scraper");
	}
	return g;
}

void gw_retarget(gw *g, int netns_fd) {
	if (!g)
		return;
	gd_detector *fresh = gd_new(g->has_cfg ? &g->cfg : NULL);
	rt_mutex_lock(&g->mu);
	g->t.netns_fd = netns_fd;
	g->target_gen++;
	if (fresh) { /* else (ENOMEM) the old history goes on: no worse than before */
		gd_detector *old = g->d;
		g->d = fresh;
		fresh = old;
	}
	g->last_total = 0;
	g->leak_probed = false; /* the new program may be another build */
	g->leak_profile = false;
	rt_mutex_unlock(&g->mu);
	gd_free(fresh);
}

void gw_stop(gw *g) {
	if (!g)
		return;
	rt_chan_close(g->done);
	rt_wg_wait(&g->wg);
	nc_pool_free(g->pool);
	if (g->t.emit) {
		json_t *f = json_pack("{s:I, s:I, s:I, s:I, s:I}", "sched_lines",
		                      (json_int_t)g->sched_lines, "sched_torn",
		                      (json_int_t)g->sched_torn, "gc_lines",
		                      (json_int_t)g->gc_lines, "scrapes", (json_int_t)g->scrapes,
		                      "scrape_errors", (json_int_t)g->scrape_errors);
		if (g->last_error[0])
			json_object_set_new(f, "last_error", json_string(g->last_error));
		json_object_set_new(f, "subject", json_string(g->self ? "moonshim" : "workload"));
		g->t.emit(g->t.emit_arg, "go.watch", f);
	}
	rt_chan_free(g->done);
	gd_free(g->d);
	free(g);
}
