/* ctcg.c — a container's cgroup, limits and device rules, made and undone. */
#include "ctcg.h"

#include <errno.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void apply_reservation(const ctcg *c, const spec *s, cg_limits *l) {
	if (s->memory_reservation == CG_UNSET)
		return;
	/* runc's mapping: memory.low on v2, the soft limit on v1 (which the
	 * cgroup module sets from memory_high on a hybrid host) */
	if (c->host.layout == CG_LAYOUT_V2)
		l->memory_low = s->memory_reservation;
	else if (l->memory_high == CG_UNSET)
		l->memory_high = s->memory_reservation;
}

/* The limits s asks for as this host can take them: what the layout has
 * no file for and runc leaves unset too becomes a warning in s. */
static cg_limits host_limits(const ctcg *c, spec *s) {
	cg_limits l = s->limits;
	apply_reservation(c, s, &l);
	if (c->host.layout == CG_LAYOUT_V2 && l.swappiness != CG_UNSET) {
		spec_warn(s, "linux.resources.memory.swappiness: cgroup v2 has no swappiness; "
		             "ignored");
		l.swappiness = CG_UNSET;
	}
	return l;
}

/* The spec field a cgroup error is about, from the file its message opens
 * with (the cgroup module names files, not OCI fields). */
static const char *field_of(const cg_err *ce) {
	static const struct {
		const char *file, *field;
	} map[] = {{"cpuset.cpus", "linux.resources.cpu.cpus"},
	           {"cpuset.mems", "linux.resources.cpu.mems"}};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strncmp(ce->msg, map[i].file, strlen(map[i].file)))
			return map[i].field;
	return "linux.resources";
}

int ctcg_update(ctcg *c, spec *res, ms_err *err) {
	cg_err ce = {0};
	cg_limits l = host_limits(c, res);
	if (cg_set_limits(c->cgroup, &l, &ce))
		return ms_fail(err, ce.code, "%s: %s", field_of(&ce), ce.msg);
	return 0;
}

int ctcg_setup(ctcg *c, spec *s, const char *default_rel, ms_err *err) {
	memset(c, 0, sizeof *c);
	cg_err ce = {0};
	if (cg_host_detect(&c->host, "/proc/self/mounts", &ce))
		return ms_fail(err, ce.code, "cgroups: %s", ce.msg);
	const char *p = s->cgroups_path;
	snprintf(c->rel, sizeof c->rel, "%s", p ? p + strspn(p, "/") : default_rel);
	if (!(c->cgroup = cg_open(&c->host, c->rel, true, &ce)))
		return ms_fail(err, ce.code, "linux.cgroupsPath: %s", ce.msg);
	cg_limits l = host_limits(c, s);
	int rc = 0;
	if (cg_set_limits(c->cgroup, &l, &ce))
		rc = ms_fail(err, ce.code, "%s: %s", field_of(&ce), ce.msg);
	else if (!(rc = dev_rules_parse(s->device_rules, "linux.resources.devices", &c->devices,
	                                err))) {
		/* set before dev_setup: one that fails half-way made a cgroup
		 * the teardown below must remove */
		c->devices_set = true;
		rc = dev_setup(c->devices, &c->host, c->rel, err);
	}
	if (rc)
		ctcg_teardown(c);
	return rc;
}

int ctcg_attach_devices(pid_t pid, void *arg, ms_err *err) {
	ctcg *c = arg;
	return c->devices_set ? dev_attach(&c->host, c->rel, pid, err) : 0;
}

void ctcg_teardown(ctcg *c) {
	cg_err ce = {0};
	if (c->cgroup) {
		cg_remove(c->cgroup, &ce);
		cg_close(c->cgroup);
		c->cgroup = NULL;
	}
	if (c->devices_set)
		dev_cleanup(&c->host, c->rel);
	dev_rules_free(c->devices);
	c->devices = NULL;
	c->devices_set = false;
}

void ctcg_reap(const cg_host *h, const char *rel) {
	cg_err ce = {0};
	cg *c = cg_open(h, rel, false, &ce);
	if (c) {
		if (cg_populated(c, &ce) == 1)
			cg_kill(c, SIGKILL, &ce);
		for (int ms = 0; cg_populated(c, &ce) == 1 && ms < CTCG_EMPTY_WAIT_MS; ms += 10)
			usleep(10000);
		cg_remove(c, &ce);
		cg_close(c);
	}
	dev_cleanup(h, rel);
}

int ctcg_explain_start_failure(cg *c, const spec *s, ms_err *err) {
	cg_memory_events e;
	cg_memory m = {.peak = -1};
	cg_err ce = {0};
	if (!c || cg_read_memory_events(c, false, &e, &ce) || (e.oom_kill <= 0 && e.oom <= 0))
		return 0;
	(void)cg_read_memory(c, &m, &ce);
	return ms_fail(err, -ENOMEM,
	               "linux.resources.memory.limit: unable to set memory limit to %lld: the OOM "
	               "killer killed the container's process as it started (peak usage: %lld)",
	               (long long)s->limits.memory_max, (long long)m.peak);
}
