/*
 * metrics.h — a container cgroup's figures as the Metrics message a
 * containerd Stats call answers with (prefix metrics_):
 * io.containerd.cgroups.v1.Metrics on a v1/hybrid host (CPU from cpuacct,
 * as runc's shim there and containerd's CRI read it), v2 Metrics on a pure
 * v2 one (as containerd's cgroups.Mode() expects).
 */
#ifndef MOONSHIM_METRICS_H
#define MOONSHIM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"

#define METRICS_TYPE    "io.containerd.cgroups.v2.Metrics"
#define METRICS_V1_TYPE "io.containerd.cgroups.v1.Metrics"

/* The packed Metrics of cgroup g (malloc'd, *n bytes; NULL when out of
 * memory) and its type URL in *type_url. A part that cannot be read (the
 * cgroup gone after the exit) is left out, never an error. */
uint8_t *metrics_pack(cg *g, cg_layout layout, size_t *n, const char **type_url);

#endif
