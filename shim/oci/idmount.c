/*
 * idmount.c — the parent's half of an idmapped bind mount (the OCI
 * mounts[].uidMappings/gidMappings, options idmap and ridmap).
 *
 * The container's init cannot make one itself: in its new user namespace
 * it has no privilege over the host's mounts. So the parent, once the
 * child's uid_map and gid_map are written, clones the source as a detached
 * mount (open_tree OPEN_TREE_CLONE, AT_RECURSIVE for an rbind) and sets
 * MOUNT_ATTR_IDMAP on it (AT_RECURSIVE for ridmap) with a user namespace
 * holding the mapping:
 *   - no mappings of its own: the container's (the child's /proc/PID/ns/user,
 *     or the namespace it joins by path);
 *   - its own: a throwaway namespace, a forked process that unshares
 *     CLONE_NEWUSER and waits while we write its maps and open it; it is
 *     killed and reaped before this returns (the mount keeps the namespace,
 *     nothing else does).
 * container.c passes the fd to the child (SCM_RIGHTS) before "go"; rootfs.c
 * moves it onto the target. Runs in the single-threaded creating process.
 */
#define _GNU_SOURCE
#include "ct_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* ─── the user namespace holding the mapping ────────────────────────── */

/* The throwaway namespace's process: unshare, say how it went (0 or the
 * errno), wait to be killed. Only system calls: the caller may have
 * threads. */
static _Noreturn void holder(int report) {
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	int e = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
	(void)!write(report, &e, sizeof e);
	for (;;)
		pause();
}

static void end_holder(pid_t kid) {
	kill(kid, SIGKILL);
	while (waitpid(kid, NULL, 0) < 0 && errno == EINTR) {
	}
}

/* A new user namespace with m's own mappings: *nsfd, or -errno. */
static int own_userns(const spec_mount *m, size_t i, int *nsfd, ms_err *err) {
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return ms_fail(err, -errno, "mounts[%zu] (%s): pipe: %s", i, m->dest,
		               strerror(errno));
	pid_t kid = fork();
	if (kid == 0) {
		close(p[0]);
		holder(p[1]);
	}
	int e = errno;
	close(p[1]);
	if (kid < 0) {
		close(p[0]);
		return ms_fail(err, -e, "mounts[%zu] (%s): fork: %s", i, m->dest, strerror(e));
	}
	int kid_err = EIO;
	ssize_t n;
	while ((n = read(p[0], &kid_err, sizeof kid_err)) < 0 && errno == EINTR) {
	}
	close(p[0]);
	int rc = 0;
	char path[64], what[64];
	if (n != sizeof kid_err || kid_err) {
		rc = ms_fail(err, -kid_err,
		             "mounts[%zu] (%s): a user namespace for its mappings: %s", i, m->dest,
		             strerror(kid_err));
		goto out;
	}
	snprintf(what, sizeof what, "mounts[%zu].uidMappings", i);
	if ((rc = ct__write_idmap(kid, "uid_map", m->uidmap, m->nuidmap, what, err)))
		goto out;
	snprintf(what, sizeof what, "mounts[%zu].gidMappings", i);
	if ((rc = ct__write_idmap(kid, "gid_map", m->gidmap, m->ngidmap, what, err)))
		goto out;
	snprintf(path, sizeof path, "/proc/%d/ns/user", kid);
	if ((*nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = ms_fail(err, -errno, "mounts[%zu] (%s): %s: %s", i, m->dest, path,
		             strerror(errno));
out:
	end_holder(kid);
	return rc;
}

/* The container's user namespace: the child's, or the one it joins. */
static int container_userns(const spec *s, size_t i, pid_t pid, int *nsfd, ms_err *err) {
	char path[64];
	const char *p = path;
	snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
	for (size_t j = 0; j < s->njoins; j++)
		if (s->joins[j].type == CLONE_NEWUSER)
			p = s->joins[j].path;
	if ((*nsfd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return ms_fail(err, -errno,
		               "mounts[%zu] (%s): the container's user namespace %s: %s", i,
		               s->mounts[i].dest, p, strerror(errno));
	return 0;
}

/* ─── the mount ─────────────────────────────────────────────────────── */

static bool idmap_unsupported(int e) {
	return e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP;
}

int ct__idmount_open(const spec *s, size_t i, pid_t pid, int *fd, ms_err *err) {
	const spec_mount *m = &s->mounts[i];
	int nsfd = -1;
	int rc =
	    m->nuidmap ? own_userns(m, i, &nsfd, err) : container_userns(s, i, pid, &nsfd, err);
	if (rc)
		return rc;
	unsigned tree_flags =
	    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | ((m->flags & MS_REC) ? AT_RECURSIVE : 0);
	*fd = open_tree(AT_FDCWD, m->source, tree_flags);
	if (*fd < 0) {
		rc = ms_fail(err, -errno, "mounts[%zu] (%s): source %s: %s", i, m->dest, m->source,
		             strerror(errno));
		close(nsfd);
		return rc;
	}
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)nsfd};
	unsigned set_flags = AT_EMPTY_PATH | (m->idmap_recursive ? AT_RECURSIVE : 0);
	if (mount_setattr(*fd, "", set_flags, &attr, sizeof attr) < 0) {
		int e = errno;
		rc = ms_fail(err, -e, "mounts[%zu] (%s): idmapping %s: %s%s", i, m->dest, m->source,
		             strerror(e),
		             idmap_unsupported(e)
		                 ? " (its filesystem does not support idmapped mounts)"
		                 : "");
		close(*fd);
		*fd = -1;
	}
	close(nsfd);
	return rc;
}
