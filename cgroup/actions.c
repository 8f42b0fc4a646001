/*
 * actions.c — acting on a cgroup: kill (cgroup.kill, or freeze + signal
 * every process + thaw), freeze and thaw with completion seen on
 * cgroup.events, and proactive reclaim.
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cg_freeze(cg *c, bool frozen, cg_err *err) {
	return cg__write(c, CG_TREE_UNIFIED, "cgroup.freeze", frozen ? "1" : "0", err);
}

/* Park until cgroup.events says frozen == want: on the netpoller inside a
 * goroutine, with poll(2) outside the runtime. */
static int wait_frozen(cg *c, bool want, int64_t deadline, cg_err *err) {
	int fd = cg__open(c, CG_TREE_UNIFIED, "cgroup.events", O_RDONLY | O_NONBLOCK, err);
	if (fd < 0)
		return fd;
	rt_pollfd *pd = NULL;
	int rc = 0;
	if (rt_self()) {
		pd = rt_poll_open(fd, &rc);
		if (!pd) {
			close(fd);
			cg__err(err, rc, "netpoll %s/cgroup.events: %s", cg_path(c), strerror(-rc));
			return rc;
		}
	}
	for (;;) {
		char buf[256];
		int64_t v = -1;
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0); /* re-arms the notification */
		if (n < 0) {
			rc = -errno;
			cg__err(err, rc, "read %s/cgroup.events: %s", cg_path(c), strerror(-rc));
			break;
		}
		buf[n] = 0;
		if ((rc = cg_parse_kv(buf, "frozen", &v, err)))
			break;
		if ((v == 1) == want)
			break;
		if (pd) {
			rc = rt_poll_wait(pd, RT_POLL_PRI, deadline);
		} else {
			int ms = -1;
			if (deadline != RT_FOREVER) {
				int64_t left = deadline - rt_now();
				rc = left <= 0 ? -ETIMEDOUT : 0;
				ms = left > 60000000000LL ? 60000 : (int)(left / 1000000) + 1;
			}
			struct pollfd p = {.fd = fd, .events = POLLPRI};
			if (!rc && poll(&p, 1, ms) < 0)
				rc = -errno;
		}
		if (rc) {
			cg__err(err, rc, "%s: waiting for frozen %d: %s", cg_path(c), want,
			        strerror(-rc));
			break;
		}
	}
	if (pd)
		rt_poll_close(pd);
	close(fd);
	return rc;
}

int cg_freeze_wait(cg *c, bool frozen, int64_t deadline, cg_err *err) {
	int rc = cg_freeze(c, frozen, err);
	return rc ? rc : wait_frozen(c, frozen, deadline, err);
}

/* Signal every process of `dir` and its descendants; returns the count. */
static int signal_tree(const char *dir, int sig, cg_err *err) {
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		cg__err(err, -e, "read %s: %s", path, strerror(e));
		return -e;
	}
	int count = 0, pid;
	while (fscanf(f, "%d", &pid) == 1)
		if (kill(pid, sig) == 0)
			count++;
	fclose(f);
	DIR *d = opendir(dir);
	if (!d)
		return count;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		int n = signal_tree(path, sig, err);
		if (n > 0)
			count += n;
	}
	closedir(d);
	return count;
}

int cg_kill(cg *c, int sig, cg_err *err) {
	if (sig == SIGKILL) {
		cg_err e;
		int rc = cg__write(c, CG_TREE_UNIFIED, "cgroup.kill", "1", &e);
		if (rc == 0)
			__atomic_store_n(&c->killed, true, __ATOMIC_RELAXED);
		if (rc != -ENOENT) {
			if (rc && err)
				*err = e;
			return rc;
		}
	}
	/* Freeze first so nothing forks between reading cgroup.procs and
	 * signalling (runc does the same); keep a tree the caller froze frozen. */
	int was_frozen = cg_frozen(c, NULL);
	bool freeze = was_frozen == 0;
	if (freeze) {
		if (cg_freeze(c, true, err) == 0)
			wait_frozen(c, true, rt_now() + 1000000000, NULL);
		else
			freeze = false; /* no freezer: signal anyway, best effort */
	}
	int n = signal_tree(cg_path(c), sig, err);
	if (freeze)
		cg_freeze(c, false, NULL);
	return n;
}

int cg_reclaim(cg *c, int64_t bytes, cg_err *err) {
	if (c->layout == CG_LAYOUT_HYBRID) {
		cg__err(err, -ENOTSUP, "%s: memory.reclaim needs the v2 memory controller",
		        cg_path(c));
		return -ENOTSUP;
	}
	char v[32];
	snprintf(v, sizeof v, "%" PRId64, bytes);
	return cg__write(c, CG_TREE_UNIFIED, "memory.reclaim", v, err);
}
