/*
 * process.c — the last steps of every container process, in the child:
 * rlimits, user and groups, capabilities (libcap), no_new_privs, seccomp,
 * close-on-exec for every inherited fd, and execve with the program looked
 * up in the container's own PATH.
 *
 * The order follows what the kernel allows: seccomp without no_new_privs
 * needs CAP_SYS_ADMIN, so it goes in before capabilities are dropped;
 * with no_new_privs it goes in last, so the filter sees only execve.
 */
#define _GNU_SOURCE
#include "ct_internal.h"
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <grp.h>
#include <limits.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The status of a created process deleted before it was started. */
#define EXIT_NEVER_STARTED 137

/* PATH for a container whose env has none (runc's and Go's default). */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int ct__final_prepare(const spec_process *p, const sc_program *sc, ct_final *f, ms_err *err) {
	f->p = p;
	f->seccomp = sc;
	f->caps = cap_init();
	if (!f->caps)
		return ms_fail(err, -errno, "cap_init: %s", strerror(errno));
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		uint64_t bit = 1ULL << c;
		if (p->caps.effective & bit)
			cap_set_flag(f->caps, CAP_EFFECTIVE, 1, &c, CAP_SET);
		if (p->caps.permitted & bit)
			cap_set_flag(f->caps, CAP_PERMITTED, 1, &c, CAP_SET);
		if (p->caps.inheritable & bit)
			cap_set_flag(f->caps, CAP_INHERITABLE, 1, &c, CAP_SET);
	}
	return 0;
}

void ct__final_release(ct_final *f) {
	if (f->caps)
		cap_free(f->caps);
	f->caps = NULL;
}

static int set_rlimits(const spec_process *p, ms_err *err) {
	for (size_t i = 0; i < p->nrlimits; i++) {
		struct rlimit rl = {p->rlimits[i].soft, p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return ms_fail(err, -errno,
			               "process.rlimits[%zu]: setrlimit(%llu, %llu): %s", i,
			               (unsigned long long)rl.rlim_cur,
			               (unsigned long long)rl.rlim_max, strerror(errno));
	}
	return 0;
}

/* Drop from the bounding set, change user keeping capabilities, then set
 * the three process sets and raise the ambient ones. */
static int set_identity(const ct_final *f, ms_err *err) {
	const spec_process *p = f->p;
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (!(p->caps.bounding & (1ULL << c)) && cap_drop_bound(c) < 0 && errno != EINVAL)
			return ms_fail(err, -errno,
			               "process.capabilities.bounding: dropping %d: %s", c,
			               strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return ms_fail(err, -errno, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
	if (setgroups(p->ngids, p->gids) < 0)
		return ms_fail(err, -errno, "process.user.additionalGids: setgroups: %s",
		               strerror(errno));
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return ms_fail(err, -errno, "process.user.gid: setresgid(%u): %s", p->gid,
		               strerror(errno));
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return ms_fail(err, -errno, "process.user.uid: setresuid(%u): %s", p->uid,
		               strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return ms_fail(err, -errno, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
	if (cap_set_proc(f->caps) < 0)
		return ms_fail(err, -errno, "process.capabilities: capset: %s", strerror(errno));
	/* Like runc, an ambient capability the kernel refuses (not in both
	 * permitted and inheritable) is skipped, not fatal. */
	cap_reset_ambient();
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (p->caps.ambient & (1ULL << c))
			(void)cap_set_ambient(c, CAP_SET);
	return 0;
}

/* The program to execve: args[0] as given when it holds a '/', else the
 * first executable match in the container's PATH. */
static int find_program(const spec_process *p, char *out, size_t n, ms_err *err) {
	const char *prog = p->args[0];
	struct stat st;
	if (strchr(prog, '/')) {
		if (stat(prog, &st) < 0)
			return ms_fail(err, -errno, "exec: \"%s\": stat %s: %s", prog, prog,
			               strerror(errno));
		/* as execve would answer, but now: a held process (run, containerd's
		 * Create) reports its errors at "ready", before it waits */
		if (S_ISDIR(st.st_mode) || access(prog, X_OK) < 0)
			return ms_fail(err, -EACCES, "exec: \"%s\": %s", prog,
			               S_ISDIR(st.st_mode) ? "is a directory" : strerror(EACCES));
		snprintf(out, n, "%s", prog);
		return 0;
	}
	const char *path = DEFAULT_PATH;
	for (char **e = p->env; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	for (const char *dir = path; dir;) {
		const char *colon = strchr(dir, ':');
		size_t len = colon ? (size_t)(colon - dir) : strlen(dir);
		snprintf(out, n, "%.*s%s%s", (int)len, len ? dir : ".", "/", prog);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		dir = colon ? colon + 1 : NULL;
	}
	return ms_fail(err, -ENOENT, "exec: \"%s\": executable file not found in $PATH", prog);
}

/* The home directory of uid in the container's /etc/passwd, "/" when it
 * has none (runc's rule). Read by hand: NSS would load the image's libraries
 * into this process. */
static void home_of(uid_t uid, char *out, size_t n) {
	snprintf(out, n, "/");
	FILE *f = fopen("/etc/passwd", "re");
	if (!f)
		return;
	char line[1024];
	while (fgets(line, sizeof line, f)) {
		char *field[7] = {0}, *t = line;
		int k = 0;
		/* strsep keeps empty fields, which passwd lines have */
		while (k < 7 && (field[k] = strsep(&t, ":\n")))
			k++;
		if (k >= 6 && field[2][0] && (uid_t)strtoul(field[2], NULL, 10) == uid &&
		    field[5][0]) {
			snprintf(out, n, "%s", field[5]);
			break;
		}
	}
	fclose(f);
}

/* p->env, with HOME added from /etc/passwd when the spec has none. */
static char **exec_env(const spec_process *p) {
	size_t n = 0;
	for (; p->env[n]; n++)
		if (!strncmp(p->env[n], "HOME=", 5))
			return p->env;
	char **env = calloc(n + 2, sizeof *env);
	char home[PATH_MAX], *kv = malloc(PATH_MAX + 8);
	if (!env || !kv)
		return p->env;
	home_of(p->uid, home, sizeof home);
	snprintf(kv, PATH_MAX + 8, "HOME=%s", home);
	memcpy(env, p->env, n * sizeof *env);
	env[n] = kv;
	return env;
}

/* chdir to process.cwd without leaving the container (CVE-2024-21626):
 * until execve this process still holds host fds (the cgroup directory,
 * the sync socket), and /proc/self/fd/N — named in the spec or planted by
 * the workload as a symlink on the way to its cwd — would resolve to
 * them. So no /proc magic link is followed on the way, and the result must
 * be reachable from the container's root: the kernel's getcwd answers
 * "(unreachable)…" (glibc: ENOENT) for a directory outside it. */
static int enter_cwd(const char *cwd, ms_err *err) {
	struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	                       .resolve = RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, cwd, &how, sizeof how);
	if (fd < 0 && errno != ENOSYS) {
		if (errno == ELOOP)
			return ms_fail(
			    err, -ELOOP,
			    "process.cwd %s: refusing a /proc magic link or a symlink loop on "
			    "the way (possible container breakout)",
			    cwd);
		return ms_fail(err, -errno, "process.cwd: chdir %s: %s", cwd, strerror(errno));
	}
	int rc = fd >= 0 ? fchdir(fd) : chdir(cwd); /* no openat2 (< 5.6): checked below */
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return ms_fail(err, -e, "process.cwd: chdir %s: %s", cwd, strerror(e));
	char at[PATH_MAX];
	if (!getcwd(at, sizeof at) || at[0] != '/')
		return ms_fail(
		    err, -EPERM,
		    "process.cwd %s: current working directory is outside of the container's "
		    "root (possible container breakout detected)",
		    cwd);
	return 0;
}

/* The steps after Start: the no_new_privs filter (it must see only
 * execve), and execve. Returns only on failure. */
static int exec_now(const ct_final *f, const char *prog, char **env, ms_err *err) {
	const spec_process *p = f->p;
	int rc;
	if (f->seccomp && f->seccomp->prog.len && p->no_new_privs &&
	    (rc = sc_install(f->seccomp)) < 0)
		return ms_fail(err, rc, "linux.seccomp: loading the filter: %s", strerror(-rc));
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
	umask(p->has_umask ? p->umask : 022);
	execve(prog, p->args, env);
	int e = errno;
	if (e == E2BIG)
		return ms_fail(err, -e,
		               "exec: \"%s\": the arguments and environment are too big for execve "
		               "(%s)",
		               p->args[0], strerror(e));
	return ms_fail(err, -e, "exec: \"%s\": %s", p->args[0], strerror(e));
}

/* startContainer: in the container, as its process (identity, cwd), just
 * before execve; a hook without env gets the process's, as under runc. */
static int start_hooks(const ct_final *f, char **env, ms_err *err) {
	oh_state st = {.id = f->id, .status = "created", .pid = getpid()};
	return f->hooks ? oh_run(f->hooks, SPEC_HOOK_START_CONTAINER, &st, NULL, env, err) : 0;
}

int ct__final_exec(const ct_final *f, ms_err *err) {
	const spec_process *p = f->p;
	char **env = exec_env(p);
	bool filter = f->seccomp && f->seccomp->prog.len;
	int rc;
	/* Nothing of ours may reach the workload: an inherited directory fd
	 * is a way out of the rootfs (CVE-2024-21626). First of all, so that a
	 * seccomp filter cannot refuse it; the fds stay usable until execve. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		return ms_fail(err, -errno, "close_range: %s", strerror(errno));
	if ((rc = set_rlimits(p, err)))
		return rc;
	if (filter && !p->no_new_privs && (rc = sc_install(f->seccomp)) < 0)
		return ms_fail(err, rc, "linux.seccomp: loading the filter: %s", strerror(-rc));
	if ((rc = set_identity(f, err)))
		return rc;
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return ms_fail(err, -errno, "process.noNewPrivileges: prctl: %s", strerror(errno));
	if ((rc = enter_cwd(p->cwd, err)))
		return rc;
	char prog[PATH_MAX];
	if ((rc = find_program(p, prog, sizeof prog, err)))
		return rc;
	if (f->start_fd >= 0) { /* everything that can fail has been tried: wait for Start */
		ct__send_ready(f->sync_fd);
		char go;
		ssize_t n;
		while ((n = read(f->start_fd, &go, 1)) < 0 && errno == EINTR) {
		}
		if (n != 1)
			_exit(EXIT_NEVER_STARTED);
		/* the creator has stopped listening on sync_fd: what fails from
		 * here on goes back to the starter */
		rc = start_hooks(f, env, err) ? err->code : exec_now(f, prog, env, err);
		ct_start_report r = {.code = rc};
		snprintf(r.msg, sizeof r.msg, "%s", err->msg);
		(void)!send(f->start_fd, &r, sizeof r, MSG_NOSIGNAL);
		return rc;
	}
	return start_hooks(f, env, err) ? err->code : exec_now(f, prog, env, err);
}
