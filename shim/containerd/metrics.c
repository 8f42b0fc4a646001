/*
 * metrics.c — Stats' Metrics message from a container's cgroup (see
 * metrics.h): which file feeds which field, per layout. Every field is
 * read from the cgroup at the call; nothing is cached.
 */
#include "metrics.h"

#include "containerd/metrics.pb-c.h"
#include "containerd/metrics_v1.pb-c.h"

#include <stdlib.h>

/* what v1 reads for "no limit" (PAGE_COUNTER_MAX pages of 4 KiB), as runc's
 * shim reports it */
#define V1_NOLIMIT_BYTES UINT64_C(0x7ffffffffffff000)

static uint64_t u64(int64_t v) {
	return v > 0 ? (uint64_t)v : 0;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n) {
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*n ? *n : 1);
	if (buf)
		protobuf_c_message_pack(m, buf);
	return buf;
}

/* io.containerd.cgroups.v2.Metrics (pure v2 hosts), with what the cgroup
 * still has: a part that cannot be read (the cgroup gone after the exit)
 * is left out, never an error. */
static uint8_t *stats_v2(cg *g, size_t *n) {
	cg_err ce = {0};
	Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
	Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
	Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
	Io__Containerd__Cgroups__V2__MemoryStat mem =
	    IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
	Io__Containerd__Cgroups__V2__MemoryEvents mev =
	    IO__CONTAINERD__CGROUPS__V2__MEMORY_EVENTS__INIT;
	int64_t cur, max;
	if (cg_read_pids(g, &cur, &max, &ce) == 0) {
		pids.current = u64(cur), pids.limit = u64(max);
		m.pids = &pids;
	}
	cg_cpu_stat cs;
	if (cg_read_cpu_stat(g, &cs, &ce) == 0) {
		cpu.usage_usec = u64(cs.usage_usec), cpu.user_usec = u64(cs.user_usec);
		cpu.system_usec = u64(cs.system_usec), cpu.nr_periods = u64(cs.nr_periods);
		cpu.nr_throttled = u64(cs.nr_throttled),
		cpu.throttled_usec = u64(cs.throttled_usec);
		m.cpu = &cpu;
	}
	cg_memory mm;
	if (cg_read_memory(g, &mm, &ce) == 0) {
		mem.usage = u64(mm.current), mem.usage_limit = u64(mm.max);
		mem.swap_usage = u64(mm.swap_current), mem.swap_limit = u64(mm.swap_max);
		cg_memory_stat st;
		if (cg_read_memory_stat(g, &st, &ce) == 0) {
			mem.anon = u64(st.anon), mem.file = u64(st.file), mem.shmem = u64(st.shmem);
			mem.file_dirty = u64(st.file_dirty),
			mem.file_writeback = u64(st.file_writeback);
			mem.sock = u64(st.sock), mem.pgfault = u64(st.pgfault),
			mem.pgmajfault = u64(st.pgmajfault);
			mem.file_mapped = u64(st.file_mapped),
			mem.unevictable = u64(st.unevictable);
			mem.inactive_anon = u64(st.inactive_anon),
			mem.active_anon = u64(st.active_anon);
			mem.inactive_file = u64(st.inactive_file),
			mem.active_file = u64(st.active_file);
		}
		m.memory = &mem;
	}
	cg_memory_events me;
	if (cg_read_memory_events(g, false, &me, &ce) == 0) {
		mev.low = u64(me.low), mev.high = u64(me.high), mev.max = u64(me.max);
		mev.oom = u64(me.oom), mev.oom_kill = u64(me.oom_kill);
		m.memory_events = &mev;
	}
	return pack(&m.base, n);
}

/* io.containerd.cgroups.v1.Metrics (v1/hybrid hosts, as runc's shim there
 * and as containerd's CRI reads them): CPU from cpuacct, throttling from
 * v1 cpu.stat, memory from the v1 memory controller. */
static uint8_t *stats_v1(cg *g, size_t *n) {
	cg_err ce = {0};
	Io__Containerd__Cgroups__V1__Metrics m = IO__CONTAINERD__CGROUPS__V1__METRICS__INIT;
	Io__Containerd__Cgroups__V1__PidsStat pids = IO__CONTAINERD__CGROUPS__V1__PIDS_STAT__INIT;
	Io__Containerd__Cgroups__V1__CPUStat cpu = IO__CONTAINERD__CGROUPS__V1__CPUSTAT__INIT;
	Io__Containerd__Cgroups__V1__CPUUsage usage = IO__CONTAINERD__CGROUPS__V1__CPUUSAGE__INIT;
	Io__Containerd__Cgroups__V1__Throttle thr = IO__CONTAINERD__CGROUPS__V1__THROTTLE__INIT;
	Io__Containerd__Cgroups__V1__MemoryStat mem =
	    IO__CONTAINERD__CGROUPS__V1__MEMORY_STAT__INIT;
	Io__Containerd__Cgroups__V1__MemoryEntry
	    mu = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT,
	    sw = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT,
	    ke = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
	Io__Containerd__Cgroups__V1__MemoryOomControl oom =
	    IO__CONTAINERD__CGROUPS__V1__MEMORY_OOM_CONTROL__INIT;
	int64_t cur, max;
	if (cg_read_pids(g, &cur, &max, &ce) == 0) {
		pids.current = u64(cur), pids.limit = u64(max);
		m.pids = &pids;
	}
	cg_cpuacct a;
	if (cg_read_cpuacct(g, &a, &ce) == 0) {
		usage.total = u64(a.total_ns), usage.user = u64(a.user_ns);
		usage.kernel = u64(a.kernel_ns);
		usage.per_cpu = a.per_cpu, usage.n_per_cpu = (size_t)a.ncpu;
		cpu.usage = &usage;
		m.cpu = &cpu;
	}
	cg_cpu_stat cs;
	if (cg_read_cpu_stat(g, &cs, &ce) == 0) {
		thr.periods = u64(cs.nr_periods), thr.throttled_periods = u64(cs.nr_throttled);
		thr.throttled_time = u64(cs.throttled_usec) * 1000;
		cpu.throttling = &thr;
		m.cpu = &cpu;
	}
	cg_memory mm;
	if (cg_read_memory(g, &mm, &ce) == 0) {
		mu.usage = u64(mm.current), mu.max = u64(mm.peak);
		mu.limit = mm.max == CG_NOLIMIT ? V1_NOLIMIT_BYTES : u64(mm.max);
		sw.usage = u64(mm.swap_current);
		sw.limit = mm.swap_max == CG_NOLIMIT ? V1_NOLIMIT_BYTES : u64(mm.swap_max);
		mem.usage = &mu, mem.swap = &sw;
		if (mm.kernel_current >= 0) { /* the CRI's container_memory_kernel_usage */
			ke.usage = u64(mm.kernel_current), ke.max = u64(mm.kernel_peak);
			ke.limit =
			    mm.kernel_max == CG_NOLIMIT ? V1_NOLIMIT_BYTES : u64(mm.kernel_max);
			ke.failcnt = u64(mm.kernel_failcnt);
			mem.kernel = &ke;
		}
		cg_memory_stat st;
		if (cg_read_memory_stat(g, &st, &ce) == 0) {
			mem.total_rss = u64(st.anon), mem.total_cache = u64(st.file);
			mem.total_mapped_file = u64(st.file_mapped),
			mem.total_dirty = u64(st.file_dirty);
			mem.total_writeback = u64(st.file_writeback);
			mem.total_pg_fault = u64(st.pgfault),
			mem.total_pg_maj_fault = u64(st.pgmajfault);
			mem.total_inactive_anon = u64(st.inactive_anon);
			mem.total_active_anon = u64(st.active_anon);
			mem.total_inactive_file = u64(st.inactive_file);
			mem.total_active_file = u64(st.active_file);
			mem.total_unevictable = u64(st.unevictable);
		}
		m.memory = &mem;
	}
	cg_memory_events me;
	if (cg_read_memory_events(g, false, &me, &ce) == 0) {
		oom.oom_kill = u64(me.oom_kill);
		m.memory_oom_control = &oom;
	}
	return pack(&m.base, n);
}

uint8_t *metrics_pack(cg *g, cg_layout layout, size_t *n, const char **type_url) {
	bool v1 = layout != CG_LAYOUT_V2;
	*type_url = v1 ? METRICS_V1_TYPE : METRICS_TYPE;
	return v1 ? stats_v1(g, n) : stats_v2(g, n);
}
