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
#include <unistd.h>

void cg_limits_init(cg_limits *l) {
	l->memory_max = l->memory_high = l->memory_low = l->memory_min = l->swap_max = CG_UNSET;
	l->oom_group = CG_UNSET;
	l->cpu_quota_us = l->cpu_period_us = l->cpu_weight = l->cpu_shares = l->pids_max = CG_UNSET;
	l->io_max = NULL;
	l->cpuset_cpus = l->cpuset_mems = NULL;
	l->swappiness = l->blkio_weight = CG_UNSET;
	l->throttles = NULL;
	l->hugepages = NULL;
	l->nthrottles = l->nhugepages = 0;
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

/* blkio weights (v1, BFQ, v2) and runc's mapping of 10..1000 onto 1..10000 */
#define BLKIO_WEIGHT_MIN 10
#define BLKIO_WEIGHT_MAX 1000
#define IO_WEIGHT_MAX    10000

static bool has_file(const cg *c, int tree, const char *file) {
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", c->dirs[tree], file);
	return access(path, F_OK) == 0;
}

/* A cpuset list the kernel refused: say what the parent offers. The
 * message opens with the file's name (callers map it to their field). */
static int cpuset_refused(cg *c, int t, const char *kind, const char *want, int rc, cg_err *err) {
	char path[PATH_MAX + 64], have[CG_CPUSET_LIST_MAX] = "?", why[sizeof err->msg];
	bool v2 = t == CG_TREE_UNIFIED;
	snprintf(path, sizeof path, "%s/../cpuset.%s%s", c->dirs[t], v2 ? kind : "effective_",
	         v2 ? ".effective" : kind);
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(have, sizeof have, f))
			snprintf(have, sizeof have, "?");
		have[strcspn(have, "\n")] = 0;
		fclose(f);
	}
	snprintf(why, sizeof why, "%s", err->msg);
	cg__err(err, rc, "cpuset.%s \"%s\": not within the parent cgroup's %s %s (%s)", kind, want,
	        kind, have, why);
	return rc;
}

static int set_cpuset(cg *c, const cg_limits *l, cg_err *err) {
	int rc = cg_enable(c, CG_CPUSET, err), t = cg__tree_for(c, CG_CPUSET);
	if (rc)
		return rc;
	/* mems first: a v1 cpuset takes cpus only with mems in place */
	if (l->cpuset_mems && (rc = cg__write(c, t, "cpuset.mems", l->cpuset_mems, err)))
		return cpuset_refused(c, t, "mems", l->cpuset_mems, rc, err);
	if (l->cpuset_cpus && (rc = cg__write(c, t, "cpuset.cpus", l->cpuset_cpus, err)))
		return cpuset_refused(c, t, "cpus", l->cpuset_cpus, rc, err);
	return 0;
}

static int set_blkio_weight(cg *c, int t, int64_t w, cg_err *err) {
	char v[32];
	snprintf(v, sizeof v, "%" PRId64, w);
	if (t != CG_TREE_UNIFIED) {
		const char *f = has_file(c, t, "blkio.weight")       ? "blkio.weight"
		                : has_file(c, t, "blkio.bfq.weight") ? "blkio.bfq.weight"
		                                                     : NULL;
		if (!f) {
			cg__err(err, -ENOTSUP,
			        "blkio weight %s: this kernel's blkio hierarchy has neither "
			        "blkio.weight nor blkio.bfq.weight (no CFQ or BFQ I/O scheduler)",
			        v);
			return -ENOTSUP;
		}
		return cg__write(c, t, f, v, err);
	}
	if (has_file(c, t, "io.bfq.weight"))
		return cg__write(c, t, "io.bfq.weight", v, err);
	snprintf(v, sizeof v, "%" PRId64,
	         1 + (w - BLKIO_WEIGHT_MIN) * (IO_WEIGHT_MAX - 1) /
	                 (BLKIO_WEIGHT_MAX - BLKIO_WEIGHT_MIN));
	return cg__write(c, t, "io.weight", v, err);
}

static int set_throttle(cg *c, int t, const cg_io_throttle *th, cg_err *err) {
	static const char *const v1_file[] = {
	    "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
	    "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
	static const char *const v2_key[] = {"rbps", "wbps", "riops", "wiops"};
	char v[96];
	if ((unsigned)th->kind > CG_THROTTLE_WIOPS) {
		cg__err(err, -EINVAL, "io throttle: unknown kind %d", (int)th->kind);
		return -EINVAL;
	}
	if (t != CG_TREE_UNIFIED) {
		snprintf(v, sizeof v, "%" PRId64 ":%" PRId64 " %" PRIu64, th->major, th->minor,
		         th->rate);
		return cg__write(c, t, v1_file[th->kind], v, err);
	}
	if (th->rate)
		snprintf(v, sizeof v, "%" PRId64 ":%" PRId64 " %s=%" PRIu64, th->major, th->minor,
		         v2_key[th->kind], th->rate);
	else
		snprintf(v, sizeof v, "%" PRId64 ":%" PRId64 " %s=max", th->major, th->minor,
		         v2_key[th->kind]);
	return cg__write(c, t, "io.max", v, err);
}

static int set_blkio(cg *c, const cg_limits *l, cg_err *err) {
	int rc = cg_enable(c, CG_IO, err), t = cg__tree_for(c, CG_IO);
	if (rc)
		return rc;
	if (l->blkio_weight != CG_UNSET && (rc = set_blkio_weight(c, t, l->blkio_weight, err)))
		return rc;
	for (int i = 0; i < l->nthrottles; i++)
		if ((rc = set_throttle(c, t, &l->throttles[i], err)))
			return rc;
	return 0;
}

static int set_hugetlb(cg *c, const cg_limits *l, cg_err *err) {
	int rc = cg_enable(c, CG_HUGETLB, err), t = cg__tree_for(c, CG_HUGETLB);
	if (rc)
		return rc;
	for (int i = 0; i < l->nhugepages; i++) {
		const cg_hugepage *h = &l->hugepages[i];
		char file[64], v[32];
		if (!h->size[0] || h->size[strspn(h->size, "0123456789KMGB")]) {
			cg__err(err, -EINVAL, "hugepage size \"%s\": not like \"2MB\"", h->size);
			return -EINVAL;
		}
		snprintf(file, sizeof file, "hugetlb.%s.%s", h->size,
		         t == CG_TREE_UNIFIED ? "max" : "limit_in_bytes");
		if (!has_file(c, t, file)) {
			cg__err(err, -ENOTSUP, "hugepage size %s: this host has no %s/%s", h->size,
			        c->dirs[t], file);
			return -ENOTSUP;
		}
		snprintf(v, sizeof v, "%" PRId64, h->limit);
		if ((rc = cg__write(c, t, file, v, err)))
			return rc;
	}
	return 0;
}

/* cpuset, swappiness, blkio and hugetlb: the same on either layout, in
 * whichever tree holds the controller. */
static int set_more(cg *c, const cg_limits *l, cg_err *err) {
	int rc;
	if ((l->cpuset_cpus || l->cpuset_mems) && (rc = set_cpuset(c, l, err)))
		return rc;
	if (l->swappiness != CG_UNSET) {
		int t = cg__tree_for(c, CG_MEMORY);
		if (t == CG_TREE_UNIFIED) {
			cg__err(err, -ENOTSUP, "memory.swappiness has no cgroup v2 equivalent");
			return -ENOTSUP;
		}
		char v[32];
		snprintf(v, sizeof v, "%" PRId64, l->swappiness);
		if ((rc = cg_enable(c, CG_MEMORY, err)) ||
		    (rc = cg__write(c, t, "memory.swappiness", v, err)))
			return rc;
	}
	if ((l->blkio_weight != CG_UNSET || l->nthrottles) && (rc = set_blkio(c, l, err)))
		return rc;
	return l->nhugepages ? set_hugetlb(c, l, err) : 0;
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
	    (rc = check_range("cpu.shares", l->cpu_shares, 2, 262144, err)) ||
	    (rc = check_range("memory.swappiness", l->swappiness, 0, 100, err)) ||
	    (rc = check_range("blkio weight", l->blkio_weight, BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX,
	                      err)))
		return rc;
	if (l->oom_group != CG_UNSET && l->oom_group != 0 && l->oom_group != 1) {
		cg__err(err, -EINVAL, "memory.oom.group: %d is not 0 or 1", l->oom_group);
		return -EINVAL;
	}
	/* cpuset first: a pinned container never runs unpinned under new limits */
	if ((rc = set_more(c, l, err)))
		return rc;
	if (c->layout == CG_LAYOUT_HYBRID)
		return set_hybrid(c, l, err);
	cg_limits v2 = *l;
	if (v2.cpu_shares != CG_UNSET && v2.cpu_weight == CG_UNSET) /* runc's mapping */
		v2.cpu_weight = 1 + ((v2.cpu_shares - 2) * 9999) / 262142;
	return set_v2(c, &v2, err);
}
