/*
 * limits.c — writing a cgroup's limits, on v2 directly and on hybrid hosts
 * through the v1 controllers' files (see cgroup.h for the mapping).
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void cg_limits_init(cg_limits *l) {
	l->memory_max = l->memory_high = l->memory_low = l->memory_min = l->swap_max = CG_UNSET;
	l->oom_group = CG_UNSET;
	l->cpu_quota_us = l->cpu_period_us = l->cpu_weight = l->cpu_shares = l->pids_max = CG_UNSET;
	l->io_max = NULL;
}

double cg_limits_cpu_cores(const cg_limits *l) {
	if (l->cpu_quota_us <= 0 || l->cpu_quota_us == CG_NOLIMIT)
		return 0;
	return (double)l->cpu_quota_us / (double)(l->cpu_period_us > 0 ? l->cpu_period_us : 100000);
}

/* "max" or the number (v1 spells "no limit" -1). */
static void fmt_limit(char *buf, size_t n, int64_t v, bool v1) {
	if (v == CG_NOLIMIT)
		snprintf(buf, n, "%s", v1 ? "-1" : "max");
	else
		snprintf(buf, n, "%" PRId64, v);
}

static int check_range(const char *what, int64_t v, int64_t lo, int64_t hi, cg_err *err) {
	if (v == CG_UNSET || v == CG_NOLIMIT || (v >= lo && v <= hi))
		return 0;
	cg__err(err, -EINVAL, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", what, v,
	        lo, hi);
	return -EINVAL;
}

static int set_v2(cg *c, const cg_limits *l, cg_err *err) {
	char v[64];
	unsigned need = 0;
	if (l->memory_max != CG_UNSET || l->memory_high != CG_UNSET || l->memory_low != CG_UNSET ||
	    l->memory_min != CG_UNSET || l->swap_max != CG_UNSET || l->oom_group != CG_UNSET)
		need |= CG_MEMORY;
	if (l->cpu_quota_us != CG_UNSET || l->cpu_weight != CG_UNSET)
		need |= CG_CPU;
	if (l->pids_max != CG_UNSET)
		need |= CG_PIDS;
	if (l->io_max)
		need |= CG_IO;
	int rc = cg_enable(c, need, err);
	if (rc)
		return rc;
	/* min/low/high before max, so a shrinking max never sits below high */
	const struct {
		const char *file;
		int64_t v;
	} mem[] = {{"memory.min", l->memory_min},
	           {"memory.low", l->memory_low},
	           {"memory.high", l->memory_high},
	           {"memory.max", l->memory_max},
	           {"memory.swap.max", l->swap_max}};
	for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
		if (mem[i].v == CG_UNSET)
			continue;
		fmt_limit(v, sizeof v, mem[i].v, false);
		if ((rc = cg__write(c, CG_TREE_UNIFIED, mem[i].file, v, err)))
			return rc;
	}
	if (l->oom_group != CG_UNSET &&
	    (rc = cg__write(c, CG_TREE_UNIFIED, "memory.oom.group", l->oom_group ? "1" : "0", err)))
		return rc;
	if (l->cpu_quota_us != CG_UNSET) {
		int64_t period = l->cpu_period_us == CG_UNSET ? 100000 : l->cpu_period_us;
		if (l->cpu_quota_us == CG_NOLIMIT)
			snprintf(v, sizeof v, "max %" PRId64, period);
		else
			snprintf(v, sizeof v, "%" PRId64 " %" PRId64, l->cpu_quota_us, period);
		if ((rc = cg__write(c, CG_TREE_UNIFIED, "cpu.max", v, err)))
			return rc;
	}
	if (l->cpu_weight != CG_UNSET) {
		snprintf(v, sizeof v, "%" PRId64, l->cpu_weight);
		if ((rc = cg__write(c, CG_TREE_UNIFIED, "cpu.weight", v, err)))
			return rc;
	}
	if (l->pids_max != CG_UNSET) {
		fmt_limit(v, sizeof v, l->pids_max, false);
		if ((rc = cg__write(c, CG_TREE_UNIFIED, "pids.max", v, err)))
			return rc;
	}
	/* io.max takes one device per write */
	for (const char *line = l->io_max; line && *line;) {
		size_t len = strcspn(line, "\n");
		char one[256];
		if (len >= sizeof one) {
			cg__err(err, -EINVAL, "io.max line too long: %.40s...", line);
			return -EINVAL;
		}
		snprintf(one, sizeof one, "%.*s", (int)len, line);
		if (len && (rc = cg__write(c, CG_TREE_UNIFIED, "io.max", one, err)))
			return rc;
		line += len + (line[len] == '\n');
	}
	return 0;
}

static int unsupported(const char *what, cg_err *err) {
	cg__err(err, -ENOTSUP,
	        "%s has no cgroup v1 equivalent (this host keeps memory, cpu and pids on v1)",
	        what);
	return -ENOTSUP;
}

static int set_hybrid(cg *c, const cg_limits *l, cg_err *err) {
	char v[64];
	int rc;
	if (l->memory_min != CG_UNSET)
		return unsupported("memory.min", err);
	if (l->memory_low != CG_UNSET)
		return unsupported("memory.low", err);
	if (l->oom_group != CG_UNSET && l->oom_group)
		return unsupported("memory.oom.group", err);
	if (l->io_max)
		return unsupported("io.max", err);
	unsigned need = 0;
	if (l->memory_max != CG_UNSET || l->memory_high != CG_UNSET || l->swap_max != CG_UNSET)
		need |= CG_MEMORY;
	if (l->cpu_quota_us != CG_UNSET || l->cpu_weight != CG_UNSET || l->cpu_shares != CG_UNSET)
		need |= CG_CPU;
	if (l->pids_max != CG_UNSET)
		need |= CG_PIDS;
	if ((rc = cg_enable(c, need, err)))
		return rc;
	if (l->memory_high != CG_UNSET) {
		fmt_limit(v, sizeof v, l->memory_high, true);
		if ((rc = cg__write(c, CG_TREE_MEMORY, "memory.soft_limit_in_bytes", v, err)))
			return rc;
	}
	if (l->memory_max != CG_UNSET || l->swap_max != CG_UNSET) {
		/* v1 wants limit_in_bytes <= memsw.limit_in_bytes at every step:
		 * when either changes, lift memsw first, set the memory limit,
		 * then put memsw where swap.max says (unlimited if unset). */
		int64_t old_memsw = 0;
		bool memsw = cg__read_int(c, CG_TREE_MEMORY, "memory.memsw.limit_in_bytes",
		                          &old_memsw, NULL) == 0;
		bool lift = memsw && (l->swap_max != CG_UNSET || l->memory_max == CG_NOLIMIT ||
		                      l->memory_max > old_memsw);
		if (lift &&
		    (rc = cg__write(c, CG_TREE_MEMORY, "memory.memsw.limit_in_bytes", "-1", err)))
			return rc;
		if (l->memory_max != CG_UNSET) {
			fmt_limit(v, sizeof v, l->memory_max, true);
			if ((rc = cg__write(c, CG_TREE_MEMORY, "memory.limit_in_bytes", v, err)))
				return rc;
		}
		if (l->swap_max != CG_UNSET && l->swap_max != CG_NOLIMIT) {
			if (!memsw) {
				cg__err(err, -ENOTSUP,
				        "swap.max: this kernel has no swap accounting "
				        "(memory.memsw.limit_in_bytes missing)");
				return -ENOTSUP;
			}
			int64_t max;
			if ((rc = cg__read_int(c, CG_TREE_MEMORY, "memory.limit_in_bytes", &max,
			                       err)))
				return rc;
			snprintf(v, sizeof v, "%" PRId64, max + l->swap_max);
			if ((rc = cg__write(c, CG_TREE_MEMORY, "memory.memsw.limit_in_bytes", v,
			                    err)))
				return rc;
		}
	}
	if (l->cpu_quota_us != CG_UNSET) {
		if (l->cpu_period_us != CG_UNSET) {
			snprintf(v, sizeof v, "%" PRId64, l->cpu_period_us);
			if ((rc = cg__write(c, CG_TREE_CPU, "cpu.cfs_period_us", v, err)))
				return rc;
		}
		fmt_limit(v, sizeof v, l->cpu_quota_us, true);
		if ((rc = cg__write(c, CG_TREE_CPU, "cpu.cfs_quota_us", v, err)))
			return rc;
	}
	if (l->cpu_weight != CG_UNSET || l->cpu_shares != CG_UNSET) {
		/* shares as given, else the inverse of runc's shares→weight
		 * mapping (2..262144 ↔ 1..10000) */
		int64_t shares = l->cpu_shares != CG_UNSET
		                     ? l->cpu_shares
		                     : 2 + ((l->cpu_weight - 1) * 262142) / 9999;
		snprintf(v, sizeof v, "%" PRId64, shares);
		if ((rc = cg__write(c, CG_TREE_CPU, "cpu.shares", v, err)))
			return rc;
	}
	if (l->pids_max != CG_UNSET) {
		fmt_limit(v, sizeof v, l->pids_max, false);
		if ((rc = cg__write(c, CG_TREE_PIDS, "pids.max", v, err)))
			return rc;
	}
	return 0;
}

int cg_set_limits(cg *c, const cg_limits *l, cg_err *err) {
	int rc;
	if ((rc = check_range("cpu.weight", l->cpu_weight, 1, 10000, err)) ||
	    (rc = check_range("cpu.max quota", l->cpu_quota_us, 1000, INT64_MAX / 2, err)) ||
	    (rc = check_range("cpu.max period", l->cpu_period_us, 1000, 1000000, err)) ||
	    (rc = check_range("pids.max", l->pids_max, 0, INT32_MAX, err)) ||
	    (rc = check_range("memory.max", l->memory_max, 0, INT64_MAX / 2, err)) ||
	    (rc = check_range("memory.high", l->memory_high, 0, INT64_MAX / 2, err)) ||
	    (rc = check_range("memory.low", l->memory_low, 0, INT64_MAX / 2, err)) ||
	    (rc = check_range("memory.min", l->memory_min, 0, INT64_MAX / 2, err)) ||
	    (rc = check_range("swap.max", l->swap_max, 0, INT64_MAX / 2, err)) ||
	    (rc = check_range("cpu.shares", l->cpu_shares, 2, 262144, err)))
		return rc;
	if (l->oom_group != CG_UNSET && l->oom_group != 0 && l->oom_group != 1) {
		cg__err(err, -EINVAL, "memory.oom.group: %d is not 0 or 1", l->oom_group);
		return -EINVAL;
	}
	if (c->layout == CG_LAYOUT_HYBRID)
		return set_hybrid(c, l, err);
	cg_limits v2 = *l;
	if (v2.cpu_shares != CG_UNSET && v2.cpu_weight == CG_UNSET) /* runc's mapping */
		v2.cpu_weight = 1 + ((v2.cpu_shares - 2) * 9999) / 262142;
	return set_v2(c, &v2, err);
}
