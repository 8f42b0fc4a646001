/*
 * ctcg.h — a container's cgroup as the spec asks for it (prefix ctcg_):
 * the cgroup at linux.cgroupsPath (or a default), its limits from
 * linux.resources (memory.reservation mapped as runc maps it), and the
 * device rules; undone as one. Shared by `moonshim run` and the
 * containerd shim.
 */
#ifndef MOONSHIM_CTCG_H
#define MOONSHIM_CTCG_H

#include <limits.h>
#include <stdbool.h>

#include "cgroup.h"
#include "devices.h"
#include "base.h"
#include "spec.h"

typedef struct ctcg {
	cg_host host;
	char rel[PATH_MAX]; /* below the cgroup roots */
	cg *cgroup;
	dev_rules *devices;
	bool devices_set;
} ctcg;

/* default_rel: used when the spec has no cgroupsPath. On failure what was
 * made is undone. Warnings about fields this host cannot apply are added
 * to s. */
int ctcg_setup(ctcg *c, spec *s, const char *default_rel, ms_err *err);
/* Apply an Update's resources (spec_parse_resources) to the cgroup; a
 * field this host lacks but runc also leaves alone is a warning in res. */
int ctcg_update(ctcg *c, spec *res, ms_err *err);
/* A ct_opts.before_start hook (arg: the ctcg): the v1 device hierarchy. */
int ctcg_attach_devices(pid_t pid, void *arg, ms_err *err);
/* Why a process of cgroup c died before it could start, when the cgroup
 * knows: the OOM killer took it under the spec's memory limit (a limit
 * below what a process needs to exist). Rewrites err and returns it
 * (-ENOMEM) if so; 0 (err untouched) otherwise. */
int ctcg_explain_start_failure(cg *c, const spec *s, ms_err *err);
/* Remove the cgroup (it must be empty) and the device rules. */
void ctcg_teardown(ctcg *c);
/* Outside the runtime (the CLI's delete, the shim's delete): kill what is
 * left in the cgroup at rel, wait up to CTCG_EMPTY_WAIT_MS for it to
 * empty, remove it and its device rules. Best effort. */
#define CTCG_EMPTY_WAIT_MS 5000
void ctcg_reap(const cg_host *h, const char *rel);

#endif
