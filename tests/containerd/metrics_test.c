/* metrics_test.c — the Metrics a Stats call answers with, from a real
 * cgroup holding a busy process: decoded as containerd decodes it (v1
 * Metrics on a v1/hybrid host, v2 on a pure v2 one), its CPU usage above
 * zero and within measurement noise of what the kernel charged the
 * process itself (/proc/PID/stat utime + stime); pids and memory present
 * (memory.current may be 0 on v2: pages stay charged where the process
 * touched them before it moved). Runs in the pure-v2 VM
 * too (tests/vm/init-tests.sh). */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/containerd/metrics.h"
#include "containerd/metrics.pb-c.h"
#include "containerd/metrics_v1.pb-c.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUSY_US   (400 * 1000)
#define NS_PER_US 1000
#define US_PER_S  1000000
#define RETRIES   100
#define RETRY_US  10000

/* utime + stime of pid in microseconds. */
static int64_t proc_cpu_us(pid_t pid) {
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	CHECK(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the name may hold spaces */
	CHECK(p);
	unsigned long long ut = 0, st = 0;
	/* after ")": state(3) ... utime(14) stime(15) */
	CHECK(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) ==
	      2);
	return (int64_t)(ut + st) * US_PER_S / sysconf(_SC_CLK_TCK);
}

TEST(metrics_report_cpu_of_a_busy_cgroup) {
	cg_host host;
	cg_err e = {0};
	CHECKF(cg_host_detect(&host, "/proc/self/mounts", &e) == 0, "%s", e.msg);
	char parent[64], rel[96];
	snprintf(parent, sizeof parent, "moonshim-test-%d", getpid());
	snprintf(rel, sizeof rel, "%s/metrics", parent);
	cg *c = cg_open(&host, rel, true, &e);
	CHECKF(c, "%s", e.msg);
	/* the child spins only once it is in the cgroup, so that the cgroup's
	 * figure and the process's cover the same time */
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		char b;
		close(go[1]);
		if (read(go[0], &b, 1) != 1)
			_exit(1);
		for (;;)
			; /* busy until killed */
	}
	close(go[0]);
	CHECKF(cg_attach(c, pid, &e) == 0, "%s", e.msg);
	CHECK(write(go[1], "g", 1) == 1);
	close(go[1]);
	usleep(BUSY_US);
	kill(pid, SIGSTOP); /* the two reads below see the same figure */
	usleep(RETRY_US);
	int64_t proc_us = proc_cpu_us(pid);
	size_t n = 0;
	const char *type = NULL;
	uint8_t *buf = metrics_pack(c, host.layout, &n, &type);
	CHECK(buf && type);
	int64_t usage_us;
	if (host.layout == CG_LAYOUT_V2) {
		CHECK(!strcmp(type, "io.containerd.cgroups.v2.Metrics"));
		Io__Containerd__Cgroups__V2__Metrics *m =
		    io__containerd__cgroups__v2__metrics__unpack(NULL, n, buf);
		CHECK(m && m->cpu && m->pids && m->memory);
		usage_us = (int64_t)m->cpu->usage_usec;
		CHECKF(m->pids->current == 1, "pids.current %llu",
		       (unsigned long long)m->pids->current);
		io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
	} else {
		CHECK(!strcmp(type, "io.containerd.cgroups.v1.Metrics"));
		Io__Containerd__Cgroups__V1__Metrics *m =
		    io__containerd__cgroups__v1__metrics__unpack(NULL, n, buf);
		CHECK(m && m->cpu && m->cpu->usage && m->pids && m->memory && m->memory->usage);
		usage_us = (int64_t)(m->cpu->usage->total / NS_PER_US);
		CHECK(m->cpu->usage->n_per_cpu > 0);
		CHECKF(m->pids->current == 1, "pids.current %llu",
		       (unsigned long long)m->pids->current);
		io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
	}
	free(buf);
	fprintf(stderr, "%s: cpu usage %lld us, the process's utime+stime %lld us\n",
	        cg_layout_name(host.layout), (long long)usage_us, (long long)proc_us);
	CHECK(usage_us > 0);
	/* the cgroup's figure is exact; /proc's is in clock ticks */
	int64_t tick_us = US_PER_S / sysconf(_SC_CLK_TCK);
	CHECKF(usage_us + 2 * tick_us >= proc_us &&
	           usage_us <= proc_us + 2 * tick_us + proc_us / 10,
	       "cgroup %lld us vs process %lld us", (long long)usage_us, (long long)proc_us);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int rc;
	for (int i = 0; i < RETRIES && (rc = cg_remove(c, &e)) == -EBUSY; i++)
		usleep(RETRY_US);
	CHECKF(rc == 0, "%s", e.msg);
	cg_close(c);
	cg *p = cg_open(&host, parent, false, &e);
	CHECKF(p, "%s", e.msg);
	CHECKF(cg_remove(p, &e) == 0, "%s", e.msg);
	cg_close(p);
}
