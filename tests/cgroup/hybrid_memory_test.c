/* hybrid_memory_test.c — memory.high on a hybrid host: it maps to v1's
 * soft limit, and the watcher's usage threshold (cgroup.event_control)
 * reports an upward crossing as one "high" event. Skipped on pure v2,
 * where the VM's tests cover real memory.high throttling. */
#define _GNU_SOURCE
#include "harness.h"

#include "cgroup.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MiB (1 << 20)

static cg_host host;

static int high_main(void *arg) {
	cg_err e = {0};
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-test-%d/high", getpid());
	cg *c = cg_open(&host, rel, true, &e);
	CHECKF(c, "%s", e.msg);
	cg_limits l;
	cg_limits_init(&l);
	l.memory_high = 8 * MiB;
	CHECKF(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
	cg_memory m;
	CHECKF(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	CHECKF(m.high == 8 * MiB && m.max == CG_NOLIMIT, "high %lld max %lld", (long long)m.high,
	       (long long)m.max);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 16);
	cg_watch *w = cg_watch_start(c, NULL, out, &e);
	CHECKF(w, "%s", e.msg);
	rt_sleep(50000000); /* the v1 watcher registers its threshold */
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t kid = cg_fork_into(c, NULL, &e);
	CHECKF(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		char b;
		if (read(go[0], &b, 1) != 1) /* until the parent has put us in v1 too */
			_exit(1);
		/* no malloc: a clone3 child may inherit a lock another thread held */
		char *p = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		               -1, 0);
		if (p == MAP_FAILED)
			_exit(1);
		memset(p, 1, 16 * MiB);
		sleep(30); /* killed long before; bounded if the test dies first */
		_exit(0);
	}
	CHECK(write(go[1], "g", 1) == 1);
	cg_event ev;
	rt_case cs[1] = {{.c = out, .dir = RT_RECV, .elem = &ev}};
	int64_t high = 0;
	while (high == 0 && rt_select(cs, 1, rt_deadline_in(5000000000LL)) == 0)
		if (ev.kind == CG_EV_MEMORY)
			high += ev.mem.delta.high;
		else
			fprintf(stderr, "%s: %s\n", cg_event_name(ev.kind), ev.msg);
	CHECKF(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	fprintf(stderr, "usage %lld KiB, high events %lld\n", (long long)m.current / 1024,
	        (long long)high);
	CHECKF(high == 1, "high events %lld with usage %lld", (long long)high,
	       (long long)m.current);
	CHECK(m.current >= 8 * MiB);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	cg_watch_stop(w);
	rt_chan_free(out);
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < 100 && cg_remove(c, &e) == -EBUSY; i++)
		rt_sleep(10000000);
	CHECKF(cg_remove(c, &e) == 0, "%s", e.msg);
	cg_close(c);
	snprintf(rel, sizeof rel, "moonshim-test-%d", getpid());
	cg *p = cg_open(&host, rel, false, &e);
	CHECK(p && cg_remove(p, &e) == 0);
	cg_close(p);
	return 0;
}

TEST(hybrid_memory_high_is_the_soft_limit_and_crossings_are_events) {
	cg_err e = {0};
	CHECKF(cg_host_detect(&host, "/proc/self/mounts", &e) == 0, "%s", e.msg);
	if (host.layout != CG_LAYOUT_HYBRID) {
		fprintf(stderr, "skipped: not a hybrid host\n");
		return;
	}
	run_rt(2, high_main, NULL);
}
