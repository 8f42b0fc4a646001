/*
 * cg.c — one cgroup: its directories in the unified tree (and, on hybrid
 * hosts, in the v1 memory/cpu/pids trees), creation with its controllers
 * enabled, attaching and forking processes into it, removal, and file
 * access through fds kept open.
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* cg_remove: EBUSY is tried again this often, this long apart (100 ms) */
#define CG_RMDIR_BUSY_TRIES   20
#define CG_RMDIR_BUSY_WAIT_US 5000

static const char *tree_name(int tree) {
	static const char *const fixed[CG_TREE_MORE] = {"unified", "memory", "cpu", "pids"};
	return tree < CG_TREE_MORE ? fixed[tree] : cg_v1_hier_name(tree - CG_TREE_MORE);
}

/* mkdir -p */
static int make_dirs(const char *path, cg_err *err) {
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
				int e = errno;
				cg__err(err, -e, "mkdir %s: %s", buf, strerror(e));
				return -e;
			}
			*p = c;
			if (!c)
				return 0;
		}
	}
}

static int read_small(const char *path, char *buf, size_t n);

/* v1 cpuset: from the root's child down to dir, copy the parent's
 * cpuset.cpus and cpuset.mems into every level that has them empty (a
 * cpuset without them takes no tasks). */
static int cpuset_fill(const char *root, const char *dir, cg_err *err) {
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	char parent[PATH_MAX], path[PATH_MAX + 32], val[CG_CPUSET_LIST_MAX];
	size_t root_len = strlen(root);
	for (const char *p = strchr(dir + root_len + 1, '/');; p = strchr(p + 1, '/')) {
		size_t len = p ? (size_t)(p - dir) : strlen(dir);
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof path, "%.*s/%s", (int)len, dir, files[i]);
			if (read_small(path, val, sizeof val) == 0 && val[0])
				continue;
			snprintf(parent, sizeof parent, "%.*s", (int)len, dir);
			*strrchr(parent, '/') = 0;
			char from[PATH_MAX + 32];
			snprintf(from, sizeof from, "%s/%s", parent, files[i]);
			int rc = read_small(from, val, sizeof val);
			int fd = rc ? -1 : open(path, O_WRONLY | O_CLOEXEC);
			size_t n = strlen(val);
			if (rc || fd < 0 || write(fd, val, n) != (ssize_t)n) {
				int e = rc ? -rc : errno;
				if (fd >= 0)
					close(fd);
				cg__err(err, -e, "v1 cpuset: copying %s into %s: %s", from, path,
				        strerror(e));
				return -e;
			}
			close(fd);
		}
		if (!p)
			return 0;
	}
}

cg *cg_open(const cg_host *h, const char *rel, bool create, cg_err *err) {
	if (strstr(rel, "..")) {
		cg__err(err, -EINVAL, "cgroup path \"%s\" may not contain \"..\"", rel);
		return NULL;
	}
	while (*rel == '/')
		rel++;
	cg *c = calloc(1, sizeof *c);
	if (!c) {
		cg__err(err, -ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->layout = h->layout;
	c->hugetlb_v2 = cg_host_has_controller(h, "hugetlb");
	snprintf(c->unified_root, sizeof c->unified_root, "%s", h->unified);
	const char *roots[CG_NTREES] = {h->unified};
	if (h->layout == CG_LAYOUT_HYBRID) {
		roots[CG_TREE_MEMORY] = h->v1_memory;
		roots[CG_TREE_CPU] = h->v1_cpu;
		roots[CG_TREE_PIDS] = h->v1_pids;
		for (int i = 0; i < CG_V1_MORE; i++)
			roots[CG_TREE_MORE + i] = h->v1_more[i];
	}
	for (int i = 0; i < CG_NTREES; i++) {
		if (!roots[i] || !roots[i][0])
			continue;
		char *d = c->dirs[i];
		snprintf(d, PATH_MAX, "%s%s%s", roots[i], *rel ? "/" : "", rel);
		struct stat st;
		int rc = create ? make_dirs(d, err) : stat(d, &st) == 0 ? 0 : -errno;
		if (rc == -ENOENT && !create && i != CG_TREE_UNIFIED) {
			d[0] = 0; /* a cgroup only in the unified tree: no v1 accounting */
			continue;
		}
		if (rc) {
			if (!create)
				cg__err(err, rc, "cgroup %s: %s", d, strerror(-rc));
			cg_close(c);
			return NULL;
		}
	}
	if (create && c->dirs[CG_TREE_CPUSET][0] && *rel &&
	    cpuset_fill(roots[CG_TREE_CPUSET], c->dirs[CG_TREE_CPUSET], err)) {
		cg_remove(c, NULL);
		cg_close(c);
		return NULL;
	}
	/* Best effort, each on its own: a parent with processes of its own
	 * cannot delegate (EBUSY), a host may lack one; cg_set_limits asks
	 * again for what a limit needs and reports it then. */
	if (create && h->layout == CG_LAYOUT_V2)
		for (unsigned ctl = CG_MEMORY; ctl <= CG_HUGETLB; ctl <<= 1)
			cg_enable(c, ctl, NULL);
	return c;
}

void cg_close(cg *c) {
	if (!c)
		return;
	for (int i = 0; i < c->nfiles; i++)
		close(c->files[i].fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *cg_path(const cg *c) {
	return c->dirs[CG_TREE_UNIFIED];
}

bool cg_was_killed(const cg *c) {
	return __atomic_load_n(&c->killed, __ATOMIC_RELAXED);
}

int cg__tree_for(const cg *c, unsigned controller) {
	if (c->layout != CG_LAYOUT_HYBRID)
		return CG_TREE_UNIFIED;
	int t = controller == CG_MEMORY    ? CG_TREE_MEMORY
	        : controller == CG_CPU     ? CG_TREE_CPU
	        : controller == CG_PIDS    ? CG_TREE_PIDS
	        : controller == CG_IO      ? CG_TREE_BLKIO
	        : controller == CG_CPUSET  ? CG_TREE_CPUSET
	        : controller == CG_HUGETLB ? CG_TREE_HUGETLB
	                                   : -1;
	if (t >= 0 && c->dirs[t][0])
		return t;
	/* hugetlb is bound to no v1 hierarchy here: the v2 tree may have it */
	if (controller == CG_HUGETLB && c->hugetlb_v2)
		return CG_TREE_UNIFIED;
	return -1;
}

static const char *controller_name(unsigned ctl) {
	switch (ctl) {
	case CG_MEMORY:
		return "memory";
	case CG_CPU:
		return "cpu";
	case CG_PIDS:
		return "pids";
	case CG_CPUSET:
		return "cpuset";
	case CG_HUGETLB:
		return "hugetlb";
	}
	return "io";
}

static int read_small(const char *path, char *buf, size_t n) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, n - 1);
	int e = errno;
	close(fd);
	if (r < 0)
		return -e;
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* Enable `name` for the children of directory `dir` (an ancestor; is_root
 * for the tree's root, which may hold processes). A non-root cgroup with
 * processes of its own is refused for every controller: the kernel takes
 * the threaded ones (cpu, cpuset, pids) there, but its domain children
 * then become invalid (EOPNOTSUPP to move a process in or enable memory). */
static int enable_in(const char *dir, bool is_root, const char *name, cg_err *err) {
	char path[PATH_MAX + 32], have[512];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	if (!is_root && read_small(path, have, sizeof have) == 0 && have[0]) {
		cg__err(err, -EBUSY,
		        "enabling %s in %s/cgroup.subtree_control: the parent has processes of "
		        "its own (pid %s)",
		        name, dir, have);
		return -EBUSY;
	}
	snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
	int rc = read_small(path, have, sizeof have);
	if (rc) {
		cg__err(err, rc, "read %s: %s", path, strerror(-rc));
		return rc;
	}
	if (!cg__has_word(have, ' ', name)) {
		cg__err(err, -ENOTSUP,
		        "the %s controller is not available in %s (it offers \"%s\")", name, dir,
		        have);
		return -ENOTSUP;
	}
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
	if (read_small(path, have, sizeof have) == 0 && cg__has_word(have, ' ', name))
		return 0;
	char val[32];
	int n = snprintf(val, sizeof val, "+%s", name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, (size_t)n) != n) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		cg__err(err, -e, "enabling %s in %s: %s%s", name, path, strerror(e),
		        e == EBUSY ? " (the parent has processes of its own)" : "");
		return -e;
	}
	close(fd);
	return 0;
}

int cg_enable(cg *c, unsigned controllers, cg_err *err) {
	for (unsigned ctl = CG_MEMORY; ctl <= CG_HUGETLB; ctl <<= 1) {
		if (!(controllers & ctl))
			continue;
		int tree = cg__tree_for(c, ctl);
		if (tree < 0) {
			cg__err(err, -ENOTSUP,
			        "the %s controller is not available on this hybrid host (no v1 %s "
			        "hierarchy)",
			        controller_name(ctl),
			        ctl == CG_IO ? "blkio" : controller_name(ctl));
			return -ENOTSUP;
		}
		if (tree != CG_TREE_UNIFIED)
			continue;
		/* every ancestor from the root down to our parent */
		char dir[PATH_MAX];
		size_t root_len = strlen(c->unified_root);
		const char *self = c->dirs[CG_TREE_UNIFIED];
		for (const char *p = self + root_len; p && *p;) {
			size_t len = (size_t)(p - self);
			snprintf(dir, sizeof dir, "%.*s", (int)len, self);
			int rc = enable_in(dir, len == root_len, controller_name(ctl), err);
			if (rc)
				return rc;
			p = strchr(p + 1, '/');
		}
	}
	return 0;
}

int cg_attach(cg *c, pid_t pid, cg_err *err) {
	char path[PATH_MAX + 32], num[24];
	int n = snprintf(num, sizeof num, "%d", (int)pid);
	for (int i = 0; i < CG_NTREES; i++) {
		if (!c->dirs[i][0])
			continue;
		snprintf(path, sizeof path, "%s/cgroup.procs", c->dirs[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, num, (size_t)n) != n) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			cg__err(err, -e, "moving pid %d into %s: %s", (int)pid, path, strerror(e));
			return -e;
		}
		close(fd);
	}
	return 0;
}

/* fork(), and the child moves itself into every hierarchy before the
 * parent goes on (used where clone3 into the cgroup cannot be trusted). */
static pid_t fork_then_attach(cg *c, int *pidfd, cg_err *err) {
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		int e = errno;
		cg__err(err, -e, "pipe: %s", strerror(e));
		return -e;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		/* only open/write/close here: async-signal-safe after fork */
		for (int i = 0; i < CG_NTREES; i++) {
			if (!c->dirs[i][0])
				continue;
			char path[PATH_MAX + 32];
			size_t n = strlen(c->dirs[i]);
			memcpy(path, c->dirs[i], n);
			memcpy(path + n, "/cgroup.procs", 14);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, "0", 1) != 1) {
				unsigned char code = (unsigned char)errno;
				if (write(p[1], &code, 1) != 1) {
				}
				_exit(126);
			}
			close(fd);
		}
		close(p[1]); /* EOF: the parent may go on */
		return 0;
	}
	int e = errno;
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		cg__err(err, -e, "fork: %s", strerror(e));
		return -e;
	}
	unsigned char code;
	ssize_t r;
	while ((r = read(p[0], &code, 1)) < 0 && errno == EINTR) {
	}
	close(p[0]);
	if (r == 1) { /* the child could not move itself in and exits */
		waitpid(pid, NULL, 0);
		cg__err(err, -code, "moving the new child into %s: %s", c->dirs[CG_TREE_UNIFIED],
		        strerror(code));
		return -code;
	}
	if (pidfd)
		*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return pid;
}

pid_t cg_fork_into(cg *c, int *pidfd, cg_err *err) {
	/* Linux 6.18 SIGKILLs every clone3(CLONE_INTO_CGROUP) child of a
	 * cgroup once cgroup.kill was written to it (seen here; plain fork +
	 * cgroup.procs is unaffected), so after our own kill fork instead. */
	if (cg_was_killed(c))
		return fork_then_attach(c, pidfd, err);
	int dfd = open(c->dirs[CG_TREE_UNIFIED], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		cg__err(err, -e, "open %s: %s", c->dirs[CG_TREE_UNIFIED], strerror(e));
		return -e;
	}
	int pfd = -1;
	struct clone_args args = {
	    .flags = CLONE_INTO_CGROUP | CLONE_PIDFD,
	    .pidfd = (uint64_t)(uintptr_t)&pfd,
	    .exit_signal = SIGCHLD,
	    .cgroup = (uint64_t)dfd,
	};
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid == 0)
		return 0;
	int e = errno;
	close(dfd);
	if (pid < 0 && (e == ENOSYS || e == E2BIG || e == EINVAL)) /* kernels before 5.7 */
		return fork_then_attach(c, pidfd, err);
	if (pid < 0) {
		cg__err(err, -e, "clone3 into %s: %s", c->dirs[CG_TREE_UNIFIED], strerror(e));
		return -e;
	}
	if (pidfd)
		*pidfd = pfd;
	else
		close(pfd);
	/* the unified tree is done; the v1 hierarchies need a write each */
	char path[PATH_MAX + 32], num[24];
	int n = snprintf(num, sizeof num, "%ld", pid);
	for (int i = CG_TREE_MEMORY; i < CG_NTREES; i++) {
		if (!c->dirs[i][0])
			continue;
		snprintf(path, sizeof path, "%s/cgroup.procs", c->dirs[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, num, (size_t)n) != n) {
			e = errno;
			if (fd >= 0)
				close(fd);
			cg__err(err, -e, "moving pid %ld into %s: %s (it runs outside that limit)",
			        pid, path, strerror(e));
			return (pid_t)pid; /* the child exists: the caller must reap it */
		}
		close(fd);
	}
	return (pid_t)pid;
}

/* rmdir, again for a while on EBUSY: the kernel answers it until the last
 * exited task of the cgroup is released, a moment after it was reaped. */
static int rmdir_settled(const char *dir) {
	for (int i = 0;; i++) {
		if (rmdir(dir) == 0)
			return 0;
		if (errno != EBUSY || i == CG_RMDIR_BUSY_TRIES)
			return -1;
		usleep(CG_RMDIR_BUSY_WAIT_US);
	}
}

int cg_remove(cg *c, cg_err *err) {
	int rc = 0;
	for (int i = CG_NTREES - 1; i >= 0; i--)
		if (c->dirs[i][0] && rmdir_settled(c->dirs[i]) != 0 && errno != ENOENT) {
			int e = errno;
			rc = -e;
			cg__err(err, rc, "rmdir %s: %s%s", c->dirs[i], strerror(e),
			        e == EBUSY ? " (processes or child cgroups remain)" : "");
		}
	return rc;
}

int cg__open(cg *c, int tree, const char *file, int flags, cg_err *err) {
	if (tree < 0 || !c->dirs[tree][0]) {
		cg__err(err, -ENOTSUP, "%s: no %s hierarchy for %s on this host", file,
		        tree < 0 ? "such" : tree_name(tree), c->dirs[CG_TREE_UNIFIED]);
		return -ENOTSUP;
	}
	char path[PATH_MAX + 80];
	snprintf(path, sizeof path, "%s/%s", c->dirs[tree], file);
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		cg__err(err, -e, "open %s: %s", path, strerror(e));
		return -e;
	}
	return fd;
}

/* A kept-open read fd of `file` in hierarchy `tree`. */
static int tree_fd(cg *c, int tree, const char *file, cg_err *err) {
	pthread_mutex_lock(&c->lock);
	int fd = -1;
	for (int i = 0; i < c->nfiles; i++)
		if (c->files[i].tree == tree && !strcmp(c->files[i].name, file)) {
			fd = c->files[i].fd;
			break;
		}
	if (fd < 0) {
		if (c->nfiles == CG_MAX_FILES || strlen(file) >= sizeof c->files[0].name) {
			cg__err(err, -ENOSPC, "too many open files for cgroup %s", c->dirs[0]);
			fd = -ENOSPC;
		} else if ((fd = cg__open(c, tree, file, O_RDONLY | O_NONBLOCK, err)) >= 0) {
			cg_file *f = &c->files[c->nfiles++];
			snprintf(f->name, sizeof f->name, "%s", file);
			f->tree = tree;
			f->fd = fd;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return fd;
}

int cg_fd(cg *c, const char *file, cg_err *err) {
	return tree_fd(c, CG_TREE_UNIFIED, file, err);
}

bool cg__removed(const cg *c) {
	struct stat st;
	return stat(c->dirs[CG_TREE_UNIFIED], &st) != 0 && errno == ENOENT;
}

/* Forget a kept-open fd whose file went away, so the next read reopens it
 * (e.g. the pressure files come back when cgroup.pressure returns to 1). */
static void drop_fd(cg *c, int tree, const char *file) {
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nfiles; i++)
		if (c->files[i].tree == tree && !strcmp(c->files[i].name, file)) {
			close(c->files[i].fd);
			c->files[i] = c->files[--c->nfiles];
			break;
		}
	pthread_mutex_unlock(&c->lock);
}

ssize_t cg__read(cg *c, int tree, const char *file, char *buf, size_t n, cg_err *err) {
	int fd = tree_fd(c, tree, file, err);
	if (fd < 0)
		return fd;
	ssize_t r = pread(fd, buf, n - 1, 0);
	if (r < 0) {
		int e = errno;
		/* ENODEV: the file was deactivated under our open fd — the whole
		 * cgroup removed, or just this file hidden (the pressure files
		 * while cgroup.pressure is 0) */
		const char *why = "";
		if (e == ENODEV) {
			drop_fd(c, tree, file);
			why = cg__removed(c) ? " (the cgroup was removed)"
			      : strstr(file, ".pressure")
			          ? " (PSI is off for this cgroup: cgroup.pressure is 0)"
			          : " (the file went away; the cgroup still exists)";
		}
		cg__err(err, -e, "read %s/%s: %s%s", c->dirs[tree], file, strerror(e), why);
		return -e;
	}
	buf[r] = 0;
	return r;
}

ssize_t cg_read(cg *c, const char *file, char *buf, size_t n, cg_err *err) {
	return cg__read(c, CG_TREE_UNIFIED, file, buf, n, err);
}

int cg__read_int(cg *c, int tree, const char *file, int64_t *v, cg_err *err) {
	char buf[64];
	ssize_t r = cg__read(c, tree, file, buf, sizeof buf, err);
	if (r < 0)
		return (int)r;
	if (!strncmp(buf, "max", 3)) {
		*v = CG_NOLIMIT;
		return 0;
	}
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (end == buf || errno || (*end && *end != '\n')) {
		cg__err(err, -EINVAL, "%s/%s: not a number: \"%.*s\"", c->dirs[tree], file,
		        (int)strcspn(buf, "\n"), buf);
		return -EINVAL;
	}
	*v = x;
	return 0;
}

int cg__write(cg *c, int tree, const char *file, const char *val, cg_err *err) {
	/* O_NONBLOCK: lowering memory.high/max below usage does not make the
	 * writer reclaim synchronously (kernels that know it; others ignore) */
	int fd = cg__open(c, tree, file, O_WRONLY | O_NONBLOCK, err);
	if (fd < 0)
		return fd;
	size_t n = strlen(val);
	ssize_t w = write(fd, val, n);
	int e = errno;
	close(fd);
	if (w != (ssize_t)n) {
		if (w >= 0)
			e = EIO;
		cg__err(err, -e, "writing \"%s\" to %s/%s: %s", val, c->dirs[tree], file,
		        strerror(e));
		return -e;
	}
	return 0;
}

static int events_field(cg *c, const char *key, cg_err *err) {
	char buf[256];
	ssize_t r = cg_read(c, "cgroup.events", buf, sizeof buf, err);
	if (r < 0)
		return (int)r;
	int64_t v;
	int rc = cg_parse_kv(buf, key, &v, err);
	return rc ? rc : (int)v;
}

int cg_populated(cg *c, cg_err *err) {
	return events_field(c, "populated", err);
}

int cg_frozen(cg *c, cg_err *err) {
	return events_field(c, "frozen", err);
}
