/*
 * godetect.h — goroutine leaks and scheduler anomalies of a Go program,
 * from samples over time (prefix gd_): the SCHED lines, pprof goroutine
 * profiles and gctrace lines goparse.h reads, plus the cgroup's CPU quota
 * and memory. Methods and thresholds: docs/go-watch.md §2 (Mann-Kendall +
 * Theil-Sen trend, LeakProf-style per-site growth), §3 (idle Ps with queued
 * work, imbalance, saturation, thread growth, GOMAXPROCS over the quota)
 * and §4 (GC thrash).
 *
 * The trend verdict (go.goroutine_leak "trend"): over the last trend_window
 * counts, Mann-Kendall p < trend_alpha with Z > 0, Theil-Sen slope >=
 * trend_min_slope per minute, each half of the window rising as well
 * (p < 0.10: a step up to a new flat level is not a leak), for
 * trend_persist samples in a row; growth the SCHED load shares over the
 * same span (busy Ps + queued goroutines rising significantly) is load,
 * not a leak. Only an SCHED-fed detector can tell load apart; without it a
 * slow cycle (longer than the window) looks like a trend.
 *
 * Leak events come in two stages (gd_event.stage): "suspected" when the
 * trend or a site's growth test first holds, "confirmed" when that growth
 * has also lasted confirm_s and has not levelled off (docs/go-watch.md
 * §2.4); a goroutineleak profile record is confirmed at once (the runtime
 * proved it). Whatever acts on a leak should act on "confirmed".
 *
 * A detector is fed in time order and answers with events; a condition is
 * reported once when it starts (and again only after it cleared, or for a
 * leak site when its count doubled), never on every sample. No I/O, no
 * clock: the caller passes the sample's time.
 */
#ifndef MOONSHIM_GODETECT_H
#define MOONSHIM_GODETECT_H

#include "goparse.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct gd_config {
	/* go.goroutine_leak */
	int trend_min_samples;  /* profiles before a trend verdict */
	double trend_alpha;     /* Mann-Kendall two-sided significance */
	double trend_min_slope; /* goroutines per minute (Theil-Sen) below which: no leak */
	int trend_window;       /* samples kept (the test looks at the last ones) */
	int trend_persist;      /* added: consecutive samples the trend must hold before
	                         * it is reported (a ramp that drains does not) */
	int site_min_count;     /* blocked goroutines at one site before it can be a leak */
	int site_min_samples;   /* profiles the site must have been growing over */
	double site_min_slope;  /* per minute */
	int persistent_minutes; /* debug=2: waiting this long counts toward a leak */
	/* added: a suspected leak (trend or site) is confirmed only once its
	 * growth has lasted confirm_s seconds over confirm_samples samples
	 * (since the count was last at its lowest) and is still rising: over
	 * the newest plateau_s seconds (longer for a slow leak) at
	 * plateau_ratio of the growth's own slope or more. A pool that warms
	 * up, a cache that fills, a burst: their growth stops before then. */
	double confirm_s;
	int confirm_samples;
	double plateau_s;
	double plateau_ratio;
	/* go.sched_anomaly */
	int idle_with_work_samples; /* consecutive samples with idle Ps and queued work */
	int64_t imbalance_depth;    /* one P's queue at least this while another P idles */
	int imbalance_samples;
	int saturation_samples; /* consecutive samples: no idle P, global queue > 0 */
	int64_t saturation_runqueue;
	int thread_growth_samples; /* threads rising over this many samples ... */
	int thread_growth_min;     /* ... by at least this many */
	double quota_margin;       /* gomaxprocs > max(2, ceil(quota * margin)) */
	/* go.gc_thrash */
	double gc_per_s;     /* GC rate at least this ... */
	double gc_mem_level; /* ... while memory.current >= level * limit and rising */
	double gc_window_s;  /* added: seconds of gctrace lines the rate is taken over */
} gd_config;

void gd_config_default(gd_config *c);

typedef struct gd_event {
	char type[32]; /* "go.goroutine_leak", "go.sched_anomaly", "go.gc_thrash" */
	char
	    kind[32];       /* leak: "trend", "site", "leakprofile"; sched: "idle_with_work",
	                     * "runq_imbalance", "saturation", "thread_growth", "gomaxprocs_over_quota" */
	char site[256];     /* leak: "file:line" ("" for a trend) */
	char function[192]; /* leak: the site's function */
	char wait[48];      /* leak: "chan receive", "select", ... */
	char stage[16];     /* leak: "suspected" or "confirmed" ("" for the others) */
	int64_t count;      /* goroutines (leak) or the sampled number (sched, gc) */
	double slope_per_min;
	double value, threshold; /* the measured quantity and the bound it passed */
	char detail[256];        /* one human sentence */
} gd_event;

typedef struct gd_detector gd_detector;

gd_detector *gd_new(const gd_config *c); /* NULL on ENOMEM; c NULL: defaults */
void gd_free(gd_detector *d);

/* Each returns how many events it wrote to out (at most max). t_ns: the
 * sample's time (monotonic). */
int gd_feed_sched(gd_detector *d, int64_t t_ns, const gp_sched *s, double cpu_quota_cores,
                  gd_event *out, int max); /* quota <= 0: none */
int gd_feed_profile(gd_detector *d, int64_t t_ns, const gp_profile *p, bool leak_profile,
                    gd_event *out, int max);
/* A goroutine count alone (e.g. from a debug=1 total or runtime metrics). */
int gd_feed_count(gd_detector *d, int64_t t_ns, int64_t goroutines, gd_event *out, int max);
int gd_feed_gc(gd_detector *d, int64_t t_ns, const gp_gc *g, int64_t mem_current, int64_t mem_limit,
               gd_event *out, int max); /* limit <= 0: none */

/* The statistics, for tests: the Mann-Kendall Z (ties corrected) of y[0..n),
 * its two-sided p-value, and the Theil-Sen slope of y over t. */
double gd_mann_kendall_z(const double *y, int n);
double gd_p_value(double z);
double gd_theil_sen(const double *t, const double *y, int n);

#endif
