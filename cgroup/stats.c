/*
 * stats.c — reading a cgroup's accounting: memory (v2 files, or the v1
 * memory controller's on hybrid hosts), memory.events, memory.stat,
 * cpu.stat, pids, io.stat and the pressure files. Every file stays open
 * and is read with one pread.
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* v1 reports "no limit" as PAGE_COUNTER_MAX pages: anything this big. */
#define V1_UNLIMITED (INT64_C(1) << 62)

typedef struct {
	const char *key;
	int64_t *val;
} kv_want;

/* Fill every wanted key found in "key value" text; missing ones keep their
 * value. Lines we do not want may have any shape. */
static void scan_kv(const char *text, const kv_want *w, int n) {
	for (const char *line = text; *line;) {
		size_t len = strcspn(line, "\n");
		const char *sp = memchr(line, ' ', len);
		if (sp)
			for (int i = 0; i < n; i++)
				if ((size_t)(sp - line) == strlen(w[i].key) &&
				    !strncmp(line, w[i].key, (size_t)(sp - line))) {
					*w[i].val = strtoll(sp + 1, NULL, 10);
					break;
				}
		line += len + (line[len] == '\n');
	}
}

/* An optional file: -1 when the kernel has none. */
static int read_opt(cg *c, int tree, const char *file, int64_t *v, cg_err *err) {
	cg_err e;
	int rc = cg__read_int(c, tree, file, v, &e);
	if (rc == -ENOENT || rc == -ENOTSUP) {
		*v = -1;
		return 0;
	}
	if (rc && err)
		*err = e;
	return rc;
}

static int64_t v1_limit(int64_t v) {
	return v >= V1_UNLIMITED ? CG_NOLIMIT : v;
}

static int memory_tree(cg *c, cg_err *err) {
	int t = cg__tree_for(c, CG_MEMORY);
	if (t < 0)
		cg__err(err, -ENOTSUP, "%s: this host has no memory controller", cg_path(c));
	return t;
}

int cg_read_memory(cg *c, cg_memory *m, cg_err *err) {
	int t = memory_tree(c, err), rc;
	if (t < 0)
		return -ENOTSUP;
	m->kernel_current = m->kernel_peak = m->kernel_max = m->kernel_failcnt = -1;
	if (t == CG_TREE_UNIFIED) {
		if ((rc = cg__read_int(c, t, "memory.current", &m->current, err))) {
			if (rc == -ENOENT && err)
				snprintf(err->msg + strlen(err->msg),
				         sizeof err->msg - strlen(err->msg),
				         " (the memory controller is not enabled for this cgroup)");
			return rc;
		}
		if ((rc = read_opt(c, t, "memory.peak", &m->peak, err)) ||
		    (rc = read_opt(c, t, "memory.high", &m->high, err)) ||
		    (rc = read_opt(c, t, "memory.max", &m->max, err)) ||
		    (rc = read_opt(c, t, "memory.low", &m->low, err)) ||
		    (rc = read_opt(c, t, "memory.min", &m->min, err)) ||
		    (rc = read_opt(c, t, "memory.swap.current", &m->swap_current, err)) ||
		    (rc = read_opt(c, t, "memory.swap.max", &m->swap_max, err)))
			return rc;
		return 0;
	}
	int64_t memsw_usage, memsw_limit;
	if ((rc = cg__read_int(c, t, "memory.usage_in_bytes", &m->current, err)) ||
	    (rc = cg__read_int(c, t, "memory.max_usage_in_bytes", &m->peak, err)) ||
	    (rc = cg__read_int(c, t, "memory.soft_limit_in_bytes", &m->high, err)) ||
	    (rc = cg__read_int(c, t, "memory.limit_in_bytes", &m->max, err)) ||
	    (rc = read_opt(c, t, "memory.memsw.usage_in_bytes", &memsw_usage, err)) ||
	    (rc = read_opt(c, t, "memory.memsw.limit_in_bytes", &memsw_limit, err)) ||
	    (rc = read_opt(c, t, "memory.kmem.usage_in_bytes", &m->kernel_current, err)) ||
	    (rc = read_opt(c, t, "memory.kmem.max_usage_in_bytes", &m->kernel_peak, err)) ||
	    (rc = read_opt(c, t, "memory.kmem.limit_in_bytes", &m->kernel_max, err)) ||
	    (rc = read_opt(c, t, "memory.kmem.failcnt", &m->kernel_failcnt, err)))
		return rc;
	if (m->kernel_max >= 0)
		m->kernel_max = v1_limit(m->kernel_max);
	m->high = v1_limit(m->high);
	m->max = v1_limit(m->max);
	m->low = m->min = -1;
	m->swap_current = memsw_usage < 0 ? -1 : memsw_usage - m->current;
	m->swap_max = memsw_limit < 0 ? -1
	              : v1_limit(memsw_limit) == CG_NOLIMIT || m->max == CG_NOLIMIT
	                  ? CG_NOLIMIT
	                  : memsw_limit - m->max;
	return 0;
}

int cg_read_memory_events(cg *c, bool local, cg_memory_events *e, cg_err *err) {
	int t = memory_tree(c, err);
	if (t < 0)
		return -ENOTSUP;
	char buf[512];
	memset(e, 0, sizeof *e);
	if (t == CG_TREE_UNIFIED) {
		ssize_t r = cg__read(c, t, local ? "memory.events.local" : "memory.events", buf,
		                     sizeof buf, err);
		if (r < 0)
			return (int)r;
		int64_t max = -1;
		kv_want w[] = {{"low", &e->low},
		               {"high", &e->high},
		               {"max", &max},
		               {"oom", &e->oom},
		               {"oom_kill", &e->oom_kill},
		               {"oom_group_kill", &e->oom_group_kill}};
		scan_kv(buf, w, 6);
		if (max < 0) {
			cg__err(err, -EINVAL, "%s/memory.events has no \"max\" line: \"%.60s\"",
			        cg_path(c), buf);
			return -EINVAL;
		}
		e->max = max;
		return 0;
	}
	int rc = cg__read_int(c, t, "memory.failcnt", &e->max, err);
	if (rc)
		return rc;
	ssize_t r = cg__read(c, t, "memory.oom_control", buf, sizeof buf, err);
	if (r < 0)
		return (int)r;
	kv_want w[] = {{"oom_kill", &e->oom_kill}};
	scan_kv(buf, w, 1);
	e->oom = e->oom_kill;
	return 0;
}

int cg_read_memory_stat(cg *c, cg_memory_stat *s, cg_err *err) {
	int t = memory_tree(c, err);
	if (t < 0)
		return -ENOTSUP;
	char buf[8192];
	ssize_t r = cg__read(c, t, "memory.stat", buf, sizeof buf, err);
	if (r < 0)
		return (int)r;
	int64_t *all[] = {&s->anon,
	                  &s->file,
	                  &s->kernel,
	                  &s->shmem,
	                  &s->file_dirty,
	                  &s->file_writeback,
	                  &s->sock,
	                  &s->pgfault,
	                  &s->pgmajfault,
	                  &s->pgscan,
	                  &s->pgsteal,
	                  &s->workingset_refault_anon,
	                  &s->workingset_refault_file,
	                  &s->inactive_anon,
	                  &s->active_anon,
	                  &s->inactive_file,
	                  &s->active_file,
	                  &s->file_mapped,
	                  &s->unevictable};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		*all[i] = -1;
	if (t == CG_TREE_UNIFIED) {
		kv_want w[] = {{"anon", &s->anon},
		               {"file", &s->file},
		               {"kernel", &s->kernel},
		               {"shmem", &s->shmem},
		               {"file_dirty", &s->file_dirty},
		               {"file_writeback", &s->file_writeback},
		               {"sock", &s->sock},
		               {"pgfault", &s->pgfault},
		               {"pgmajfault", &s->pgmajfault},
		               {"pgscan", &s->pgscan},
		               {"pgsteal", &s->pgsteal},
		               {"workingset_refault_anon", &s->workingset_refault_anon},
		               {"workingset_refault_file", &s->workingset_refault_file},
		               {"inactive_anon", &s->inactive_anon},
		               {"active_anon", &s->active_anon},
		               {"inactive_file", &s->inactive_file},
		               {"active_file", &s->active_file},
		               {"file_mapped", &s->file_mapped},
		               {"unevictable", &s->unevictable}};
		scan_kv(buf, w, (int)(sizeof w / sizeof w[0]));
	} else {
		/* v1: the total_ keys include descendants, as v2's do */
		kv_want w[] = {{"total_rss", &s->anon},
		               {"total_cache", &s->file},
		               {"total_shmem", &s->shmem},
		               {"total_dirty", &s->file_dirty},
		               {"total_writeback", &s->file_writeback},
		               {"total_pgfault", &s->pgfault},
		               {"total_pgmajfault", &s->pgmajfault},
		               {"total_workingset_refault_anon", &s->workingset_refault_anon},
		               {"total_workingset_refault_file", &s->workingset_refault_file},
		               {"total_inactive_anon", &s->inactive_anon},
		               {"total_active_anon", &s->active_anon},
		               {"total_inactive_file", &s->inactive_file},
		               {"total_active_file", &s->active_file},
		               {"total_mapped_file", &s->file_mapped},
		               {"total_unevictable", &s->unevictable}};
		scan_kv(buf, w, (int)(sizeof w / sizeof w[0]));
		read_opt(c, t, "memory.kmem.usage_in_bytes", &s->kernel, NULL);
	}
	if (s->anon < 0) {
		cg__err(err, -EINVAL, "%s: memory.stat has no %s line", c->dirs[t],
		        t == CG_TREE_UNIFIED ? "\"anon\"" : "\"total_rss\"");
		return -EINVAL;
	}
	return 0;
}

int cg_read_cpu_stat(cg *c, cg_cpu_stat *s, cg_err *err) {
	char buf[1024];
	ssize_t r = cg_read(c, "cpu.stat", buf, sizeof buf, err);
	if (r < 0)
		return (int)r;
	s->usage_usec = s->user_usec = s->system_usec = -1;
	s->nr_periods = s->nr_throttled = s->throttled_usec = 0;
	kv_want w[] = {{"usage_usec", &s->usage_usec},     {"user_usec", &s->user_usec},
	               {"system_usec", &s->system_usec},   {"nr_periods", &s->nr_periods},
	               {"nr_throttled", &s->nr_throttled}, {"throttled_usec", &s->throttled_usec}};
	scan_kv(buf, w, 6);
	if (s->usage_usec < 0) {
		cg__err(err, -EINVAL, "%s/cpu.stat has no usage_usec line", cg_path(c));
		return -EINVAL;
	}
	if (cg__tree_for(c, CG_CPU) == CG_TREE_CPU) {
		int64_t ns = 0;
		r = cg__read(c, CG_TREE_CPU, "cpu.stat", buf, sizeof buf, err);
		if (r < 0)
			return (int)r;
		kv_want v1[] = {{"nr_periods", &s->nr_periods},
		                {"nr_throttled", &s->nr_throttled},
		                {"throttled_time", &ns}};
		scan_kv(buf, v1, 3);
		s->throttled_usec = ns / 1000;
	}
	return 0;
}

int cg_read_cpuacct(cg *c, cg_cpuacct *a, cg_err *err) {
	memset(a, 0, sizeof *a);
	if (c->layout != CG_LAYOUT_HYBRID || !c->dirs[CG_TREE_CPUACCT][0]) {
		cg__err(err, -ENOTSUP, "%s: no v1 cpuacct hierarchy", cg_path(c));
		return -ENOTSUP;
	}
	int rc = cg__read_int(c, CG_TREE_CPUACCT, "cpuacct.usage", &a->total_ns, err);
	if (rc)
		return rc;
	if (read_opt(c, CG_TREE_CPUACCT, "cpuacct.usage_user", &a->user_ns, NULL) ||
	    a->user_ns < 0 ||
	    read_opt(c, CG_TREE_CPUACCT, "cpuacct.usage_sys", &a->kernel_ns, NULL) ||
	    a->kernel_ns < 0) {
		/* older kernels: "user TICKS\nsystem TICKS" in USER_HZ */
		char buf[128];
		int64_t user = 0, sys = 0;
		if (cg__read(c, CG_TREE_CPUACCT, "cpuacct.stat", buf, sizeof buf, NULL) > 0) {
			kv_want w[] = {{"user", &user}, {"system", &sys}};
			scan_kv(buf, w, 2);
		}
		long hz = sysconf(_SC_CLK_TCK);
		int64_t ns_per_tick = hz > 0 ? 1000000000 / hz : 0;
		a->user_ns = user * ns_per_tick, a->kernel_ns = sys * ns_per_tick;
	}
	char buf[CG_MAX_CPUS * 21 + 2];
	if (cg__read(c, CG_TREE_CPUACCT, "cpuacct.usage_percpu", buf, sizeof buf, NULL) > 0) {
		char *p = buf, *end;
		for (; a->ncpu < CG_MAX_CPUS; p = end) {
			unsigned long long v = strtoull(p, &end, 10);
			if (end == p)
				break;
			a->per_cpu[a->ncpu++] = v;
		}
	}
	return 0;
}

int cg_read_pids(cg *c, int64_t *current, int64_t *max, cg_err *err) {
	int t = cg__tree_for(c, CG_PIDS);
	if (t < 0) {
		cg__err(err, -ENOTSUP, "%s: this host has no pids controller", cg_path(c));
		return -ENOTSUP;
	}
	int rc = cg__read_int(c, t, "pids.current", current, err);
	if (rc == -ENOENT && err)
		snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
		         " (the pids controller is not enabled for this cgroup)");
	return rc ? rc : cg__read_int(c, t, "pids.max", max, err);
}

int cg_read_io_stat(cg *c, cg_io_stat *s, cg_err *err) {
	if (c->layout == CG_LAYOUT_HYBRID) {
		cg__err(err, -ENOTSUP,
		        "%s: io.stat needs the v2 io controller (this host keeps blkio on v1)",
		        cg_path(c));
		return -ENOTSUP;
	}
	char buf[4096];
	ssize_t r = cg_read(c, "io.stat", buf, sizeof buf, err);
	if (r < 0)
		return (int)r;
	memset(s, 0, sizeof *s);
	/* "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device */
	static const char *const keys[] = {
	    "rbytes=", "wbytes=", "rios=", "wios=", "dbytes=", "dios="};
	int64_t *vals[] = {&s->rbytes, &s->wbytes, &s->rios, &s->wios, &s->dbytes, &s->dios};
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
		for (int i = 0; i < 6; i++)
			if (!strncmp(tok, keys[i], strlen(keys[i])))
				*vals[i] += strtoll(tok + strlen(keys[i]), NULL, 10);
	return 0;
}

const char *cg_resource_name(cg_resource r) {
	switch (r) {
	case CG_RES_CPU:
		return "cpu";
	case CG_RES_MEMORY:
		return "memory";
	case CG_RES_IO:
		return "io";
	default:
		return "?";
	}
}

int cg_read_pressure(cg *c, cg_resource r, cg_pressure *p, cg_err *err) {
	char file[32], buf[512];
	snprintf(file, sizeof file, "%s.pressure", cg_resource_name(r));
	ssize_t n = cg_read(c, file, buf, sizeof buf, err);
	if (n == -ENOENT && err)
		snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
		         " (PSI is off: psi=0 on the kernel command line or cgroup.pressure is 0)");
	if (n < 0)
		return (int)n;
	return cg_parse_pressure(buf, p, err);
}
