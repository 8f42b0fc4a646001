/* godetect.c — goroutine leaks, scheduler anomalies and GC thrash of a Go
 * program, judged from samples over time. Methods and thresholds:
 * docs/go-watch.md §2 (Mann-Kendall + Theil-Sen on the goroutine count,
 * LeakProf-style growth per blocking site), §3.2–3.3 (patterns of SCHED
 * lines) and §4 (GC thrash).
 *
 * Every condition is edge-triggered: an event when it starts, none while it
 * holds, re-armed when it clears (a leak site also fires again when its
 * count doubles). Sample sequences are bounded rings; nothing here reads a
 * clock or does I/O. */
#define _GNU_SOURCE
#include "godetect.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MIN     60e9
#define TREND_CAP      512   /* trend_window is clamped to this */
#define LOAD_CAP       512   /* SCHED load samples kept (to tell leaks from load) */
#define SITE_HIST      32    /* counts kept per site (site_min_samples is clamped to this) */
#define SITES_MAX      512   /* sites tracked; the smallest is forgotten for a new one */
#define SCHED_START_MS 10000 /* a first sample this early is near the process start */
#define THREAD_CAP     64    /* thread counts kept (thread_growth_samples is clamped to this) */
#define GC_CAP         512   /* gctrace lines kept inside gc_window_s */
/* A leak grows all along: each half of the trend window must rise too, at
 * this looser level (a step up to a new flat level rises in one half only). */
#define HALF_ALPHA 0.10
#define SERIES_CAP (TREND_CAP > LOAD_CAP ? TREND_CAP : LOAD_CAP)
/* Go >= 1.25 derives GOMAXPROCS from the cgroup limit rounded up, but never
 * below 2 (golang/go#73193): 2 Ps on a 1-core quota is the runtime's own
 * choice, not a misconfiguration. */
#define QUOTA_MIN_PROCS 2
/* §3.3 thread growth: alert only at >= 4*gomaxprocs + slack threads. */
#define THREADS_PER_PROC 4

typedef struct sample {
	int64_t t_ns;
	double v;
} sample;

typedef struct site_state {
	gp_site info;
	bool leakprof; /* from a goroutineleak profile: a leak by construction */
	sample hist[SITE_HIST];
	int n;
	int64_t reported; /* count at the last confirmed event; 0: armed */
	bool suspected;   /* the "suspected" event was sent */
	int max_minutes;  /* debug=2: the longest ", N minutes" at the last sample */
} site_state;

typedef struct gc_sample {
	double at_s;
	int64_t n, mem;
} gc_sample;

struct gd_detector {
	gd_config c;
	/* go.goroutine_leak, trend */
	sample trend[TREND_CAP];
	int trend_n, trend_streak;
	bool trend_suspected, trend_confirmed;
	sample load[LOAD_CAP]; /* busy Ps + queued goroutines, from SCHED */
	int load_n;
	/* go.goroutine_leak, sites */
	site_state *sites;
	int nsites;
	/* go.sched_anomaly */
	bool have_ms;
	int64_t last_ms;
	int idle_streak, imb_streak, sat_streak;
	bool idle_fired, imb_fired, sat_fired, thr_fired, quota_fired;
	int threads[THREAD_CAP];
	int threads_n;
	/* go.gc_thrash */
	gc_sample gc[GC_CAP];
	int gc_n;
	bool gc_fired;
};

/* ─── configuration ─────────────────────────────────────────────────── */

void gd_config_default(gd_config *c) {
	*c = (gd_config){
	    /* §2.1: the normal approximation of Mann-Kendall is used from n >= 10 */
	    .trend_min_samples = 10,
	    /* §2.1: significant at p < 0.01 */
	    .trend_alpha = 0.01,
	    /* §2.1: a floor of 1 goroutine/min */
	    .trend_min_slope = 1.0,
	    /* §2.1: a sliding window of 60 samples; a long one, fewer false trends */
	    .trend_window = 60,
	    /* §2.1: rising for 3 samples in a row */
	    .trend_persist = 3,
	    /* §2.2: LeakProf used ~10K in production, across a fleet; one
	     * container's shim sees a leak of a few per second only as hundreds
	     * within its first minute (the issue: detected within 60 s), so the
	     * floor is lower and the growth test stricter: 100 blocked, and */
	    .site_min_count = 100,
	    /* §2.2: never falling over 5 profiles and ending higher: at
	     * a 2-3 s interval that spans 10-15 s, longer than a burst that
	     * drains or the rising half of a load cycle */
	    .site_min_samples = 5,
	    /* the trend floor, per site */
	    .site_min_slope = 1.0,
	    /* §2.4: a warm-up (a pool growing to its size, a cache filling)
	     * lasts tens of seconds; a leak grows on. 45 s of growth, still
	     * rising over its newest 8 s at half its slope, tells a ramp of up
	     * to ~41 s from a leak and still names a leak within a minute */
	    .confirm_s = 45,
	    /* at the 2-3 s scrape interval, 45 s is 15-22 samples; a scraper
	     * starved on a busy node must not confirm from a handful */
	    .confirm_samples = 10,
	    .plateau_s = 8,
	    .plateau_ratio = 0.5,
	    /* §1.4: minutes count from the first GC that saw the goroutine
	     * blocked (forced GCs every 2 min in an idle program): 2 minutes is
	     * the first value that surely means "blocked across GCs" */
	    .persistent_minutes = 2,
	    /* §3.3 work conservation: 3 samples in a row (one is racy) */
	    .idle_with_work_samples = 3,
	    /* §3.3: 128 is the overflow batch (half a 256-slot local queue) */
	    .imbalance_depth = 128,
	    .imbalance_samples = 3,
	    /* §3.3 saturation: 30 s at the 1 s schedtrace interval */
	    .saturation_samples = 30,
	    /* a non-empty global queue; the backlog must also pass 2·gomaxprocs (§3.2) */
	    .saturation_runqueue = 1,
	    /* §3.3 thread growth: rising over 5 samples ... */
	    .thread_growth_samples = 5,
	    /* ... and the "+50" of its 4·gomaxprocs+50 alert level */
	    .thread_growth_min = 50,
	    /* GOMAXPROCS above the quota itself (§3.2: Ps not getting OS CPU) */
	    .quota_margin = 1.0,
	    /* §4, ours: a heap that doubles under GOGC=100 is
	     * collected a few times a second at most; near a memory limit the
	     * runtime collects back to back */
	    .gc_per_s = 5.0,
	    .gc_mem_level = 0.9, /* within 10% of memory.max */
	    .gc_window_s = 10.0, /* seconds of gctrace lines the rate is taken over */
	};
}

static void config_fill(gd_config *c) {
	gd_config d;
	gd_config_default(&d);
	if (c->trend_min_samples < 3)
		c->trend_min_samples = d.trend_min_samples;
	if (c->trend_window < c->trend_min_samples)
		c->trend_window = c->trend_min_samples;
	if (c->trend_window > TREND_CAP)
		c->trend_window = TREND_CAP;
	if (c->trend_min_samples > c->trend_window)
		c->trend_min_samples = c->trend_window;
	if (c->trend_persist < 1)
		c->trend_persist = 1;
	if (c->site_min_samples < 2)
		c->site_min_samples = 2;
	if (c->site_min_samples > SITE_HIST)
		c->site_min_samples = SITE_HIST;
	if (c->thread_growth_samples < 2)
		c->thread_growth_samples = 2;
	if (c->thread_growth_samples > THREAD_CAP)
		c->thread_growth_samples = THREAD_CAP;
	if (c->gc_window_s <= 0)
		c->gc_window_s = d.gc_window_s;
	if (c->quota_margin <= 0)
		c->quota_margin = d.quota_margin;
	if (c->confirm_samples < 2)
		c->confirm_samples = 2;
	if (c->plateau_s <= 0)
		c->plateau_s = d.plateau_s;
}

gd_detector *gd_new(const gd_config *c) {
	gd_detector *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	if (c)
		d->c = *c;
	else
		gd_config_default(&d->c);
	config_fill(&d->c);
	return d;
}

void gd_free(gd_detector *d) {
	if (!d)
		return;
	free(d->sites);
	free(d);
}

/* ─── statistics ────────────────────────────────────────────────────── */

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Z = (S ∓ 1)/sqrt(Var S), Var S = [n(n-1)(2n+5) - Σ t(t-1)(2t+5)]/18 over
 * groups of t tied values; 0 when there is no trend to speak of. */
double gd_mann_kendall_z(const double *y, int n) {
	if (n < 3)
		return 0;
	double s = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			s += (y[j] > y[i]) - (y[j] < y[i]);
	double *sorted = malloc((size_t)n * sizeof *sorted);
	if (!sorted)
		return 0;
	memcpy(sorted, y, (size_t)n * sizeof *sorted);
	qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
	double ties = 0;
	for (int i = 0; i < n;) {
		int k = i;
		while (k < n && sorted[k] == sorted[i])
			k++;
		double t = k - i;
		ties += t * (t - 1) * (2 * t + 5);
		i = k;
	}
	free(sorted);
	double var = ((double)n * (n - 1) * (2.0 * n + 5) - ties) / 18;
	if (var <= 0 || s == 0)
		return 0;
	return (s > 0 ? s - 1 : s + 1) / sqrt(var);
}

double gd_p_value(double z) {
	return erfc(fabs(z) / sqrt(2));
}

/* The median of the pairwise slopes (y_j - y_i)/(t_j - t_i); NAN when no
 * two samples have different times. */
double gd_theil_sen(const double *t, const double *y, int n) {
	if (n < 2)
		return NAN;
	double *sl = malloc((size_t)n * (size_t)(n - 1) / 2 * sizeof *sl);
	if (!sl)
		return NAN;
	size_t k = 0;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (t[j] != t[i])
				sl[k++] = (y[j] - y[i]) / (t[j] - t[i]);
	double m = NAN;
	if (k) {
		qsort(sl, k, sizeof *sl, cmp_double);
		m = k % 2 ? sl[k / 2] : (sl[k / 2 - 1] + sl[k / 2]) / 2;
	}
	free(sl);
	return m;
}

typedef struct trend {
	double z, p, slope_per_min;
} trend;

/* Mann-Kendall and Theil-Sen (per minute) of a sample sequence. */
static trend trend_of(const sample *s, int n) {
	trend r = {0, 1, 0};
	double t[SERIES_CAP], y[SERIES_CAP];
	for (int i = 0; i < n; i++) {
		t[i] = (double)(s[i].t_ns - s[0].t_ns) / NS_PER_MIN;
		y[i] = s[i].v;
	}
	r.z = gd_mann_kendall_z(y, n);
	r.p = gd_p_value(r.z);
	r.slope_per_min = gd_theil_sen(t, y, n);
	if (isnan(r.slope_per_min))
		r.slope_per_min = 0;
	return r;
}

static void push(sample *ring, int *n, int cap, int64_t t_ns, double v) {
	if (*n == cap) {
		memmove(ring, ring + 1, (size_t)(cap - 1) * sizeof *ring);
		(*n)--;
	}
	ring[(*n)++] = (sample){t_ns, v};
}

/* A leak goes on growing; a warm-up stops (§2.4). The growth is taken
 * from the last time the series was at its lowest: it must span
 * confirm_s seconds and confirm_samples samples, and its newest
 * plateau_s seconds (or the time the growth's slope takes to add
 * PLATEAU_RISE goroutines, for a slow leak; at most half the growth) must
 * still rise at plateau_ratio of its Theil-Sen slope or more. Wall time
 * and samples both: a starved scraper samples less, not faster. */
#define PLATEAU_RISE 3.0
static bool growth_confirmed(const gd_config *c, const sample *h, int n) {
	int lo = 0;
	for (int i = 1; i < n; i++)
		if (h[i].v <= h[lo].v)
			lo = i;
	double age_s = (double)(h[n - 1].t_ns - h[lo].t_ns) / 1e9;
	if (n - lo < c->confirm_samples || age_s < c->confirm_s)
		return false;
	trend g = trend_of(&h[lo], n - lo);
	if (g.slope_per_min <= 0)
		return false;
	double w = PLATEAU_RISE * 60 / g.slope_per_min;
	w = w > c->plateau_s ? w : c->plateau_s;
	w = w < age_s / 2 ? w : age_s / 2;
	int j = n - 1;
	while (j > lo && (double)(h[n - 1].t_ns - h[j].t_ns) / 1e9 < w)
		j--;
	if (n - j < 2)
		return false;
	trend r = trend_of(&h[j], n - j);
	return h[n - 1].v > h[j].v && r.slope_per_min >= c->plateau_ratio * g.slope_per_min;
}

/* ─── events ────────────────────────────────────────────────────────── */

typedef struct evbuf {
	gd_event *out;
	int max, n;
} evbuf;

/* A new event, or NULL when out is full (the caller then stays armed, so
 * the condition is reported on a later sample instead of being lost). */
static gd_event *ev_new(evbuf *b, const char *type, const char *kind) {
	if (b->n >= b->max)
		return NULL;
	gd_event *e = &b->out[b->n++];
	memset(e, 0, sizeof *e);
	snprintf(e->type, sizeof e->type, "%s", type);
	snprintf(e->kind, sizeof e->kind, "%s", kind);
	return e;
}

/* ─── go.goroutine_leak: the count's trend ──────────────────────────── */

/* Growth that the SCHED load (busy Ps + queued goroutines) shares over the
 * same span is load, not a leak (§2.1 "normalised by load"): more requests,
 * more goroutines. Without SCHED samples nothing is explained away. */
static bool load_explains(const gd_detector *d, int64_t from, int64_t to) {
	int i = 0;
	while (i < d->load_n && d->load[i].t_ns < from)
		i++;
	int j = i;
	while (j < d->load_n && d->load[j].t_ns <= to)
		j++;
	if (j - i < d->c.trend_min_samples)
		return false;
	trend l = trend_of(&d->load[i], j - i);
	return l.z > 0 && l.p < d->c.trend_alpha;
}

static void trend_check(gd_detector *d, evbuf *b) {
	const gd_config *c = &d->c;
	int n = d->trend_n;
	if (n < c->trend_min_samples) {
		d->trend_streak = 0;
		return;
	}
	const sample *w = d->trend;
	trend r = trend_of(w, n), early = trend_of(w, n / 2), late = trend_of(w + n / 2, n - n / 2);
	bool rising = r.z > 0 && r.p < c->trend_alpha && r.slope_per_min >= c->trend_min_slope &&
	              early.z > 0 && early.p < HALF_ALPHA && late.z > 0 && late.p < HALF_ALPHA &&
	              !load_explains(d, w[0].t_ns, w[n - 1].t_ns);
	if (!rising) {
		d->trend_streak = 0;
		d->trend_suspected = d->trend_confirmed = false;
		return;
	}
	if (++d->trend_streak < c->trend_persist || d->trend_confirmed)
		return;
	bool confirm = d->trend_suspected;
	if (confirm && !growth_confirmed(c, w, n))
		return;
	gd_event *e = ev_new(b, "go.goroutine_leak", "trend");
	if (!e)
		return;
	if (confirm)
		d->trend_confirmed = true;
	d->trend_suspected = true;
	snprintf(e->stage, sizeof e->stage, "%s", confirm ? "confirmed" : "suspected");
	e->count = (int64_t)w[n - 1].v;
	e->slope_per_min = r.slope_per_min;
	e->value = r.p;
	e->threshold = c->trend_alpha;
	snprintf(e->detail, sizeof e->detail,
	         "goroutines rose from %.0f to %.0f over %d samples (%.1f min), %.1f/min "
	         "(Mann-Kendall Z %.2f, p %.2g < %.2g)",
	         w[0].v, w[n - 1].v, n, (double)(w[n - 1].t_ns - w[0].t_ns) / NS_PER_MIN,
	         r.slope_per_min, r.z, r.p, c->trend_alpha);
}

static void trend_add(gd_detector *d, int64_t t_ns, int64_t goroutines, evbuf *b) {
	if (d->trend_n && t_ns <= d->trend[d->trend_n - 1].t_ns)
		return; /* not in time order: ignored */
	push(d->trend, &d->trend_n, d->c.trend_window, t_ns, (double)goroutines);
	trend_check(d, b);
}

int gd_feed_count(gd_detector *d, int64_t t_ns, int64_t goroutines, gd_event *out, int max) {
	evbuf b = {out, max, 0};
	trend_add(d, t_ns, goroutines, &b);
	return b.n;
}

/* ─── go.goroutine_leak: blocking sites ─────────────────────────────── */

/* A site is its place and function. Not its wait: debug=1 often says only
 * "parked" where debug=2 says "chan send", and a site keyed by both would
 * be two series, each read as emptied (0) by every profile of the other
 * kind — growth that never looks continuous. */
static bool same_info(const gp_site *a, const gp_site *b) {
	return !strcmp(a->site, b->site) && !strcmp(a->function, b->function);
}

/* Keep the most telling wait seen: a debug=2 state over debug=1's "parked". */
static void better_wait(gp_site *have, const gp_site *g) {
	if (g->wait[0] && (!have->wait[0] || !strcmp(have->wait, "parked")))
		snprintf(have->wait, sizeof have->wait, "%s", g->wait);
}

static bool same_site(const site_state *s, const gp_site *g, bool leakprof) {
	return s->leakprof == leakprof && same_info(&s->info, g);
}

static site_state *site_find(gd_detector *d, const gp_site *g, bool leakprof) {
	for (int i = 0; i < d->nsites; i++)
		if (same_site(&d->sites[i], g, leakprof)) {
			better_wait(&d->sites[i].info, g);
			return &d->sites[i];
		}
	if (!d->sites && !(d->sites = calloc(SITES_MAX, sizeof *d->sites)))
		return NULL;
	site_state *s;
	if (d->nsites < SITES_MAX) {
		s = &d->sites[d->nsites++];
	} else { /* forget the site with the fewest goroutines now */
		s = &d->sites[0];
		for (int i = 1; i < d->nsites; i++)
			if (d->sites[i].n &&
			    (!s->n || d->sites[i].hist[d->sites[i].n - 1].v < s->hist[s->n - 1].v))
				s = &d->sites[i];
	}
	memset(s, 0, sizeof *s);
	s->info = *g;
	s->leakprof = leakprof;
	return s;
}

static void site_push(site_state *s, int64_t t_ns, int64_t count, int minutes) {
	if (s->n && t_ns <= s->hist[s->n - 1].t_ns)
		return;
	push(s->hist, &s->n, SITE_HIST, t_ns, (double)count);
	s->max_minutes = minutes;
}

static void site_event(site_state *s, evbuf *b, const char *kind, bool confirmed, double slope,
                       double threshold, const char *why) {
	gd_event *e = ev_new(b, "go.goroutine_leak", kind);
	if (!e)
		return;
	int64_t count = (int64_t)s->hist[s->n - 1].v;
	if (confirmed)
		s->reported = count;
	s->suspected = true;
	snprintf(e->stage, sizeof e->stage, "%s", confirmed ? "confirmed" : "suspected");
	snprintf(e->site, sizeof e->site, "%s", s->info.site);
	snprintf(e->function, sizeof e->function, "%s", s->info.function);
	snprintf(e->wait, sizeof e->wait, "%s", s->info.wait);
	e->count = count;
	e->slope_per_min = slope;
	e->value = (double)count;
	e->threshold = threshold;
	snprintf(e->detail, sizeof e->detail, "%lld goroutines %s in %.40s at %.100s (%.60s)%s",
	         (long long)count, s->leakprof ? "leaked" : "blocked",
	         s->info.wait[0] ? s->info.wait : "?", s->info.site, s->info.function, why);
}

/* A site leaks when it holds at least site_min_count blocked goroutines
 * that grew: strictly more than site_min_samples profiles ago without
 * falling in between, or a significant Mann-Kendall trend over its
 * history; at site_min_slope per minute or more — unless its goroutines
 * have waited persistent_minutes (debug=2), which is evidence enough of
 * slow growth. A bounded pool (flat) and drained bursts (falling) never
 * qualify. */
static void site_check(gd_detector *d, site_state *s, evbuf *b) {
	const gd_config *c = &d->c;
	int64_t count = s->n ? (int64_t)s->hist[s->n - 1].v : 0;
	if (count < c->site_min_count) {
		s->reported = 0;
		s->suspected = false;
		return;
	}
	if (s->reported && count < 2 * s->reported)
		return;
	int k = c->site_min_samples;
	if (s->n < k)
		return;
	const sample *w = &s->hist[s->n - k];
	bool monotone = w[k - 1].v > w[0].v;
	for (int i = 1; i < k; i++)
		monotone = monotone && w[i].v >= w[i - 1].v;
	trend all = trend_of(s->hist, s->n);
	bool trending = s->n >= c->trend_min_samples && all.z > 0 && all.p < c->trend_alpha;
	trend win = trend_of(w, k);
	double slope = trending ? all.slope_per_min : win.slope_per_min;
	bool persistent = s->max_minutes >= c->persistent_minutes;
	if (!(monotone || trending) || (slope < c->site_min_slope && !persistent))
		return;
	char why[96];
	snprintf(why, sizeof why, ", growing %.1f/min over %d profiles%s", slope,
	         trending ? s->n : k, persistent ? ", waiting for minutes" : "");
	if (!s->suspected)
		site_event(s, b, "site", false, slope, c->site_min_count, why);
	if (s->suspected && growth_confirmed(c, s->hist, s->n))
		site_event(s, b, "site", true, slope, c->site_min_count, why);
}

typedef struct agg {
	gp_site site;
	int64_t count;
	int max_minutes;
} agg;

/* FNV-1a over a site's place and function: aggregate's table key. */
#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME  1099511628211ull
static uint64_t site_hash(const gp_site *g) {
	uint64_t h = FNV_OFFSET;
	const char *parts[] = {g->site, g->function}; /* same_info's fields */
	for (size_t k = 0; k < sizeof parts / sizeof *parts; k++)
		for (const char *c = parts[k];; c++) {
			h = (h ^ (unsigned char)*c) * FNV_PRIME;
			if (!*c)
				break;
		}
	return h;
}

/* Blocked goroutines summed per (site, function). A hash table of
 * indices into the result (open addressing, at most half full) keeps this
 * linear: a hostile profile of 20000 distinct stacks compared each with
 * every group before took seconds of CPU per scrape. */
static int aggregate(const gp_profile *p, bool all, agg **out) {
	size_t slots = 2;
	while (slots < 2 * (size_t)p->nstacks)
		slots *= 2;
	agg *a = calloc(p->nstacks ? (size_t)p->nstacks : 1, sizeof *a);
	int *tab = malloc(slots * sizeof *tab);
	if (!a || !tab) {
		free(a);
		free(tab);
		return -1;
	}
	memset(tab, 0xff, slots * sizeof *tab); /* -1: empty */
	int n = 0;
	for (int i = 0; i < p->nstacks; i++) {
		const gp_stack *st = &p->stacks[i];
		gp_site g;
		if (!gp_stack_site(st, &g)) {
			if (!all || !st->nframes)
				continue;
			/* a leaked goroutine with no frame of the program: its top frame */
			memset(&g, 0, sizeof g);
			snprintf(g.site, sizeof g.site, "%.200s:%d",
			         st->frames[0].file ? st->frames[0].file : "?", st->frames[0].line);
			snprintf(g.function, sizeof g.function, "%s", st->frames[0].func);
		}
		if (!g.blocked && !all)
			continue;
		if (all && p->debug == 2 && !st->leaked)
			continue; /* goroutineleak?debug=2 lists every goroutine: the leaked are
			             marked */
		size_t h = (size_t)site_hash(&g) & (slots - 1);
		while (tab[h] >= 0 && !same_info(&a[tab[h]].site, &g))
			h = (h + 1) & (slots - 1);
		if (tab[h] < 0) {
			tab[h] = n;
			a[n++].site = g;
		}
		int j = tab[h];
		better_wait(&a[j].site, &g);
		a[j].count += st->count > 0 ? st->count : 0;
		if (st->wait_minutes > a[j].max_minutes)
			a[j].max_minutes = st->wait_minutes;
	}
	free(tab);
	*out = a;
	return n;
}

int gd_feed_profile(gd_detector *d, int64_t t_ns, const gp_profile *p, bool leak_profile,
                    gd_event *out, int max) {
	evbuf b = {out, max, 0};
	if (!leak_profile && (p->debug == 1 || !p->truncated))
		trend_add(d, t_ns, p->total, &b);
	agg *a;
	int n = aggregate(p, leak_profile, &a);
	if (n < 0)
		return b.n;
	site_state *touched[SITES_MAX];
	int nt = 0;
	for (int i = 0; i < n; i++) {
		site_state *s = site_find(d, &a[i].site, leak_profile);
		if (!s)
			break;
		site_push(s, t_ns, a[i].count, a[i].max_minutes);
		if (nt < SITES_MAX)
			touched[nt++] = s;
	}
	/* a known site absent from a whole profile has no goroutine left */
	for (int i = 0; !p->truncated && i < d->nsites; i++) {
		site_state *s = &d->sites[i];
		bool seen = s->leakprof != leak_profile;
		for (int j = 0; !seen && j < nt; j++)
			seen = touched[j] == s;
		if (!seen)
			site_push(s, t_ns, 0, 0);
		if (!seen && s->leakprof)
			s->reported = 0;
	}
	for (int i = 0; i < nt; i++) {
		site_state *s = touched[i];
		if (!s->leakprof) {
			site_check(d, s, &b);
			continue;
		}
		/* the goroutineleak profile has no false positives by construction (§1.6) */
		int64_t count = (int64_t)s->hist[s->n - 1].v;
		if (count > 0 && (!s->reported || count >= 2 * s->reported))
			site_event(s, &b, "leakprofile", true, 0, 1,
			           ", reported by the runtime's goroutineleak profile");
	}
	free(a);
	return b.n;
}

/* ─── go.sched_anomaly ──────────────────────────────────────────────── */

static void sched_reset(gd_detector *d) {
	d->idle_streak = d->imb_streak = d->sat_streak = 0;
	d->idle_fired = d->imb_fired = d->sat_fired = d->thr_fired = d->quota_fired = false;
	d->threads_n = 0;
	d->load_n = 0;
}

/* Count a condition over consecutive samples; true the first time it has
 * held `need` samples (then not again until it cleared). */
static bool streak(bool cond, int *run, bool *fired, int need) {
	if (!cond) {
		*run = 0;
		*fired = false;
		return false;
	}
	return ++*run >= need && !*fired;
}

static void sched_event(evbuf *b, bool *fired, const char *kind, const gp_sched *s, double value,
                        double threshold, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void sched_event(evbuf *b, bool *fired, const char *kind, const gp_sched *s, double value,
                        double threshold, const char *fmt, ...) {
	gd_event *e = ev_new(b, "go.sched_anomaly", kind);
	if (!e)
		return;
	*fired = true;
	e->count = (int64_t)value;
	e->value = value;
	e->threshold = threshold;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof e->detail, fmt, ap);
	va_end(ap);
}

int gd_feed_sched(gd_detector *d, int64_t t_ns, const gp_sched *s, double cpu_quota_cores,
                  gd_event *out, int max) {
	const gd_config *c = &d->c;
	evbuf b = {out, max, 0};
	if (d->have_ms && s->ms < d->last_ms)
		sched_reset(d); /* the ms counter went back: a new Go process on the stream */
	d->have_ms = true;
	d->last_ms = s->ms;
	int np = s->nprocs < GP_MAX_PROCS ? s->nprocs : GP_MAX_PROCS;
	int64_t local = 0, qmax = 0, qmin = np ? INT64_MAX : 0;
	for (int i = 0; i < np; i++) {
		local += s->runq[i];
		qmax = s->runq[i] > qmax ? s->runq[i] : qmax;
		qmin = s->runq[i] < qmin ? s->runq[i] : qmin;
	}
	int64_t queued = s->runqueue + local;
	push(d->load, &d->load_n, LOAD_CAP, t_ns,
	     (double)(s->gomaxprocs - s->idleprocs) + (double)queued);

	/* §3.2 work conservation: an idle P while goroutines wait to run */
	if (streak(s->idleprocs > 0 && queued > 0, &d->idle_streak, &d->idle_fired,
	           c->idle_with_work_samples))
		sched_event(&b, &d->idle_fired, "idle_with_work", s, (double)queued,
		            c->idle_with_work_samples,
		            "%d idle Ps while %lld goroutines are queued, %d samples in a row",
		            s->idleprocs, (long long)queued, d->idle_streak);
	/* §3.2 stealing failure: a deep local queue nobody steals from */
	if (streak(s->idleprocs > 0 && np > 1 && qmax >= c->imbalance_depth && qmin == 0,
	           &d->imb_streak, &d->imb_fired, c->imbalance_samples))
		sched_event(&b, &d->imb_fired, "runq_imbalance", s, (double)qmax,
		            (double)c->imbalance_depth,
		            "a P has %lld goroutines queued while another has none and %d Ps idle, "
		            "%d samples in a row",
		            (long long)qmax, s->idleprocs, d->imb_streak);
	/* §3.2 saturation: no idle P and a backlog past 2·gomaxprocs */
	if (streak(s->idleprocs == 0 && s->runqueue >= c->saturation_runqueue &&
	               queued > 2 * (int64_t)s->gomaxprocs,
	           &d->sat_streak, &d->sat_fired, c->saturation_samples))
		sched_event(
		    &b, &d->sat_fired, "saturation", s, (double)queued, 2.0 * s->gomaxprocs,
		    "no idle P and %lld goroutines queued (global %lld) on %d Ps, %d samples "
		    "in a row",
		    (long long)queued, (long long)s->runqueue, s->gomaxprocs, d->sat_streak);
	/* §3.2 thread leak: threads are never returned, growth is what matters */
	if (d->threads_n == THREAD_CAP) {
		memmove(d->threads, d->threads + 1, (THREAD_CAP - 1) * sizeof *d->threads);
		d->threads_n--;
	}
	/* a process's first sample: what a Go program starts with (an M per P
	 * and sysmon) is the baseline, so threads that piled up before the
	 * first SCHED line (200 goroutines entering syscalls at start) count
	 * as growth too */
	if (!d->threads_n && s->ms < SCHED_START_MS)
		d->threads[d->threads_n++] = s->gomaxprocs + 1;
	d->threads[d->threads_n++] = s->threads;
	/* growth: above the lowest count kept, and still rising over the last
	 * k samples (a slow climb of a few threads a second counts as much as
	 * a jump) */
	int k = c->thread_growth_samples;
	int lowest = s->threads;
	for (int i = 0; i < d->threads_n; i++)
		if (d->threads[i] < lowest)
			lowest = d->threads[i];
	bool rising = d->threads_n >= k && s->threads > d->threads[d->threads_n - k];
	int growth = rising ? s->threads - lowest : 0;
	int level = THREADS_PER_PROC * s->gomaxprocs + c->thread_growth_min;
	int run = 0;
	if (streak(growth >= c->thread_growth_min && s->threads >= level, &run, &d->thr_fired, 1))
		sched_event(
		    &b, &d->thr_fired, "thread_growth", s, s->threads, level,
		    "OS threads rose by %d to %d over %d samples (%d idle): blocking syscalls, "
		    "cgo or locked threads",
		    growth, s->threads, k, s->idlethreads);
	/* §3.2: more Ps than the CPU quota lets run */
	if (cpu_quota_cores > 0) {
		int allowed = (int)ceil(cpu_quota_cores * c->quota_margin);
		allowed = allowed < QUOTA_MIN_PROCS ? QUOTA_MIN_PROCS : allowed;
		int once = 0;
		if (streak(s->gomaxprocs > allowed, &once, &d->quota_fired, 1))
			sched_event(&b, &d->quota_fired, "gomaxprocs_over_quota", s, s->gomaxprocs,
			            allowed,
			            "GOMAXPROCS=%d but the CPU quota is %.2f cores: Ps will be "
			            "throttled; set GOMAXPROCS=%d",
			            s->gomaxprocs, cpu_quota_cores, allowed);
	}
	return b.n;
}

/* ─── go.gc_thrash ──────────────────────────────────────────────────── */

/* GCs back to back while the cgroup's memory climbs to its limit: the heap
 * cannot shrink below the limit and the program spends itself collecting. */
int gd_feed_gc(gd_detector *d, int64_t t_ns, const gp_gc *g, int64_t mem_current, int64_t mem_limit,
               gd_event *out, int max) {
	const gd_config *c = &d->c;
	evbuf b = {out, max, 0};
	if (d->gc_n && (g->n <= d->gc[d->gc_n - 1].n || g->at_s < d->gc[d->gc_n - 1].at_s))
		d->gc_n = 0; /* numbering restarted: a new process */
	if (d->gc_n == GC_CAP) {
		memmove(d->gc, d->gc + 1, (GC_CAP - 1) * sizeof *d->gc);
		d->gc_n--;
	}
	d->gc[d->gc_n++] = (gc_sample){g->at_s, g->n, mem_current};
	int i = 0;
	while (i < d->gc_n - 1 && g->at_s - d->gc[i].at_s > c->gc_window_s)
		i++;
	if (i) {
		memmove(d->gc, d->gc + i, (size_t)(d->gc_n - i) * sizeof *d->gc);
		d->gc_n -= i;
	}
	const gc_sample *f = &d->gc[0], *l = &d->gc[d->gc_n - 1];
	double span = l->at_s - f->at_s;
	double rate = span > 0 ? (double)(l->n - f->n) / span : 0;
	bool high = mem_limit > 0 && (double)mem_current >= c->gc_mem_level * (double)mem_limit;
	bool rising = l->mem > f->mem;
	bool thrash = d->gc_n >= 3 && rate >= c->gc_per_s && high && rising;
	/* once reported it holds while GC stays busy near the limit: a
	 * plateau's wobble (memory a little down, then up) neither clears it
	 * nor reports it again; it clears when GC calms or memory falls back */
	if (d->gc_fired && d->gc_n >= 3 && rate >= c->gc_per_s / 2 && high)
		thrash = true;
	int run = 0;
	if (streak(thrash, &run, &d->gc_fired, 1)) {
		gd_event *e = ev_new(&b, "go.gc_thrash", "gc_thrash");
		if (e) {
			d->gc_fired = true;
			e->count = l->n - f->n;
			e->value = rate;
			e->threshold = c->gc_per_s;
			snprintf(
			    e->detail, sizeof e->detail,
			    "%.1f GCs/s over %.1f s while memory climbs to %.0f%% of its limit "
			    "(%lld of %lld bytes), %.0f%% CPU in GC",
			    rate, span, 100.0 * (double)mem_current / (double)mem_limit,
			    (long long)mem_current, (long long)mem_limit, g->cpu_pct);
		}
	}
	return b.n;
}
