/*
 * rt_demo.c — a runtime program to watch: a pipeline of goroutines, a few
 * sleepers and a CPU-bound group for about a second, then the counters.
 * `make demo` runs it with MOONSHIM_DEBUG=schedtrace=100, so stderr shows
 * Go's own SCHED lines.
 */
#include "rt.h"

#include <stdio.h>
#include <stdlib.h>

#define STAGES    64
#define ITEMS     200000
#define SLEEPERS  1000
#define CRUNCHERS 8

static rt_waitgroup wg = RT_WAITGROUP_INIT;

static void stage(void *arg) {
	rt_chan **io = arg;
	int64_t v;
	while (rt_chan_recv(io[0], &v)) {
		v++;
		rt_chan_send(io[1], &v);
	}
	rt_chan_close(io[1]);
	rt_wg_done(&wg);
}

static void sleeper(void *arg) {
	for (int i = 0; i < 10; i++)
		rt_sleep((int64_t)(1 + (intptr_t)arg % 50) * 1000000);
	rt_wg_done(&wg);
}

static void cruncher(void *arg) {
	uint64_t x = (uint64_t)(intptr_t)arg;
	for (int i = 0; i < 400; i++) {
		for (int k = 0; k < 100000; k++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		rt_yield();
	}
	if (x == 42)
		puts("");
	rt_wg_done(&wg);
}

static int demo(void *arg) {
	rt_chan *ch[STAGES + 1];
	rt_chan *io[STAGES][2];
	for (int i = 0; i <= STAGES; i++)
		ch[i] = rt_chan_new(sizeof(int64_t), 16);
	rt_wg_add(&wg, STAGES + SLEEPERS + CRUNCHERS);
	for (int i = 0; i < STAGES; i++) {
		io[i][0] = ch[i];
		io[i][1] = ch[i + 1];
		rt_go(stage, io[i], "pipeline-stage");
	}
	for (intptr_t i = 0; i < SLEEPERS; i++)
		rt_go(sleeper, (void *)i, "sleeper");
	for (intptr_t i = 0; i < CRUNCHERS; i++)
		rt_go(cruncher, (void *)i, "cruncher");
	int64_t t0 = rt_now(), sum = 0, v;
	for (int64_t i = 0; i < ITEMS; i++) {
		rt_chan_send(ch[0], &i);
		if (i >= 16 && rt_chan_recv(ch[STAGES], &v))
			sum += v;
	}
	rt_chan_close(ch[0]);
	while (rt_chan_recv(ch[STAGES], &v))
		sum += v;
	rt_wg_wait(&wg);
	int64_t want = (int64_t)ITEMS * (ITEMS - 1) / 2 + (int64_t)ITEMS * STAGES;
	rt_counters c;
	rt_counters_get(&c);
	printf("pipeline: %d items through %d stages in %.1f ms, sum %s\n", ITEMS, STAGES,
	       (double)(rt_now() - t0) / 1e6, sum == want ? "ok" : "WRONG");
	printf("counters: goroutines=%llu switches=%llu steals=%llu/%llu wakeups=%llu (found work "
	       "%llu) parks=%llu timers=%llu netpolls=%llu threads=%llu\n",
	       (unsigned long long)c.goroutines_created, (unsigned long long)c.switches,
	       (unsigned long long)c.steals, (unsigned long long)c.steal_attempts,
	       (unsigned long long)c.wakeups, (unsigned long long)c.wakeups_found_work,
	       (unsigned long long)c.parks, (unsigned long long)c.timers_fired,
	       (unsigned long long)c.netpolls, (unsigned long long)c.threads_created);
	for (int i = 0; i <= STAGES; i++)
		rt_chan_free(ch[i]);
	return sum == want ? 0 : 1;
}

int main(void) {
	rt_config cfg = {0};
	int r = rt_main(&cfg, demo, NULL);
	return r || rt_exit_leaks();
}
