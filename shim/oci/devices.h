/*
 * devices.h — the container's device access (OCI linux.resources.devices),
 * enforced by the kernel's device controller (prefix dev_): the v1 devices
 * hierarchy on hybrid hosts, a BPF_CGROUP_DEVICE program on pure v2 ones.
 */
#ifndef MOONSHIM_DEVICES_H
#define MOONSHIM_DEVICES_H

#include <jansson.h>
#include <sys/types.h>

#include "cgroup.h"
#include "base.h"

typedef struct dev_rules dev_rules;

/* arr: linux.resources.devices (may be NULL); jpath: its JSON path for
 * messages. Each rule: allow (bool, required), type "a" | "c" | "b"
 * (default "a"), major / minor (absent, null or -1: any), access (a subset
 * of "rwm", default "rwm"). The rules are read in order and the last one
 * that matches a device and an access decides; nothing matching means
 * denied. Like runc, built-in rules follow the user's: mknod of any device,
 * and rwm on /dev/null, zero, full, random, urandom, tty, ptmx and the
 * /dev/pts terminals, so a spec that denies everything still gets the
 * standard /dev nodes. */
int dev_rules_parse(json_t *arr, const char *jpath, dev_rules **out, ms_err *err);
void dev_rules_free(dev_rules *r);

/* Enforce r for the cgroup at rel (relative to the cgroup roots, e.g.
 * "moonshim/ID"). Hybrid (and v1) hosts: creates <v1 devices>/<rel> and
 * writes devices.deny / devices.allow; -EINVAL for lists v1 cannot express
 * (a deny punching a hole in an earlier, wider allow, or the reverse).
 * Pure v2: attaches a BPF_CGROUP_DEVICE program (BPF_F_ALLOW_MULTI) to
 * <unified>/<rel>, which must exist. */
int dev_setup(const dev_rules *r, const cg_host *h, const char *rel, ms_err *err);
/* v1: moves pid into <devices>/<rel> (before the container runs); v2: no-op. */
int dev_attach(const cg_host *h, const char *rel, pid_t pid, ms_err *err);
/* v1: removes <devices>/<rel> and then its parents up to the mount while
 * they are empty (best effort); v2: no-op, the program goes with the cgroup. */
void dev_cleanup(const cg_host *h, const char *rel);

#endif
