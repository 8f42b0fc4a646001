/*
 * cg.c — one cgroup: its directories in the unified tree (and, on hybrid
 * hosts, in the v1 memory/cpu/pids trees), creation, attaching processes,
 * removal, and reads through fds kept open.
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_MAX_TREES 4 /* unified + v1 memory, cpu, pids */
#define CG_MAX_FILES 16

typedef struct {
	char name[64];
	int fd;
} cg_file;

struct cg {
	char dirs[CG_MAX_TREES][PATH_MAX];
	int ndirs; /* dirs[0] is the unified one */
	cg_file files[CG_MAX_FILES];
	int nfiles;
};

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

cg *cg_open(const cg_host *h, const char *rel, bool create, cg_err *err) {
	if (strstr(rel, "..")) {
		cg__err(err, -EINVAL, "cgroup path \"%s\" may not contain \"..\"", rel);
		return NULL;
	}
	cg *c = calloc(1, sizeof *c);
	if (!c) {
		cg__err(err, -ENOMEM, "out of memory");
		return NULL;
	}
	const char *roots[CG_MAX_TREES] = {h->unified, NULL, NULL, NULL};
	if (h->layout == CG_LAYOUT_HYBRID) {
		roots[1] = h->v1_memory[0] ? h->v1_memory : NULL;
		roots[2] = h->v1_cpu[0] ? h->v1_cpu : NULL;
		roots[3] = h->v1_pids[0] ? h->v1_pids : NULL;
	}
	for (int i = 0; i < CG_MAX_TREES; i++) {
		if (!roots[i])
			continue;
		char *d = c->dirs[c->ndirs];
		snprintf(d, PATH_MAX, "%s/%s", roots[i], rel);
		struct stat st;
		if (create ? make_dirs(d, err) != 0 : stat(d, &st) != 0) {
			int e = errno;
			if (!create)
				cg__err(err, -e, "cgroup %s: %s", d, strerror(e));
			cg_close(c);
			return NULL;
		}
		c->ndirs++;
	}
	return c;
}

void cg_close(cg *c) {
	if (!c)
		return;
	for (int i = 0; i < c->nfiles; i++)
		close(c->files[i].fd);
	free(c);
}

const char *cg_path(const cg *c) {
	return c->dirs[0];
}

int cg_attach(cg *c, pid_t pid, cg_err *err) {
	char path[PATH_MAX + 32], num[24];
	int n = snprintf(num, sizeof num, "%d", (int)pid);
	for (int i = 0; i < c->ndirs; i++) {
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

int cg_remove(cg *c, cg_err *err) {
	int rc = 0;
	for (int i = c->ndirs - 1; i >= 0; i--)
		if (rmdir(c->dirs[i]) != 0 && errno != ENOENT) {
			int e = errno;
			rc = -e;
			cg__err(err, rc, "rmdir %s: %s", c->dirs[i], strerror(e));
		}
	return rc;
}

int cg_fd(cg *c, const char *file, cg_err *err) {
	for (int i = 0; i < c->nfiles; i++)
		if (!strcmp(c->files[i].name, file))
			return c->files[i].fd;
	if (c->nfiles == CG_MAX_FILES || strlen(file) >= sizeof c->files[0].name) {
		cg__err(err, -ENOSPC, "too many open files for cgroup %s", c->dirs[0]);
		return -ENOSPC;
	}
	char path[PATH_MAX + 80];
	snprintf(path, sizeof path, "%s/%s", c->dirs[0], file);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		cg__err(err, -e, "open %s: %s", path, strerror(e));
		return -e;
	}
	snprintf(c->files[c->nfiles].name, sizeof c->files[0].name, "%s", file);
	c->files[c->nfiles++].fd = fd;
	return fd;
}

ssize_t cg_read(cg *c, const char *file, char *buf, size_t n, cg_err *err) {
	int fd = cg_fd(c, file, err);
	if (fd < 0)
		return fd;
	ssize_t r = pread(fd, buf, n - 1, 0);
	if (r < 0) {
		int e = errno;
		cg__err(err, -e, "read %s/%s: %s", c->dirs[0], file, strerror(e));
		return -e;
	}
	buf[r] = 0;
	return r;
}
