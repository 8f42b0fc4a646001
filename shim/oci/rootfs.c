/*
 * rootfs.c — the container's filesystem view, built in the child inside its
 * new mount namespace: the spec's mounts in order (targets resolved inside
 * the rootfs, so a symlink in the image cannot point a mount at the host),
 * /dev with the standard nodes, pivot_root, sysctls, masked and read-only
 * paths, and finally the read-only root.
 */
#define _GNU_SOURCE
#include "ct_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The nodes every container's /dev gets (the OCI runtime spec's list). */
static const struct {
	const char *name;
	unsigned major, minor;
} default_devices[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

static const struct {
	const char *target, *link;
} default_links[] = {
    {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
    {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
};

/* ─── paths inside the rootfs ───────────────────────────────────────── */

static int open_in_root(int rootfd, const char *path, int flags) {
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how);
}

/* An O_PATH fd for path inside the root, creating missing directories
 * (and the last component as an empty file when as_file). Symlinks are
 * followed as if the rootfs were "/". */
static int make_in_root(int rootfd, const char *path, bool as_file) {
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	size_t len = strlen(buf);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = 0;
	for (char *p = buf + 1;; p++) {
		bool last = !*p;
		if (*p != '/' && !last)
			continue;
		char saved = *p;
		*p = 0;
		int fd = open_in_root(rootfd, buf, O_PATH);
		if (fd < 0 && errno == ENOENT) {
			char parent[PATH_MAX], name[PATH_MAX];
			snprintf(parent, sizeof parent, "%s", buf);
			snprintf(name, sizeof name, "%s", basename(buf));
			char *slash = strrchr(parent, '/');
			*(slash == parent ? slash + 1 : slash) = 0;
			int pfd = open_in_root(rootfd, parent, O_PATH | O_DIRECTORY);
			if (pfd < 0)
				return -errno;
			int rc;
			if (last && as_file) {
				rc = openat(pfd, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
				            0644);
				if (rc >= 0)
					close(rc);
			} else {
				rc = mkdirat(pfd, name, 0755);
			}
			int e = errno;
			close(pfd);
			if (rc < 0 && e != EEXIST)
				return -e;
			fd = open_in_root(rootfd, buf, O_PATH);
		}
		if (fd < 0)
			return -errno;
		if (last)
			return fd;
		struct stat st;
		if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
			close(fd);
			return -ENOTDIR;
		}
		close(fd);
		*p = saved;
	}
}

static void fd_path(int fd, char *out, size_t n) {
	snprintf(out, n, "/proc/self/fd/%d", fd);
}

/* Flags the kernel keeps locked on a mount (in a user namespace a bind
 * remount must repeat them or fail with EPERM). */
static unsigned long locked_flags(const char *path) {
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return 0;
	unsigned long f = 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* Remount a bind mount with flags (MS_RDONLY, MS_NOSUID, ...). */
static int remount_bind(const char *target, unsigned long flags) {
	flags &= MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
	         MS_RELATIME | MS_STRICTATIME | MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK |
	         MS_LAZYTIME;
	return mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags | locked_flags(target), NULL);
}

/* ─── the spec's mounts ─────────────────────────────────────────────── */

static int bind_cgroup_tree(const ct_opts *o, const char *host_root, const char *target,
                            unsigned long flags) {
	char src[PATH_MAX + 256], dst[PATH_MAX + 64];
	snprintf(src, sizeof src, "%s/%s", host_root, o->cgroup_rel);
	const char *name = strrchr(host_root, '/') + 1;
	snprintf(dst, sizeof dst, "%s/%s", target, name);
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	return remount_bind(dst, flags | MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0 ? -errno : 0;
}

static int mount_cgroup_trees(const ct_opts *o, const char *target, unsigned long flags);
static int remount_fresh(int rootfd, const spec_mount *m, unsigned long flags,
                         unsigned long propagation);

/* type "cgroup": cgroup2 on a pure v2 host; on a hybrid host a tmpfs
 * holding the container's own cgroup from each hierarchy moonshim manages
 * (unified, memory, cpu, pids), bound in. */
static int mount_cgroup(const ct_opts *o, const spec_mount *m, const char *target, int rootfd) {
	unsigned long flags = m->flags & ~(MS_BIND | MS_REC);
	if (o->host->layout == CG_LAYOUT_V2) {
		if (mount("cgroup2", target, "cgroup2", flags, NULL) == 0)
			return 0;
		char src[PATH_MAX + 256];
		snprintf(src, sizeof src, "%s/%s", o->host->unified, o->cgroup_rel);
		if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			return -errno;
		return remount_fresh(rootfd, m, flags, 0);
	}
	if (mount("tmpfs", target, "tmpfs", (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
	          "mode=755") < 0)
		return -errno;
	/* the fd behind target still names the directory under the tmpfs */
	int fd = open_in_root(rootfd, m->dest, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	char top[64];
	fd_path(fd, top, sizeof top);
	int rc = mount_cgroup_trees(o, top, flags);
	close(fd);
	return rc;
}

static int mount_cgroup_trees(const ct_opts *o, const char *target, unsigned long flags) {
	const char *roots[] = {o->host->unified, o->host->v1_memory, o->host->v1_cpu,
	                       o->host->v1_pids};
	for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
		if (!roots[i][0])
			continue;
		int rc = bind_cgroup_tree(o, roots[i], target, flags);
		if (rc)
			return rc;
	}
	return 0; /* the tmpfs itself stays writable, as runc leaves it */
}

/* Operations on what is now mounted at m->dest must look it up afresh:
 * the fd the first mount went through still names the directory under it. */
static int remount_fresh(int rootfd, const spec_mount *m, unsigned long flags,
                         unsigned long propagation) {
	int fd = open_in_root(rootfd, m->dest, O_PATH);
	if (fd < 0)
		return -errno;
	char t[64];
	fd_path(fd, t, sizeof t);
	int rc = 0;
	if (flags && remount_bind(t, flags) < 0)
		rc = -errno;
	if (!rc && propagation && mount(NULL, t, NULL, propagation, NULL) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Where a mount goes: the target as a path (/proc/self/fd/N) and its fd;
 * for an idmapped mount, the detached mount the parent made. */
typedef struct mount_at {
	const char *target;
	int target_fd, idmount_fd;
} mount_at;

static int do_mount(const ct_opts *o, const spec_mount *m, const mount_at *at, bool userns,
                    int rootfd) {
	const char *target = at->target;
	unsigned long extra = 0;
	if (m->idmap) {
		if (move_mount(at->idmount_fd, "", at->target_fd, "",
		               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return -errno;
		extra = m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
	} else if (m->bind) {
		if (mount(m->source, target, NULL, m->flags & (MS_BIND | MS_REC), NULL) < 0)
			return -errno;
		extra = m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
	} else if (!strcmp(m->type, "cgroup") || !strcmp(m->type, "cgroup2")) {
		int rc = mount_cgroup(o, m, target, rootfd);
		if (rc)
			return rc;
	} else if (mount(m->source, target, m->type, m->flags, m->data) < 0) {
		/* sysfs refuses a user namespace that does not own the network
		 * namespace: show the host's, read-only, as runc does */
		if (!strcmp(m->type, "sysfs") && (errno == EPERM || errno == EACCES)) {
			if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0)
				return -errno;
			extra = m->flags | MS_RDONLY;
		} else if (!strcmp(m->type, "mqueue") && userns && errno == EPERM) {
			if (mount("/dev/mqueue", target, NULL, MS_BIND | MS_REC, NULL) < 0)
				return -errno;
		} else {
			return -errno;
		}
	}
	return remount_fresh(rootfd, m, extra, m->propagation);
}

/* "rro": what is now mounted at m->dest and every mount below it turn
 * read-only. Returns 0 or -errno (ENOSYS before Linux 5.12). */
static int recursive_readonly(int rootfd, const spec_mount *m) {
	int fd = open_in_root(rootfd, m->dest, O_PATH);
	if (fd < 0)
		return -errno;
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	int rc = mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0
	             ? -errno
	             : 0;
	close(fd);
	return rc;
}

/* ─── /dev ──────────────────────────────────────────────────────────── */

static int make_device(int rootfd, const char *path, char type, unsigned maj, unsigned min,
                       mode_t perm, uid_t uid, gid_t gid, bool userns) {
	if (userns) { /* no mknod in a user namespace: bind the host's node */
		if (type != 'c')
			return -EPERM;
		int fd = make_in_root(rootfd, path, true);
		if (fd < 0)
			return fd;
		char t[64];
		fd_path(fd, t, sizeof t);
		int rc = mount(path, t, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
		close(fd);
		return rc;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	*slash = 0;
	int dfd = make_in_root(rootfd, dir, false);
	if (dfd < 0)
		return dfd;
	char real[64];
	fd_path(dfd, real, sizeof real);
	int pfd = open(real, O_DIRECTORY | O_CLOEXEC);
	close(dfd);
	if (pfd < 0)
		return -errno;
	mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
	unlinkat(pfd, slash + 1, 0);
	int rc = 0;
	if (mknodat(pfd, slash + 1, kind | perm, makedev(maj, min)) < 0 ||
	    fchmodat(pfd, slash + 1, perm, 0) < 0 ||
	    fchownat(pfd, slash + 1, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	close(pfd);
	return rc;
}

static int populate_dev(const spec *s, int rootfd, bool userns, ms_err *err) {
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof default_devices / sizeof *default_devices; i++) {
		snprintf(p, sizeof p, "/dev/%s", default_devices[i].name);
		int rc = make_device(rootfd, p, 'c', default_devices[i].major,
		                     default_devices[i].minor, 0666, 0, 0, userns);
		if (rc)
			return ms_fail(err, rc, "/dev/%s: %s", default_devices[i].name,
			               strerror(-rc));
	}
	for (size_t i = 0; i < s->ndevices; i++) {
		const spec_device *d = &s->devices[i];
		int rc = make_device(rootfd, d->path, d->type, (unsigned)d->major,
		                     (unsigned)d->minor, d->mode, d->uid, d->gid, userns);
		if (rc)
			return ms_fail(err, rc, "linux.devices[%zu]: %s: %s", i, d->path,
			               strerror(-rc));
	}
	int dev = open_in_root(rootfd, "/dev", O_DIRECTORY);
	if (dev < 0)
		return ms_fail(err, -errno, "/dev: %s", strerror(errno));
	for (size_t i = 0; i < sizeof default_links / sizeof *default_links; i++) {
		unlinkat(dev, default_links[i].link, 0);
		if (symlinkat(default_links[i].target, dev, default_links[i].link) < 0 &&
		    errno != EEXIST) {
			int e = errno;
			close(dev);
			return ms_fail(err, -e, "/dev/%s: %s", default_links[i].link, strerror(e));
		}
	}
	if (access("/proc/kcore", F_OK) == 0)
		symlinkat("/proc/kcore", dev, "core");
	close(dev);
	return 0;
}

/* ─── after pivot_root ──────────────────────────────────────────────── */

static int write_sysctls(const spec *s, ms_err *err) {
	for (size_t i = 0; i < s->nsysctls; i++) {
		char path[PATH_MAX];
		int n = snprintf(path, sizeof path, "/proc/sys/%s", s->sysctls[i].key);
		for (char *c = path + 10; c < path + n; c++)
			if (*c == '.')
				*c = '/';
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return ms_fail(err, -errno, "linux.sysctl.%s: %s: %s", s->sysctls[i].key,
			               path, strerror(errno));
		size_t len = strlen(s->sysctls[i].value);
		ssize_t w = write(fd, s->sysctls[i].value, len);
		int e = errno;
		close(fd);
		if (w != (ssize_t)len)
			return ms_fail(err, w < 0 ? -e : -EIO,
			               "linux.sysctl.%s: writing \"%s\": %s", s->sysctls[i].key,
			               s->sysctls[i].value, w < 0 ? strerror(e) : "short write");
	}
	return 0;
}

static int mask_paths(const spec *s, ms_err *err) {
	for (size_t i = 0; i < s->nmasked; i++) {
		const char *p = s->masked[i];
		struct stat st;
		if (stat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return ms_fail(err, -errno, "linux.maskedPaths[%zu]: %s: %s", i, p,
			               strerror(errno));
		}
		int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL)
		                             : mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (rc < 0)
			return ms_fail(err, -errno, "linux.maskedPaths[%zu]: %s: %s", i, p,
			               strerror(errno));
	}
	return 0;
}

static int readonly_paths(const spec *s, ms_err *err) {
	for (size_t i = 0; i < s->nreadonly; i++) {
		const char *p = s->readonly[i];
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return ms_fail(err, -errno, "linux.readonlyPaths[%zu]: %s: %s", i, p,
			               strerror(errno));
		}
		if (remount_bind(p, MS_RDONLY | MS_REC) < 0)
			return ms_fail(err, -errno, "linux.readonlyPaths[%zu]: %s: remount: %s", i,
			               p, strerror(errno));
	}
	return 0;
}

/* pivot_root(".", ".") stacks the old root on the new one. The old root is
 * made a slave (our unmount must not reach the host) and detached through
 * an fd opened on it before: "." after pivot_root names the new root, and
 * making that a slave, recursively, would cut every shared mount in the
 * container (an rshared bind) off from propagating back to the host. */
static int enter_root(const char *rootfs, ms_err *err) {
	int old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old < 0)
		return ms_fail(err, -errno, "open /: %s", strerror(errno));
	int rc = 0;
	if (chdir(rootfs) < 0)
		rc = ms_fail(err, -errno, "root.path: chdir %s: %s", rootfs, strerror(errno));
	else if (syscall(SYS_pivot_root, ".", ".") < 0)
		rc = ms_fail(err, -errno, "root.path: pivot_root %s: %s", rootfs, strerror(errno));
	else if (fchdir(old) < 0 || mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0 ||
	         umount2(".", MNT_DETACH) < 0)
		rc = ms_fail(err, -errno, "root.path: detaching the old root: %s", strerror(errno));
	else if (chdir("/") < 0)
		rc = ms_fail(err, -errno, "chdir /: %s", strerror(errno));
	close(old);
	return rc;
}

/* ─── the sequence ──────────────────────────────────────────────────── */

/* Whether mount i is of a file (a bind of one), not a directory. */
static int source_is_file(const spec_mount *m, size_t i, int idmount_fd, bool *as_file,
                          ms_err *err) {
	*as_file = false;
	if (!m->bind)
		return 0;
	if (m->idmap && idmount_fd < 0)
		return ms_fail(err, -EBADF, "mounts[%zu] (%s): the idmapped mount never came", i,
		               m->dest);
	struct stat st;
	if (m->idmap ? fstat(idmount_fd, &st) < 0 : stat(m->source, &st) < 0)
		return ms_fail(err, -errno, "mounts[%zu].source: %s: %s", i, m->source,
		               strerror(errno));
	*as_file = !S_ISDIR(st.st_mode);
	return 0;
}

/* The mount holding the rootfs (the nearest mount point at or above it)
 * is made private, or a slave when rootfsPropagation is a slave one (as
 * runc does): pivot_root refuses a new root whose parent mount is shared,
 * and the rootfs' own bind must not propagate back to the host. */
static int rootfs_parent_unshared(const char *rootfs, unsigned long prop, ms_err *err) {
	char p[PATH_MAX];
	if (snprintf(p, sizeof p, "%s", rootfs) >= (int)sizeof p)
		return ms_fail(err, -ENAMETOOLONG, "root.path: too long");
	unsigned long flag = (prop & MS_SLAVE) ? MS_SLAVE : MS_PRIVATE;
	for (;;) {
		if (mount(NULL, p, NULL, flag, NULL) == 0)
			return 0;
		char *slash = strrchr(p, '/');
		if (errno != EINVAL || !slash || !strcmp(p, "/"))
			return ms_fail(err, -errno, "root.path: the mount holding %s: %s", rootfs,
			               strerror(errno));
		slash[slash == p] = 0; /* not a mount point: its parent directory */
	}
}

int ct__rootfs_setup(const spec *s, const ct_opts *o, bool userns, int sync_fd, int *idmount_fds,
                     ms_err *err) {
	unsigned long prop = s->rootfs_propagation ? s->rootfs_propagation : MS_SLAVE | MS_REC;
	if (mount(NULL, "/", NULL, prop, NULL) < 0)
		return ms_fail(err, -errno, "linux.rootfsPropagation: %s", strerror(errno));
	if (rootfs_parent_unshared(s->rootfs, s->rootfs_propagation, err))
		return err->code;
	if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return ms_fail(err, -errno, "root.path: bind %s: %s", s->rootfs, strerror(errno));
	int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return ms_fail(err, -errno, "root.path: %s: %s", s->rootfs, strerror(errno));
	bool dev_mounted = false;
	int rc = 0;
	for (size_t i = 0; i < s->nmounts && !rc; i++) {
		const spec_mount *m = &s->mounts[i];
		bool as_file;
		if ((rc = source_is_file(m, i, idmount_fds[i], &as_file, err)))
			break;
		int fd = make_in_root(rootfd, m->dest, as_file);
		if (fd < 0) {
			rc = ms_fail(err, fd, "mounts[%zu].destination: %s: %s", i, m->dest,
			             strerror(-fd));
			break;
		}
		char target[64];
		fd_path(fd, target, sizeof target);
		mount_at at = {.target = target, .target_fd = fd, .idmount_fd = idmount_fds[i]};
		int mrc = do_mount(o, m, &at, userns, rootfd);
		close(fd);
		if (idmount_fds[i] >= 0) {
			close(idmount_fds[i]);
			idmount_fds[i] = -1;
		}
		if (mrc)
			rc = ms_fail(err, mrc, "mounts[%zu]: mount %s on %s (%s): %s", i, m->source,
			             m->dest, m->bind ? "bind" : m->type, strerror(-mrc));
		else if (m->rro && (mrc = recursive_readonly(rootfd, m)))
			rc = ms_fail(err, mrc,
			             "mounts[%zu] (%s): rro: making it and its submounts read-only "
			             "(mount_setattr, Linux 5.12+): %s",
			             i, m->dest, strerror(-mrc));
		if (!strcmp(m->dest, "/dev") || !strcmp(m->dest, "/dev/"))
			dev_mounted = true;
	}
	if (!rc && dev_mounted)
		rc = populate_dev(s, rootfd, userns, err);
	if (!rc) { /* the working directory exists before the root turns read-only */
		int fd = make_in_root(rootfd, s->process.cwd, false);
		if (fd < 0)
			rc = ms_fail(err, fd, "process.cwd: %s: %s", s->process.cwd, strerror(-fd));
		else
			close(fd);
	}
	close(rootfd);
	if (rc || (rc = ct__create_hooks(s, o, sync_fd, err)))
		return rc;
	if ((rc = enter_root(s->rootfs, err)))
		return rc;
	/* a shared (or unbindable) rootfsPropagation is given to the new root
	 * now: before pivot_root it would have reached the host through the
	 * rootfs' parent; private and slave ones were set above */
	if (s->rootfs_propagation && !(s->rootfs_propagation & (MS_PRIVATE | MS_SLAVE)) &&
	    mount(NULL, "/", NULL, s->rootfs_propagation, NULL) < 0)
		return ms_fail(err, -errno, "linux.rootfsPropagation: on the new root: %s",
		               strerror(errno));
	if ((rc = write_sysctls(s, err)) || (rc = readonly_paths(s, err)) ||
	    (rc = mask_paths(s, err)))
		return rc;
	if (s->root_readonly && remount_bind("/", MS_RDONLY) < 0)
		return ms_fail(err, -errno, "root.readonly: remount / read-only: %s",
		               strerror(errno));
	return 0;
}

int ct__setup_terminal(int *master, bool bind_console, ms_err *err) {
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return ms_fail(err, -errno, "process.terminal: open /dev/ptmx: %s",
		               strerror(errno));
	char name[64];
	if (unlockpt(m) < 0 || ptsname_r(m, name, sizeof name)) {
		int e = errno;
		close(m);
		return ms_fail(err, -e, "process.terminal: pty: %s", strerror(e));
	}
	int slave = open(name, O_RDWR | O_NOCTTY);
	if (slave < 0) {
		int e = errno;
		close(m);
		return ms_fail(err, -e, "process.terminal: open %s: %s", name, strerror(e));
	}
	if (bind_console) {
		int fd = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0) {
			int e = errno;
			close(m);
			close(slave);
			return ms_fail(err, -e, "process.terminal: bind %s to /dev/console: %s",
			               name, strerror(e));
		}
	}
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 ||
	    dup2(slave, 1) < 0 || dup2(slave, 2) < 0) {
		int e = errno;
		close(m);
		close(slave);
		return ms_fail(err, -e, "process.terminal: making %s the controlling terminal: %s",
		               name, strerror(e));
	}
	if (slave > 2)
		close(slave);
	*master = m;
	return 0;
}
