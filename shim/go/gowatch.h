/*
 * gowatch.h — watching a Go workload from the shim (prefix gw_): its SCHED
 * and gctrace lines picked from the stderr passing through us (tap.h), its
 * pprof goroutine profile scraped over HTTP from inside its network
 * namespace, both fed to the detectors (godetect.h), whose findings become
 * events: go.goroutine_leak, go.sched_anomaly, go.gc_thrash.
 *
 *   --go-watch schedtrace=1000,pprof=http://127.0.0.1:6060,gctrace
 *
 * schedtrace=MS and gctrace turn the runtime's traces on through GODEBUG
 * (appended to the workload's own, never replacing it); pprof=URL is the
 * program's net/http/pprof (the scraper adds /debug/pprof/goroutine).
 * Options: interval=S between scrapes (default 3), debug2=N (a debug=2
 * profile — it stops the world for the whole dump — only while the program
 * has fewer than N goroutines; 0: never; default 1000), maxprocs (set
 * GOMAXPROCS from the CPU quota when the workload does not set it),
 * stderr=blocking|non-blocking (the tap's mode, tap.h: blocking, the
 * default, loses nothing; non-blocking drops what the sink cannot take in
 * time) and stderr-buffer=SIZE (the tap's buffer, default 1m).
 */
#ifndef MOONSHIM_GOWATCH_H
#define MOONSHIM_GOWATCH_H

#include "cgroup.h"
#include "base.h"
#include "godetect.h"
#include "io.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct gw_opts {
	int schedtrace_ms; /* 0: off */
	bool gctrace;
	char pprof[256]; /* base URL, "" : no scraping */
	double interval_s;
	int debug2_max;
	bool maxprocs;
	tap_mode stderr_mode; /* the tap's (tap.h); TAP_LOSSLESS by default */
	size_t stderr_buffer; /* the tap's buffer in bytes */
} gw_opts;

/* The defaults (interval 3 s, debug2 1000, nothing watched, a lossless
 * tap with a 1 MiB buffer). */
void gw_opts_init(gw_opts *o);
/* Parse the --go-watch value into o (initialised), or the annotations'
 * values one at a time with gw_parse_one. 0 or -EINVAL with a message
 * naming the option. */
int gw_parse(const char *text, gw_opts *o, ms_err *err);
int gw_parse_one(const char *key, const char *value, gw_opts *o, ms_err *err);

/* The process's environment with GODEBUG appended to (schedtrace, gctrace)
 * and GOMAXPROCS set from quota_cores when asked and absent. env is a
 * NULL-terminated strv owned by the caller; returns the new one (the old
 * is freed) or NULL on ENOMEM. */
char **gw_env(char **env, const gw_opts *o, double quota_cores);

typedef struct gw_target {
	cg *cgroup;       /* for memory (gc thrash); may be NULL */
	double cpu_quota; /* cores, <= 0: none (gomaxprocs_over_quota) */
	int netns_fd;     /* the scraper connects from here; -1: ours */
	/* where findings go (type, fields consumed) */
	void (*emit)(void *arg, const char *type, json_t *fields);
	void *emit_arg;
} gw_target;

typedef struct gw gw;

/* In a goroutine: start the scraper (when o->pprof is set). */
gw *gw_start(const gw_opts *o, const gw_target *t, const gd_config *c);
/* The same detectors on the shim's own runtime (its SCHED sample and
 * goroutine count every interval_s); findings carry "subject":
 * "moonshim" (the workload's: "workload"). Stop with gw_stop. */
gw *gw_watch_self(double interval_s, const gw_target *t, const gd_config *c);
/* A line of the workload's stderr (tap.h's callback), for the lines that
 * hold one of gw_markers: a SCHED line, anywhere in a line (after a torn
 * fragment too), and a gctrace line, at a line's start. */
extern const char *const gw_markers[];
void gw_line(void *gw, const char *text, size_t len);
/* The workload was replaced by a new process (a restart): scrape from
 * netns_fd (the caller keeps the old fd open until no scrape can be
 * dialling with it — a restart later) and start the detectors' history
 * afresh, since the new program's counts do not continue the old one's. */
void gw_retarget(gw *g, int netns_fd);
/* What the watch saw last, for the publisher (publish.h's "go"): counts
 * and the workload's last SCHED sample as "sched"; NULL for the shim's
 * own watch. */
json_t *gw_json(gw *g);
/* Stop the scraper and free. Counts (lines parsed, torn, scrapes) are
 * reported as one "go.watch" event. */
void gw_stop(gw *g);

#endif
