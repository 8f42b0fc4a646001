/* smoke_test.c — the runtime starts, runs goroutines and stops. */
#include "harness.h"

static rt_waitgroup wg = RT_WAITGROUP_INIT;
static int hits;

static void child(void *arg) {
	__atomic_add_fetch(&hits, (int)(intptr_t)arg, __ATOMIC_RELAXED);
	rt_wg_done(&wg);
}

static int smoke_main(void *arg) {
	(void)arg;
	rt_wg_add(&wg, 10);
	for (int i = 0; i < 10; i++)
		rt_go(child, (void *)(intptr_t)1, "child");
	rt_wg_wait(&wg);
	return hits == 10 ? 0 : 1;
}

TEST(smoke_spawn_and_wait) {
	run_rt(2, smoke_main, NULL);
}
