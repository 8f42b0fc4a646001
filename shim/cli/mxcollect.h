/*
 * mxcollect.h — the collector behind `moonshim metrics` (prefix mx_), apart
 * from its HTTP server so tests and the bench can scrape without one: every
 * container published under the state roots (publish.h), the live ones
 * only, as Prometheus or OpenMetrics text, with the cgroup counters read
 * at the scrape.
 */
#ifndef MOONSHIM_MXCOLLECT_H
#define MOONSHIM_MXCOLLECT_H

#include "io.h"

#include <stdio.h>

#define MX_DEFAULT_LISTEN "127.0.0.1:9731"
#define MX_PATH           "/metrics"
/* Bounds on what one status.json may add (its names come from scripts):
 * more checks, buckets or keyed counters than this are cut, and said so. */
#define MX_CHECKS_MAX  64
#define MX_BUCKETS_MAX 64
#define MX_KEYS_MAX    64

typedef struct mx mx;

/* roots: `moonshim run`'s (depth 1) and the containerd shims' (depth 2),
 * either may be NULL. log: where a bad status.json is reported (once per
 * container and problem). NULL on ENOMEM. */
mx *mx_new(const char *run_root, const char *containerd_root, FILE *log);
void mx_free(mx *m);
/* One scrape (malloc'd text, *len), or NULL on ENOMEM. Safe to call from
 * several goroutines or threads at once. */
char *mx_scrape(mx *m, ex_format f, size_t *len);

#endif
