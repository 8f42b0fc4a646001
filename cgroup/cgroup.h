/*
 * cgroup.h — moonshim's view of cgroups (prefix cg_): the host's layout,
 * creating and limiting a cgroup, reading its accounting, acting on it
 * (kill, freeze, reclaim), and watching it: change notifications and PSI
 * pressure as goroutines parked on the runtime's netpoller.
 *
 * Layouts: pure v2 (one cgroup2 tree with every controller: most systemd
 * hosts), hybrid (cgroup2 at .../unified for PSI, kill, freeze and events,
 * while memory, cpu and pids accounting live on v1 hierarchies: this
 * project's machines), and v1-only, which moonshim refuses: it has no PSI,
 * no cgroup.events and no cgroup.kill.
 *
 * Errors: functions return 0 or -errno and fill a cg_err whose message says
 * which file or value was wrong.
 */
#ifndef MOONSHIM_CGROUP_H
#define MOONSHIM_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rt.h"

typedef struct cg_err {
	int code; /* -errno */
	char msg[512];
} cg_err;

typedef enum { CG_LAYOUT_V2 = 1, CG_LAYOUT_HYBRID, CG_LAYOUT_V1 } cg_layout;

/* The other v1 hierarchies a container joins on a hybrid host, as runc
 * does (devices is the device rules' own, shim/oci/devices.c). cpuset is
 * made usable first: an empty cpuset.cpus/.mems is copied from the parent,
 * since v1 refuses tasks into a cpuset without them. */
typedef enum {
	CG_V1_CPUSET = 0,
	CG_V1_CPUACCT,
	CG_V1_BLKIO,
	CG_V1_HUGETLB,
	CG_V1_FREEZER,
	CG_V1_NET_CLS,
	CG_V1_NET_PRIO,
	CG_V1_PERF_EVENT,
	CG_V1_MISC,
	CG_V1_RDMA,
	CG_V1_SYSTEMD, /* the named hierarchy "name=systemd" */
	CG_V1_MORE
} cg_v1_hier;
/* The mount option naming a hierarchy ("cpuset", ..., "name=systemd"). */
const char *cg_v1_hier_name(cg_v1_hier h);

typedef struct cg_host {
	cg_layout layout;
	char unified[PATH_MAX];   /* the cgroup2 mount ("" for v1-only) */
	char v1_memory[PATH_MAX]; /* v1 hierarchies, "" when absent (hybrid only) */
	char v1_cpu[PATH_MAX];
	char v1_pids[PATH_MAX];
	char v1_more[CG_V1_MORE][PATH_MAX]; /* the others, by cg_v1_hier; "" when absent */
	char controllers[256];              /* the v2 root's cgroup.controllers */
} cg_host;

/* Read `mounts` (normally /proc/self/mounts) and classify the host. A
 * v1-only host is reported with layout CG_LAYOUT_V1 and -ENOTSUP. */
int cg_host_detect(cg_host *h, const char *mounts, cg_err *err);
const char *cg_layout_name(cg_layout l);
bool cg_host_has_controller(const cg_host *h, const char *name); /* on the v2 tree */

/* One line of a pressure file: "some avg10=0.12 avg60=0.00 avg300=0.00 total=1234" */
typedef struct cg_pressure_line {
	bool present;
	double avg10, avg60, avg300; /* percent */
	uint64_t total;              /* microseconds stalled */
} cg_pressure_line;
typedef struct cg_pressure {
	cg_pressure_line some, full;
} cg_pressure;
/* Parse a whole pressure file (cpu.pressure has no "full" before 5.13). */
int cg_parse_pressure(const char *text, cg_pressure *out, cg_err *err);

/* "key value" lines (cgroup.events, memory.events, memory.stat, cpu.stat):
 * the value of `key`, or -ENOENT; a malformed line is -EINVAL. */
int cg_parse_kv(const char *text, const char *key, int64_t *value, cg_err *err);

/* ─── A cgroup ─────────────────────────────────────────────────────────
 * Opened by its path relative to the roots ("moonshim/ctr1"): the unified
 * directory always, and on a hybrid host the same path under the v1
 * memory, cpu and pids hierarchies. Files are opened once and read with
 * pread. */

typedef struct cg cg;
/* create: mkdir -p in every hierarchy and, on v2, enable in the parents
 * every controller of {memory, cpu, pids, io} the root offers. Without
 * create the unified directory must exist; v1 ones are used if they do. */
cg *cg_open(const cg_host *h, const char *rel, bool create, cg_err *err);
void cg_close(cg *c);
const char *cg_path(const cg *c); /* the unified directory */
/* Move pid into the cgroup (every hierarchy it lives in). */
int cg_attach(cg *c, pid_t pid, cg_err *err);
/* Whether cgroup.kill was written through this handle: Linux 6.18 then
 * SIGKILLs every clone3(CLONE_INTO_CGROUP) child of the cgroup, so make
 * new processes outside it and cg_attach them (as cg_fork_into does). */
bool cg_was_killed(const cg *c);
/* fork() into the cgroup with clone3(CLONE_INTO_CGROUP | CLONE_PIDFD):
 * returns 0 in the child, the pid in the parent (*pidfd set), -errno on
 * failure. On a hybrid host the parent then moves the child into the v1
 * hierarchies; a child that must start limited waits for its parent.
 * After cg_kill through this handle (Linux 6.18 kills clone3 children of
 * a killed cgroup) and on kernels without clone3, the child is forked and
 * moves itself in before either side returns. Like after fork() in a
 * threaded program, the child may only call async-signal-safe functions
 * (no malloc, no stdio) until it execs. */
pid_t cg_fork_into(cg *c, int *pidfd, cg_err *err);
/* Remove the directories (all processes must be gone: -EBUSY otherwise,
 * after 100 ms of retries for the kernel to release exited tasks). */
int cg_remove(cg *c, cg_err *err);
/* Read a file of the unified directory (kept open) into buf, NUL-ended;
 * returns the length. */
ssize_t cg_read(cg *c, const char *file, char *buf, size_t n, cg_err *err);
/* The fd of a unified file, opened once and kept (for the netpoller). */
int cg_fd(cg *c, const char *file, cg_err *err);

/* The longest cpuset list read or written ("0-3,8-11"). */
#define CG_CPUSET_LIST_MAX 1024
/* Controllers moonshim manages. */
enum { CG_MEMORY = 1, CG_CPU = 2, CG_PIDS = 4, CG_IO = 8, CG_CPUSET = 16, CG_HUGETLB = 32 };
/* Make the controllers usable in this cgroup: on v2, "+name" into every
 * ancestor's cgroup.subtree_control; on hybrid, each must have its v1
 * hierarchy (io: blkio), except hugetlb, which may be on the v2 tree
 * instead (then enabled as on v2). -ENOTSUP names the controller and what
 * the host offers. */
int cg_enable(cg *c, unsigned controllers, cg_err *err);

/* ─── Limits ───────────────────────────────────────────────────────────
 * Fields left at CG_UNSET are not touched; CG_NOLIMIT writes "max". On a
 * hybrid host they map onto v1: memory.max → memory.limit_in_bytes,
 * memory.high → memory.soft_limit_in_bytes (v1 cannot throttle; the
 * watcher reports crossings of it as "high" events), swap.max →
 * memory.memsw.limit_in_bytes (= max + swap), cpu.max → cfs_quota_us and
 * cfs_period_us, cpu.weight → cpu.shares, pids.max → v1 pids.max; memory.min,
 * memory.low, memory.oom.group and io.max have no v1 equivalent and fail
 * with -ENOTSUP when set. */
#define CG_UNSET   (-2)
#define CG_NOLIMIT (-1)
typedef enum {
	CG_THROTTLE_RBPS = 0,
	CG_THROTTLE_WBPS,
	CG_THROTTLE_RIOPS,
	CG_THROTTLE_WIOPS
} cg_throttle_kind;
typedef struct cg_io_throttle {
	int64_t major, minor;
	cg_throttle_kind kind;
	uint64_t rate; /* bytes or operations per second; 0: no limit */
} cg_io_throttle;
typedef struct cg_hugepage {
	char size[16]; /* as the kernel names it: "2MB", "1GB" */
	int64_t limit; /* bytes */
} cg_hugepage;
typedef struct cg_limits {
	int64_t memory_max, memory_high, memory_low, memory_min, swap_max; /* bytes */
	int oom_group;                                                     /* 0, 1, or CG_UNSET */
	int64_t cpu_quota_us;  /* cpu.max "$QUOTA $PERIOD"; CG_NOLIMIT: "max" */
	int64_t cpu_period_us; /* CG_UNSET: 100000 */
	int64_t cpu_weight;    /* 1..10000 */
	int64_t cpu_shares;    /* v1 cpu.shares 2..262144: as is on v1, as a weight on v2 */
	int64_t pids_max;
	const char *io_max; /* lines "MAJ:MIN rbps=N wbps=N riops=N wiops=N", or NULL */
	/* cpuset lists ("0-1,3"), NULL: unset. v1 cpuset / v2 cpuset.cpus, .mems */
	const char *cpuset_cpus, *cpuset_mems;
	int64_t swappiness;              /* v1 memory.swappiness 0..100; v2 has none (-ENOTSUP) */
	int64_t blkio_weight;            /* 10..1000: v1 blkio.weight (or blkio.bfq.weight); v2
	                                    io.bfq.weight, else io.weight mapped 1..10000 as runc */
	const cg_io_throttle *throttles; /* v1 blkio.throttle.*_device; v2 io.max */
	int nthrottles;
	const cg_hugepage *hugepages; /* v1 hugetlb.SIZE.limit_in_bytes; v2 hugetlb.SIZE.max */
	int nhugepages;
} cg_limits;
void cg_limits_init(cg_limits *l); /* everything CG_UNSET */
/* The CPU quota in cores (quota / period, the period 100 ms when unset);
 * 0 without a quota. */
double cg_limits_cpu_cores(const cg_limits *l);
/* Apply every set field; the first failure names the file and the value. */
int cg_set_limits(cg *c, const cg_limits *l, cg_err *err);

/* ─── Reads (CG_NOLIMIT for "max"; -1 where the host has no such value) ─ */

typedef struct cg_memory {
	int64_t current, peak, high, max, low, min, swap_current, swap_max;
	/* v1 kernel memory (memory.kmem.*: usage, max usage, limit, failcnt);
	 * -1 on v2 and where the kernel has no kmem accounting files */
	int64_t kernel_current, kernel_peak, kernel_max, kernel_failcnt;
} cg_memory;
int cg_read_memory(cg *c, cg_memory *m, cg_err *err);

/* memory.events. Hybrid hosts derive them from v1: max = memory.failcnt,
 * oom and oom_kill from memory.oom_control, high = 0 (the watcher counts
 * soft-limit crossings instead). */
typedef struct cg_memory_events {
	int64_t low, high, max, oom, oom_kill, oom_group_kill;
} cg_memory_events;
int cg_read_memory_events(cg *c, bool local, cg_memory_events *e, cg_err *err);

/* memory.stat by name (v1's total_* keys on hybrid hosts). */
typedef struct cg_memory_stat {
	int64_t anon, file, kernel, shmem, file_dirty, file_writeback, sock;
	int64_t pgfault, pgmajfault, pgscan, pgsteal;
	int64_t workingset_refault_anon, workingset_refault_file;
	int64_t inactive_anon, active_anon, inactive_file, active_file, file_mapped, unevictable;
} cg_memory_stat;
int cg_read_memory_stat(cg *c, cg_memory_stat *s, cg_err *err);

/* cpu.stat: usage from the unified tree, throttling from cpu.max's (or v1
 * cpu's) accounting. */
typedef struct cg_cpu_stat {
	int64_t usage_usec, user_usec, system_usec, nr_periods, nr_throttled, throttled_usec;
} cg_cpu_stat;
int cg_read_cpu_stat(cg *c, cg_cpu_stat *s, cg_err *err);

/* v1 cpuacct (hybrid hosts): usage in ns, in total, user and kernel
 * (cpuacct.usage_user/_sys, else cpuacct.stat's ticks), and per CPU (up to
 * CG_MAX_CPUS; ncpu says how many). -ENOTSUP without a cpuacct hierarchy. */
#define CG_MAX_CPUS 256
typedef struct cg_cpuacct {
	int64_t total_ns, user_ns, kernel_ns;
	int ncpu;
	uint64_t per_cpu[CG_MAX_CPUS];
} cg_cpuacct;
int cg_read_cpuacct(cg *c, cg_cpuacct *a, cg_err *err);

int cg_read_pids(cg *c, int64_t *current, int64_t *max, cg_err *err);

/* io.stat summed over devices (v2 only). */
typedef struct cg_io_stat {
	int64_t rbytes, wbytes, rios, wios, dbytes, dios;
} cg_io_stat;
int cg_read_io_stat(cg *c, cg_io_stat *s, cg_err *err);

typedef enum { CG_RES_CPU = 0, CG_RES_MEMORY, CG_RES_IO, CG_RES_N } cg_resource;
const char *cg_resource_name(cg_resource r); /* "cpu", "memory", "io" */
int cg_read_pressure(cg *c, cg_resource r, cg_pressure *p, cg_err *err);

/* cgroup.events "populated" and "frozen": 0 or 1, or -errno. */
int cg_populated(cg *c, cg_err *err);
int cg_frozen(cg *c, cg_err *err);

/* ─── Actions ──────────────────────────────────────────────────────────
 * cg_kill: SIGKILL through cgroup.kill (atomic against forks); any other
 * signal, or a kernel without cgroup.kill, freezes the tree, signals every
 * process in it and its descendants, and thaws it. Returns how many
 * processes were signalled through the fallback (0 with cgroup.kill). */
int cg_kill(cg *c, int sig, cg_err *err);
/* Write cgroup.freeze; completion is "frozen 1" in cgroup.events. */
int cg_freeze(cg *c, bool frozen, cg_err *err);
/* In a goroutine: freeze or thaw and park until cgroup.events agrees. */
int cg_freeze_wait(cg *c, bool frozen, int64_t deadline, cg_err *err);
/* memory.reclaim (v2, 5.19+): -EAGAIN if less than asked was reclaimed. */
int cg_reclaim(cg *c, int64_t bytes, cg_err *err);

/* ─── Watching ─────────────────────────────────────────────────────────
 * cg_watch_start spawns goroutines parked on the netpoller that send
 * cg_event values into `out` (a channel of cg_event the caller owns and
 * drains; a slow reader delays the watcher, never loses a change: counters
 * are diffed, so one event may carry several increments).
 *   cgroup.events   populated / frozen changes (EPOLLPRI)
 *   memory.events   counter deltas (EPOLLPRI; the kernel coalesces at
 *                   10 ms). Hybrid: memory.oom_control and a soft-limit
 *                   threshold through cgroup.event_control eventfds.
 *   pressure        one goroutine per cg_psi_spec, see below.
 * A cgroup removed while watched yields one CG_EV_GONE; the watcher's
 * goroutines then end and cg_watch_stop still has to be called. */

/* A PSI rule: "RESOURCE:some|full:THRESHOLD:WINDOW[:LATENCY]", e.g.
 * "memory:some:150ms:1s". The kernel trigger is tried first; a refused
 * window (unprivileged: only multiples of 2 s) falls back to the nearest
 * accepted window if it is within LATENCY (default: WINDOW), else to
 * polling `total` every 50 ms while calm and 10 ms while stalling. */
typedef struct cg_psi_spec {
	cg_resource res;
	bool full;
	int64_t threshold_us, window_us, latency_us;
} cg_psi_spec;
int cg_psi_parse(const char *text, cg_psi_spec *out, cg_err *err);
/* True without CAP_SYS_RESOURCE: the kernel then checks triggers only in
 * its 2 s averaging work, and any read of the pressure file postpones it,
 * so a program holding triggers should not also sample that file. */
bool cg_psi_reads_delay_triggers(void);
/* "150ms", "1s", "500us", "2.5s", or bare µs → µs; -1 if malformed. */
int64_t cg_parse_duration_us(const char *s);
int cg_psi_format(const cg_psi_spec *s, char *buf, size_t n);

typedef enum {
	CG_EV_POPULATED = 1, /* value: new populated */
	CG_EV_FROZEN,        /* value: new frozen */
	CG_EV_MEMORY,        /* mem: counter deltas since the last event, and totals */
	CG_EV_PRESSURE,      /* psi */
	CG_EV_NOTICE,        /* msg: e.g. a PSI fallback chosen */
	CG_EV_ERROR,         /* msg: one part of the watcher failed; the rest runs on */
	CG_EV_GONE,          /* msg: the cgroup was removed */
} cg_event_kind;
const char *cg_event_name(cg_event_kind k);

typedef enum { CG_PSI_TRIGGER = 1, CG_PSI_POLL } cg_psi_mode;

typedef struct cg_event {
	cg_event_kind kind;
	int64_t at; /* rt_now() when the watcher saw the change */
	void *tag;  /* cg_watch_opts.tag */
	union {
		int value;
		struct {
			cg_memory_events delta, total;
		} mem;
		struct {
			cg_psi_spec spec;       /* as asked */
			cg_psi_mode mode;       /* how it was detected */
			int64_t stall_us;       /* stall measured ... */
			int64_t window_us;      /* ... over this span */
			int64_t used_window_us; /* the trigger's window (mode TRIGGER) */
		} psi;
	};
	char msg[256];
} cg_event;

typedef struct cg_watch_opts {
	const cg_psi_spec *psi;
	int npsi;
	bool local; /* memory.events.local instead of memory.events */
	void *tag;  /* copied into every event */
} cg_watch_opts;

typedef struct cg_watch cg_watch;
/* In a goroutine. Fails only if nothing at all can be watched. */
cg_watch *cg_watch_start(cg *c, const cg_watch_opts *o, rt_chan *out, cg_err *err);
/* Stop the goroutines and wait for them; close `out` afterwards if wanted. */
void cg_watch_stop(cg_watch *w);

#endif
