/* cgroup_test.c — host layout detection (fake mount tables and the real
 * host) and the kernel's cgroup text formats, good and malformed. */
#define _GNU_SOURCE
#include "harness.h"

#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static const char *write_tmp(const char *text) {
	static char path[64];
	snprintf(path, sizeof path, "/tmp/moonshim-mounts-%d", getpid());
	FILE *f = fopen(path, "w");
	CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
	return path;
}

TEST(cg_detect_fake_layouts) {
	cg_host h;
	cg_err e = {0};
	/* hybrid: this project's machines */
	const char *hybrid =
	    "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
	    "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
	    "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
	    "cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n"
	    "cgroup /sys/fs/cgroup/cpuset cgroup rw,cpuset 0 0\n"
	    "cgroup /sys/fs/cgroup/net_cls,net_prio cgroup rw,net_cls,net_prio 0 0\n"
	    "cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0\n"
	    "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
	CHECKF(cg_host_detect(&h, write_tmp(hybrid), &e) == 0, "%s", e.msg);
	CHECK(!strcmp(h.unified, "/sys/fs/cgroup/unified"));
	CHECK(!strcmp(h.v1_memory, "/sys/fs/cgroup/memory"));
	CHECK(!strcmp(h.v1_cpu, "/sys/fs/cgroup/cpu,cpuacct"));
	CHECK(!strcmp(h.v1_pids, "/sys/fs/cgroup/pids"));
	/* every other hierarchy a container joins, co-mounted ones each */
	CHECK(!strcmp(h.v1_more[CG_V1_CPUSET], "/sys/fs/cgroup/cpuset"));
	CHECK(!strcmp(h.v1_more[CG_V1_CPUACCT], "/sys/fs/cgroup/cpu,cpuacct"));
	CHECK(!strcmp(h.v1_more[CG_V1_NET_CLS], "/sys/fs/cgroup/net_cls,net_prio"));
	CHECK(!strcmp(h.v1_more[CG_V1_NET_PRIO], "/sys/fs/cgroup/net_cls,net_prio"));
	CHECK(!strcmp(h.v1_more[CG_V1_SYSTEMD], "/sys/fs/cgroup/systemd"));
	CHECK(h.v1_more[CG_V1_BLKIO][0] == 0 && h.v1_more[CG_V1_FREEZER][0] == 0);
	CHECK(h.layout == CG_LAYOUT_HYBRID);
	/* pure v2 */
	CHECKF(cg_host_detect(&h, write_tmp("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"),
	                      &e) == 0,
	       "%s", e.msg);
	CHECK(h.layout == CG_LAYOUT_V2 && !strcmp(h.unified, "/sys/fs/cgroup"));
	/* v1 only: refused, saying why */
	CHECK(cg_host_detect(&h, write_tmp("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"),
	                     &e) == -ENOTSUP);
	CHECKF(strstr(e.msg, "cgroup v1 only") && strstr(e.msg, "cgroup2"), "%s", e.msg);
	CHECK(h.layout == CG_LAYOUT_V1);
	/* nothing mounted, and an unreadable table */
	CHECK(cg_host_detect(&h, write_tmp("proc /proc proc rw 0 0\n"), &e) == -ENOTSUP);
	CHECKF(strstr(e.msg, "no cgroup filesystem"), "%s", e.msg);
	CHECK(cg_host_detect(&h, "/nonexistent/mounts", &e) == -ENOENT);
	CHECKF(strstr(e.msg, "/nonexistent/mounts"), "%s", e.msg);
	unlink(write_tmp(""));
}

/* The real host: MOONSHIM_EXPECT_LAYOUT is set by the runner that knows
 * (tests/run.sh on the hybrid host, tests/vm inside the pure v2 VM). */
TEST(cg_detect_this_host) {
	cg_host h;
	cg_err e = {0};
	CHECKF(cg_host_detect(&h, "/proc/self/mounts", &e) == 0, "%s", e.msg);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/cgroup.controllers", h.unified);
	CHECKF(access(path, R_OK) == 0, "%s", path);
	const char *want = getenv("MOONSHIM_EXPECT_LAYOUT");
	if (want)
		CHECKF(!strcmp(cg_layout_name(h.layout), want), "layout %s, expected %s",
		       cg_layout_name(h.layout), want);
	if (h.layout == CG_LAYOUT_V2)
		CHECKF(cg_host_has_controller(&h, "memory") && cg_host_has_controller(&h, "cpu"),
		       "controllers: %s", h.controllers);
	else
		CHECK(h.v1_memory[0] && !cg_host_has_controller(&h, "memory"));
}

TEST(cg_parse_pressure_real_and_malformed) {
	cg_pressure p;
	cg_err e = {0};
	CHECK(cg_parse_pressure("some avg10=1.25 avg60=0.50 avg300=0.01 total=123456\n"
	                        "full avg10=0.00 avg60=0.00 avg300=0.00 total=42\n",
	                        &p, &e) == 0);
	CHECK(p.some.present && p.full.present);
	CHECK(p.some.avg10 == 1.25 && p.some.avg60 == 0.5 && p.some.total == 123456);
	CHECK(p.full.total == 42);
	/* cpu.pressure before 5.13 has no full line */
	CHECK(cg_parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &p, &e) == 0);
	CHECK(!p.full.present);
	/* torn or foreign lines are named */
	CHECK(cg_parse_pressure("some avg10=0.00 avg60=0.0", &p, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "malformed pressure line") && strstr(e.msg, "avg60=0.0"), "%s", e.msg);
	CHECK(cg_parse_pressure("partial avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &p, &e) ==
	      -EINVAL);
	CHECK(cg_parse_pressure("", &p, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "no \"some\" line"), "%s", e.msg);
	/* and the real files of this host */
	const char *files[] = {"/proc/pressure/memory", "/proc/pressure/cpu", "/proc/pressure/io"};
	for (size_t i = 0; i < 3; i++) {
		char buf[512] = {0};
		int fd = open(files[i], O_RDONLY);
		CHECKF(fd >= 0, "%s: %s", files[i], strerror(errno));
		CHECK(read(fd, buf, sizeof buf - 1) > 0);
		close(fd);
		CHECKF(cg_parse_pressure(buf, &p, &e) == 0, "%s: %s", files[i], e.msg);
	}
}

TEST(cg_parse_kv_events) {
	int64_t v;
	cg_err e = {0};
	const char *events = "populated 1\nfrozen 0\n";
	CHECK(cg_parse_kv(events, "populated", &v, &e) == 0 && v == 1);
	CHECK(cg_parse_kv(events, "frozen", &v, &e) == 0 && v == 0);
	CHECK(cg_parse_kv(events, "pop", &v, &e) == -ENOENT); /* whole keys only */
	const char *mem = "low 0\nhigh 17\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
	CHECK(cg_parse_kv(mem, "high", &v, &e) == 0 && v == 17);
	CHECK(cg_parse_kv(mem, "oom_kill", &v, &e) == 0 && v == 1);
	CHECK(cg_parse_kv("high x\n", "high", &v, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "bad value for high"), "%s", e.msg);
	CHECK(cg_parse_kv("garbage\n", "high", &v, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "garbage"), "%s", e.msg);
	/* a real cgroup.events from a cgroup this test makes */
	cg_host h;
	CHECK(cg_host_detect(&h, "/proc/self/mounts", &e) == 0);
	char dir[PATH_MAX + 64], path[PATH_MAX + 96], buf[256] = {0};
	snprintf(dir, sizeof dir, "%s/moonshim-cgtest-%d", h.unified, getpid());
	CHECKF(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
	snprintf(path, sizeof path, "%s/cgroup.events", dir);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf - 1) > 0);
	close(fd);
	rmdir(dir);
	CHECKF(cg_parse_kv(buf, "populated", &v, &e) == 0 && v == 0, "%s", buf);
}
