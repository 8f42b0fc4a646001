/*
 * dev_check.c — checks shim/oci/devices.c against the kernel: a forked child
 * moved into a cgroup whose device rules were set by dev_setup opens device
 * nodes, and each open must succeed or fail with EPERM as the rules say.
 * Both enforcers run on a hybrid host: the v1 devices hierarchy (as the shim
 * uses it there), and the cgroup2 BPF program, attached to a directory of the
 * unified mount by calling dev_setup with the layout forced to pure v2 (the
 * v1 devices cgroup of the child is then the root's, which allows all). On a
 * pure v2 host only the BPF part runs.
 *
 * Needs root, a block device under /dev and /dev/kmsg. Exit status: 0 all
 * passed, 1 some check failed, 77 skipped (not root). Build and run from the
 * repository root:
 *   make build/tests/dev_check
 *   build/tests/dev_check
 */
#define _GNU_SOURCE
#include "../../shim/oci/devices.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define REL      "devtest/x"
#define NODE_TMP "/tmp/dev_check-null" /* where the child tries mknod */

static int failures;
static char blk[PATH_MAX]; /* a block device the test may open read-only */
static unsigned blk_major, blk_minor;

typedef struct probe {
	const char *path; /* NULL ends a list; "mknod" makes a /dev/null node */
	int flags;
	int want; /* 0 or the errno the open must fail with */
} probe;

/* ─── The child's side ────────────────────────────────────────────────── */

static int try(const probe *p) {
	if (!strcmp(p->path, "mknod")) {
		unlink(NODE_TMP);
		int rc = mknod(NODE_TMP, S_IFCHR | 0600, makedev(1, 3)) < 0 ? errno : 0;
		unlink(NODE_TMP);
		return rc;
	}
	int fd = open(p->path, p->flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static const char *mode(const probe *p) {
	int flags = p->flags;
	if (!strcmp(p->path, "mknod"))
		return "c 1:3";
	return (flags & O_ACCMODE) == O_RDWR ? "rw" : (flags & O_ACCMODE) == O_WRONLY ? "w" : "r";
}

static int run_probes(const probe *p) {
	int bad = 0;
	for (; p->path; p++) {
		int got = try(p);
		bool ok = got == p->want;
		printf("    %s %s(%s): %s%s%s\n", ok ? "ok  " : "FAIL", p->path, mode(p),
		       got ? strerror(got) : "allowed", ok ? "" : ", expected ",
		       ok ? "" : (p->want ? strerror(p->want) : "allowed"));
		bad += !ok;
	}
	fflush(stdout);
	return bad;
}

/* ─── The parent's side ───────────────────────────────────────────────── */

static void check(bool cond, const char *what) {
	printf("  %s %s\n", cond ? "ok  " : "FAIL", what);
	fflush(stdout); /* before the child's lines */
	failures += !cond;
}

static int write_str(const char *path, const char *s) {
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, s, strlen(s));
	int e = errno;
	close(fd);
	return w == (ssize_t)strlen(s) ? 0 : -e;
}

/* Fork a child that waits until it has been moved (v1: dev_attach; v2:
 * into v2dir's cgroup.procs), then runs the probes. */
static void run_child(const cg_host *h, const char *v2dir, const probe *probes) {
	int go[2];
	if (pipe(go) < 0) {
		perror("pipe");
		exit(1);
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char b;
		close(go[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(100);
		_exit(run_probes(probes));
	}
	close(go[0]);
	int rc;
	ms_err err = {0};
	if (v2dir) {
		char path[PATH_MAX + 32], val[24];
		snprintf(path, sizeof path, "%s/cgroup.procs", v2dir);
		snprintf(val, sizeof val, "%d", (int)pid);
		rc = write_str(path, val);
		if (rc)
			ms_fail(&err, rc, "write %s: %s", path, strerror(-rc));
	} else {
		rc = dev_attach(h, REL, pid, &err);
	}
	check(rc == 0, rc ? err.msg : "child moved into the cgroup");
	if (rc)
		kill(pid, SIGKILL);
	if (write(go[1], "g", 1) != 1)
		perror("write");
	close(go[1]);
	int st;
	waitpid(pid, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "every probe as expected");
}

static dev_rules *rules(const char *json) {
	json_error_t je;
	json_t *arr = json_loads(json, 0, &je);
	dev_rules *r = NULL;
	ms_err err = {0};
	if (!arr || dev_rules_parse(arr, "linux.resources.devices", &r, &err)) {
		printf("  FAIL parsing %s: %s\n", json, arr ? err.msg : je.text);
		failures++;
	}
	json_decref(arr);
	return r;
}

typedef struct scenario {
	const char *name;
	char json[512];
	probe probes[8];
	bool v1_refuses; /* a list v1 cannot express */
} scenario;

/* v1: setup, move a child in, probe, clean up, check nothing is left. */
static void run_v1(const cg_host *h, const scenario *s, const char *mnt) {
	printf("v1 devices hierarchy: %s\n", s->name);
	dev_rules *r = rules(s->json);
	if (!r)
		return;
	ms_err err = {0};
	int rc = dev_setup(r, h, REL, &err);
	dev_rules_free(r);
	if (s->v1_refuses) {
		check(rc == -EINVAL && strstr(err.msg, "cannot express"), err.msg);
	} else {
		check(rc == 0, rc ? err.msg : "dev_setup");
		if (!rc)
			run_child(h, NULL, s->probes);
	}
	dev_cleanup(h, REL);
	char top[PATH_MAX + 16];
	snprintf(top, sizeof top, "%s/devtest", mnt);
	check(access(top, F_OK) < 0 && errno == ENOENT,
	      "dev_cleanup removed devtest/x and devtest");
}

/* v2: a cgroup2 directory of our own, the program attached to it. */
static void run_v2(const cg_host *host, const scenario *s) {
	printf("cgroup2 BPF program: %s\n", s->name);
	cg_host h = *host;
	h.layout = CG_LAYOUT_V2;
	char top[PATH_MAX + 16], dir[PATH_MAX + 16];
	snprintf(top, sizeof top, "%s/devtest", h.unified);
	snprintf(dir, sizeof dir, "%s/" REL, h.unified);
	mkdir(top, 0755);
	if (mkdir(dir, 0755) < 0) {
		printf("  FAIL mkdir %s: %s\n", dir, strerror(errno));
		failures++;
		return;
	}
	dev_rules *r = rules(s->json);
	if (r) {
		ms_err err = {0};
		int rc = dev_setup(r, &h, REL, &err);
		dev_rules_free(r);
		check(rc == 0, rc ? err.msg : "dev_setup (program loaded and attached)");
		if (!rc)
			run_child(&h, dir, s->probes);
	}
	check(rmdir(dir) == 0 && rmdir(top) == 0, "cgroup2 directories removed");
}

/* The first block device the parent can open read-only. */
static bool find_block_device(void) {
	DIR *d = opendir("/dev");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		struct stat st;
		snprintf(blk, sizeof blk, "/dev/%s", e->d_name);
		if (stat(blk, &st) == 0 && S_ISBLK(st.st_mode)) {
			int fd = open(blk, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
			if (fd >= 0) {
				close(fd);
				blk_major = major(st.st_rdev);
				blk_minor = minor(st.st_rdev);
				closedir(d);
				return true;
			}
		}
	}
	if (d)
		closedir(d);
	return false;
}

/* Parse errors name the rule and the field. */
static void check_parse_errors(void) {
	static const struct {
		const char *json, *want;
	} bad[] = {
	    {"[{\"access\":\"rwm\"}]", "linux.resources.devices[0].allow: missing"},
	    {"[{\"allow\":false},{\"allow\":true,\"type\":\"x\"}]",
	     "linux.resources.devices[1].type: must be"},
	    {"[{\"allow\":true,\"access\":\"rwx\"}]", "[0].access: \"rwx\" is not"},
	    {"[{\"allow\":true,\"major\":-5}]", "[0].major: must be an integer"},
	    {"{\"allow\":true}", "linux.resources.devices: must be an array"},
	};
	printf("parse errors\n");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *arr = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
		dev_rules *r = NULL;
		ms_err err = {0};
		int rc = dev_rules_parse(arr, "linux.resources.devices", &r, &err);
		check(rc == -EINVAL && strstr(err.msg, bad[i].want), rc ? err.msg : bad[i].json);
		dev_rules_free(r);
		json_decref(arr);
	}
}

int main(void) {
	if (geteuid() != 0) {
		fprintf(stderr, "dev_check: needs root, skipped\n");
		return 77;
	}
	cg_host h;
	cg_err cerr = {0};
	if (cg_host_detect(&h, "/proc/self/mounts", &cerr)) {
		fprintf(stderr, "dev_check: %s\n", cerr.msg);
		return 1;
	}
	if (!find_block_device() || access("/dev/kmsg", F_OK) < 0) {
		fprintf(stderr, "dev_check: needs a block device under /dev and /dev/kmsg\n");
		return 1;
	}
	printf("host: %s; block device %s (%u:%u)\n", cg_layout_name(h.layout), blk, blk_major,
	       blk_minor);
	check_parse_errors();

	scenario sc[] = {
	    {.name = "deny all: only the built-in nodes",
	     .json = "[{\"allow\":false,\"access\":\"rwm\"}]",
	     .probes = {{"/dev/null", O_RDWR, 0},
	                {"/dev/zero", O_RDONLY, 0},
	                {"/dev/urandom", O_RDONLY, 0},
	                {blk, O_RDONLY, EPERM},
	                {"/dev/kmsg", O_RDONLY, EPERM},
	                {"mknod", 0, 0},
	                {NULL, 0, 0}}},
	    {.name = "deny all, then read on the block device",
	     .probes = {{blk, O_RDONLY, 0},
	                {blk, O_WRONLY, EPERM},
	                {"/dev/kmsg", O_RDONLY, EPERM},
	                {"/dev/null", O_WRONLY, 0},
	                {NULL, 0, 0}}},
	    {.name = "allow all, then deny writing /dev/kmsg",
	     .json = "[{\"allow\":true,\"access\":\"rwm\"},"
	             "{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":11,\"access\":\"w\"}]",
	     .probes = {{"/dev/kmsg", O_RDONLY, 0},
	                {"/dev/kmsg", O_WRONLY, EPERM},
	                {blk, O_RDONLY, 0},
	                {"/dev/null", O_RDWR, 0},
	                {NULL, 0, 0}}},
	    {.name = "allow c *:*, then deny writing /dev/kmsg (a hole v1 cannot punch)",
	     .json = "[{\"allow\":false,\"access\":\"rwm\"},"
	             "{\"allow\":true,\"type\":\"c\",\"access\":\"rwm\"},"
	             "{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":11,\"access\":\"w\"}]",
	     .probes = {{"/dev/kmsg", O_RDONLY, 0},
	                {"/dev/kmsg", O_WRONLY, EPERM},
	                {"/dev/null", O_RDWR, 0},
	                {blk, O_RDONLY, EPERM},
	                {NULL, 0, 0}},
	     .v1_refuses = true},
	};
	snprintf(sc[1].json, sizeof sc[1].json,
	         "[{\"allow\":false,\"access\":\"rwm\"},"
	         "{\"allow\":true,\"type\":\"b\",\"major\":%u,\"minor\":%u,\"access\":\"r\"}]",
	         blk_major, blk_minor);

	char mnt[PATH_MAX] = "";
	FILE *f = fopen("/proc/self/mounts", "r");
	char dev[256], dir[PATH_MAX], type[64], opts[1024];
	while (f && fscanf(f, "%255s %4095s %63s %1023s %*[^\n]", dev, dir, type, opts) == 4)
		if (!strcmp(type, "cgroup") && strstr(opts, "devices"))
			snprintf(mnt, sizeof mnt, "%s", dir);
	if (f)
		fclose(f);
	for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
		if (h.layout != CG_LAYOUT_V2 && mnt[0])
			run_v1(&h, &sc[i], mnt);
		run_v2(&h, &sc[i]);
	}
	printf("%s\n", failures ? "dev_check: FAILED" : "dev_check: all passed");
	return failures ? 1 : 0;
}
