/* cg_test.c — a real cgroup: created in every hierarchy of this host,
 * a process attached, populated 1→0 seen through EPOLLPRI within
 * milliseconds of the process's death, removed; bad requests rejected with
 * a message naming the path. */
#define _GNU_SOURCE
#include "harness.h"

#include "cgroup.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static cg_host host;
static cg *grp;
static pid_t child;
static int64_t killed_at, seen_at;

static int64_t populated(void) {
	char buf[256];
	cg_err e = {0};
	int64_t v = -1;
	CHECKF(cg_read(grp, "cgroup.events", buf, sizeof buf, &e) > 0, "%s", e.msg);
	CHECKF(cg_parse_kv(buf, "populated", &v, &e) == 0, "%s", e.msg);
	return v;
}

static void killer(void *arg) {
	rt_sleep(20000000);
	killed_at = rt_now();
	kill(child, SIGKILL);
}

static int watch_main(void *arg) {
	cg_err e = {0};
	int fd = cg_fd(grp, "cgroup.events", &e);
	CHECKF(fd >= 0, "%s", e.msg);
	int perr;
	rt_pollfd *pd = rt_poll_open(fd, &perr);
	CHECK(pd);
	CHECK(populated() == 1);
	rt_go(killer, NULL, "killer");
	/* the first wait may return for readiness noticed at registration */
	for (int i = 0; i < 5 && populated() == 1; i++)
		CHECK(rt_poll_wait(pd, RT_POLL_PRI, rt_deadline_in(5000000000LL)) == 0);
	seen_at = rt_now();
	CHECK(populated() == 0);
	rt_poll_close(pd);
	return 0;
}

TEST(cg_populated_edge_and_cleanup) {
	cg_err e = {0};
	CHECKF(cg_host_detect(&host, "/proc/self/mounts", &e) == 0, "%s", e.msg);
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-test-%d/ctr", getpid());
	grp = cg_open(&host, rel, true, &e);
	CHECKF(grp, "%s", e.msg);
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	CHECKF(cg_attach(grp, child, &e) == 0, "%s", e.msg);
	/* on a hybrid host the process is in the v1 memory hierarchy too */
	if (host.layout == CG_LAYOUT_HYBRID) {
		char path[PATH_MAX + 80], buf[64] = {0};
		snprintf(path, sizeof path, "%s/%s/cgroup.procs", host.v1_memory, rel);
		FILE *f = fopen(path, "r");
		CHECK(f && fgets(buf, sizeof buf, f));
		fclose(f);
		CHECKF(atoi(buf) == child, "%s has %s", path, buf);
	}
	run_rt(2, watch_main, NULL);
	waitpid(child, NULL, 0);
	int64_t latency = seen_at - killed_at;
	fprintf(stderr, "populated 1->0 seen %lld us after SIGKILL\n", (long long)latency / 1000);
	if (scaled(100) == 100)
		CHECKF(latency < 100000000, "populated 1->0 seen %lld ms after kill",
		       (long long)latency / 1000000);
	for (int i = 0; i < 100 && cg_remove(grp, &e) == -EBUSY; i++)
		usleep(10000);
	CHECKF(cg_remove(grp, &e) == 0, "%s", e.msg);
	struct stat st;
	CHECK(stat(cg_path(grp), &st) != 0 && errno == ENOENT);
	cg_close(grp);
	char parent[PATH_MAX + 64];
	snprintf(parent, sizeof parent, "moonshim-test-%d", getpid());
	cg *p = cg_open(&host, parent, false, &e);
	CHECKF(p, "%s", e.msg);
	CHECK(cg_remove(p, &e) == 0);
	cg_close(p);
}

TEST(cg_bad_requests_name_the_path) {
	cg_err e = {0};
	CHECK(cg_host_detect(&host, "/proc/self/mounts", &e) == 0);
	CHECK(!cg_open(&host, "no-such-cgroup-here", false, &e));
	CHECKF(e.code == -ENOENT && strstr(e.msg, "no-such-cgroup-here"), "%s", e.msg);
	CHECK(!cg_open(&host, "../escape", true, &e));
	CHECKF(e.code == -EINVAL && strstr(e.msg, ".."), "%s", e.msg);
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-bad-%d", getpid());
	cg *c = cg_open(&host, rel, true, &e);
	CHECKF(c, "%s", e.msg);
	CHECK(cg_attach(c, 999999999, &e) < 0);
	CHECKF(strstr(e.msg, "cgroup.procs") && strstr(e.msg, "999999999"), "%s", e.msg);
	char buf[64];
	CHECK(cg_read(c, "no.such.file", buf, sizeof buf, &e) == -ENOENT);
	CHECKF(strstr(e.msg, "no.such.file"), "%s", e.msg);
	CHECK(cg_remove(c, &e) == 0);
	cg_close(c);
}

/* The hierarchies a process joins: on a hybrid host every v1 one the host
 * mounts (cpuset made usable by copying the parent's cpus/mems), as runc
 * does; cpuset.cpus pins it, a second write re-pins it; removal leaves no
 * directory in any of them. */
static void cpus_allowed(pid_t pid, char *out, size_t n) {
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	CHECK(f);
	out[0] = 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Cpus_allowed_list:", 18))
			snprintf(out, n, "%.*s", (int)strcspn(line + 19, "\n"),
			         line + 18 + strspn(line + 18, " \t"));
	fclose(f);
}

TEST(cg_joins_every_hierarchy_and_cpuset_pins) {
	cg_err e = {0};
	CHECKF(cg_host_detect(&host, "/proc/self/mounts", &e) == 0, "%s", e.msg);
	char rel[96], parent[64];
	snprintf(parent, sizeof parent, "moonshim-test-%d", getpid());
	snprintf(rel, sizeof rel, "%s/pin", parent);
	cg *c = cg_open(&host, rel, true, &e);
	CHECKF(c, "%s", e.msg);
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	CHECKF(cg_attach(c, pid, &e) == 0, "%s", e.msg);
	char path[PATH_MAX + 64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "r");
	CHECK(f);
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	buf[len] = 0;
	fclose(f);
	int joined = 0;
	for (int i = 0; host.layout == CG_LAYOUT_HYBRID && i < CG_V1_MORE; i++) {
		if (!host.v1_more[i][0])
			continue;
		char want[128];
		snprintf(want, sizeof want, "%s:/%s\n", cg_v1_hier_name(i), rel);
		/* co-mounted hierarchies share a line: "cpu,cpuacct:/..." */
		CHECKF(strstr(buf, want) || strstr(buf, rel), "%s not in %s:\n%s",
		       cg_v1_hier_name(i), path, buf);
		joined++;
	}
	fprintf(stderr, "joined %d more v1 hierarchies:\n%s", joined, buf);
	char cpus[64];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	for (long cpu = 0; cpu < (ncpu < 2 ? ncpu : 2); cpu++) {
		char want[24]; /* a long in decimal */
		snprintf(want, sizeof want, "%ld", cpu);
		cg_limits l;
		cg_limits_init(&l);
		l.cpuset_cpus = want;
		l.cpuset_mems = "0";
		CHECKF(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
		cpus_allowed(pid, cpus, sizeof cpus);
		CHECKF(!strcmp(cpus, want), "pinned to %s: Cpus_allowed_list %s", want, cpus);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int rc;
	for (int i = 0; i < 100 && (rc = cg_remove(c, &e)) == -EBUSY; i++)
		usleep(10000);
	CHECKF(rc == 0, "%s", e.msg);
	cg_close(c);
	for (int i = 0; host.layout == CG_LAYOUT_HYBRID && i < CG_V1_MORE; i++) {
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", host.v1_more[i], rel);
		CHECKF(!host.v1_more[i][0] || stat(path, &st) != 0, "%s left behind", path);
	}
	cg *p = cg_open(&host, parent, false, &e);
	CHECKF(p, "%s", e.msg);
	CHECKF(cg_remove(p, &e) == 0, "%s", e.msg);
	cg_close(p);
}
