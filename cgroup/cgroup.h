/*
 * cgroup.h — moonshim's view of cgroups (prefix cg_). This first slice
 * knows the host's layout and reads the kernel's text formats; creating,
 * limiting, watching and acting on cgroups build on it (issue 3).
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

typedef struct cg_err {
	int code; /* -errno */
	char msg[512];
} cg_err;

typedef enum { CG_LAYOUT_V2 = 1, CG_LAYOUT_HYBRID, CG_LAYOUT_V1 } cg_layout;

typedef struct cg_host {
	cg_layout layout;
	char unified[PATH_MAX];   /* the cgroup2 mount ("" for v1-only) */
	char v1_memory[PATH_MAX]; /* v1 hierarchies, "" when absent (hybrid only) */
	char v1_cpu[PATH_MAX];
	char v1_pids[PATH_MAX];
	char controllers[256]; /* the v2 root's cgroup.controllers */
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
cg *cg_open(const cg_host *h, const char *rel, bool create, cg_err *err);
void cg_close(cg *c);
const char *cg_path(const cg *c); /* the unified directory */
/* Move pid into the cgroup (every hierarchy it lives in). */
int cg_attach(cg *c, pid_t pid, cg_err *err);
/* Remove the directories (all processes must be gone: -EBUSY otherwise). */
int cg_remove(cg *c, cg_err *err);
/* Read a file of the unified directory (kept open) into buf, NUL-ended;
 * returns the length. */
ssize_t cg_read(cg *c, const char *file, char *buf, size_t n, cg_err *err);
/* The fd of a unified file, opened once and kept (for the netpoller). */
int cg_fd(cg *c, const char *file, cg_err *err);

#endif
