/* sched_test.c — goroutine life and the scheduler: mass spawn and exit,
 * work stealing, no lost wake-ups under random sleeps, yields, rt_main
 * re-entry, and the counters that prove it. */
#include "harness.h"

#include <stdint.h>

/* ─── 1e6 goroutines spawned and exited ──────────────────────────────── */

static rt_waitgroup spawn_wg = RT_WAITGROUP_INIT;
static uint64_t spawn_sum;

static void add_one(void *arg) {
	__atomic_add_fetch(&spawn_sum, (uint64_t)(uintptr_t)arg, __ATOMIC_RELAXED);
	rt_wg_done(&spawn_wg);
}

static int spawn_million(void *arg) {
	long n = scaled(1000000);
	rt_wg_add(&spawn_wg, n);
	for (long i = 1; i <= n; i++)
		rt_go(add_one, (void *)(uintptr_t)i, "add-one");
	rt_wg_wait(&spawn_wg);
	CHECKF(spawn_sum == (uint64_t)n * (uint64_t)(n + 1) / 2, "sum %llu",
	       (unsigned long long)spawn_sum);
	/* the last child may still be between rt_wg_done and its exit */
	for (int i = 0; i < 1000 && rt_goroutines() > 1; i++)
		rt_sleep(100000);
	CHECKF(rt_goroutines() == 1, "%d live", rt_goroutines());
	rt_counters c;
	rt_counters_get(&c);
	CHECK(c.goroutines_created >= (uint64_t)n);
	return 0;
}

TEST(spawn_exit_1e6_goroutines_1p) {
	run_rt(1, spawn_million, NULL);
}
TEST(spawn_exit_1e6_goroutines_2p) {
	run_rt(2, spawn_million, NULL);
}

/* ─── work stealing really happens with 2 P's ────────────────────────── */

static uint64_t busy_done;
static rt_waitgroup steal_wg = RT_WAITGROUP_INIT;

static void cpu_chunk(void *arg) {
	uint64_t x = 0;
	for (int i = 0; i < 200000; i++) {
		x += (uint64_t)i;
		__asm__ volatile("" : "+r"(x)); /* keep the loop */
	}
	__atomic_add_fetch(&busy_done, 1, __ATOMIC_RELAXED);
	rt_wg_done(&steal_wg);
}

static void spawner(void *arg) {
	long n = (long)(intptr_t)arg;
	for (long i = 0; i < n; i++) {
		rt_go(cpu_chunk, NULL, "cpu-chunk");
		if (i % 8 == 0)
			rt_yield();
	}
	rt_wg_done(&steal_wg);
}

static int steal_main(void *arg) {
	long n = scaled(2000);
	rt_wg_add(&steal_wg, n + 1);
	rt_go(spawner, (void *)(intptr_t)n, "spawner");
	rt_wg_wait(&steal_wg);
	CHECK(busy_done == (uint64_t)n);
	rt_counters c;
	rt_counters_get(&c);
	CHECKF(c.steals > 0 && c.stolen >= c.steals, "steals=%llu stolen=%llu attempts=%llu",
	       (unsigned long long)c.steals, (unsigned long long)c.stolen,
	       (unsigned long long)c.steal_attempts);
	CHECK(c.steal_attempts >= c.steals);
	CHECK(c.wakeups + c.threads_created > 0); /* the second P got an M */
	return 0;
}

TEST(work_stealing_happens_with_2p) {
	run_rt(2, steal_main, NULL);
}

/* ─── no lost wake-ups: random sleeps and hand-offs across P's ───────── */

#define RING 64
static rt_chan *ring[RING];
static rt_waitgroup ring_wg = RT_WAITGROUP_INIT;
static int laps;

static void ring_node(void *arg) {
	int i = (int)(intptr_t)arg;
	uint32_t seed = (uint32_t)i * 2654435761u + 1;
	int64_t v;
	while (rt_chan_recv(ring[i], &v)) {
		seed = seed * 1103515245u + 12345u;
		if (seed % 7 == 0)
			rt_sleep((int64_t)(seed >> 20) % 300 * 1000); /* 0-300 µs */
		else if (seed % 3 == 0)
			rt_yield();
		if (i == RING - 1 && v + 1 >= laps) {
			rt_chan_close(ring[0]);
			continue;
		}
		int64_t nv = i == RING - 1 ? v + 1 : v;
		rt_chan_send(ring[(i + 1) % RING], &nv);
	}
	if (i < RING - 1)
		rt_chan_close(ring[i + 1]);
	rt_wg_done(&ring_wg);
}

static int ring_main(void *arg) {
	laps = (int)scaled(300);
	for (int i = 0; i < RING; i++)
		ring[i] = rt_chan_new(sizeof(int64_t), 0);
	rt_wg_add(&ring_wg, RING);
	for (int i = 0; i < RING; i++)
		rt_go(ring_node, (void *)(intptr_t)i, "ring-node");
	int64_t zero = 0;
	rt_chan_send(ring[0], &zero);
	rt_wg_wait(&ring_wg);
	for (int i = 0; i < RING; i++)
		rt_chan_free(ring[i]);
	return 0;
}

TEST(no_lost_wakeups_ring_with_random_sleeps) {
	run_rt(2, ring_main, NULL);
}

static rt_waitgroup storm_wg = RT_WAITGROUP_INIT;
static rt_mutex storm_mu = RT_MUTEX_INIT;
static long storm_count;

static void storm_worker(void *arg) {
	uint32_t seed = (uint32_t)(uintptr_t)arg;
	for (int k = 0; k < 50; k++) {
		seed = seed * 1664525u + 1013904223u;
		switch (seed >> 29) {
		case 0:
			rt_sleep((seed >> 10) % 200000);
			break;
		case 1:
			rt_yield();
			break;
		default:
			rt_mutex_lock(&storm_mu);
			storm_count++;
			if ((seed >> 8) % 5 == 0)
				rt_yield(); /* hold the lock across a switch */
			rt_mutex_unlock(&storm_mu);
		}
	}
	rt_wg_done(&storm_wg);
}

static int storm_main(void *arg) {
	long n = scaled(2000);
	rt_wg_add(&storm_wg, n);
	for (long i = 0; i < n; i++)
		rt_go(storm_worker, (void *)(uintptr_t)(i + 1), "storm");
	rt_wg_wait(&storm_wg);
	return 0;
}

TEST(no_lost_wakeups_randomized_stress) {
	for (int round = 0; round < 3; round++)
		run_rt(2, storm_main, NULL);
}

/* ─── yield shares the P fairly ──────────────────────────────────────── */

static int yields[2];
static int yield_stop;

static void yielder(void *arg) {
	int i = (int)(intptr_t)arg;
	while (!__atomic_load_n(&yield_stop, __ATOMIC_RELAXED)) {
		yields[i]++;
		rt_yield();
	}
}

static int yield_main(void *arg) {
	rt_go(yielder, (void *)0, "yielder-0");
	rt_go(yielder, (void *)1, "yielder-1");
	for (int i = 0; i < 1000; i++)
		rt_yield();
	__atomic_store_n(&yield_stop, 1, __ATOMIC_RELAXED);
	rt_yield();
	rt_yield();
	CHECKF(yields[0] > 900 && yields[1] > 900, "%d %d", yields[0], yields[1]);
	return 0;
}

TEST(yield_round_robin_on_1p) {
	run_rt(1, yield_main, NULL);
}

/* ─── the runtime starts again after it stopped ──────────────────────── */

static int id_main(void *arg) {
	CHECK(rt_self() != 0);
	CHECK(rt_procs() == (int)(intptr_t)arg);
	return 0;
}

TEST(rt_main_restarts) {
	for (int p = 1; p <= 4; p++)
		run_rt(p, id_main, (void *)(intptr_t)p);
}

/* ─── goroutine-local pointer and preemption hook ────────────────────── */

static uint64_t hooked_id;
static void *hooked_local;

static int marker;

/* Only the hog carries &marker: other goroutines may also run long on a
 * slow (sanitizer) build, and the hook sees them too. */
static void hook(uint64_t id, void *local, void *arg) {
	if (local != &marker)
		return;
	__atomic_store_n(&hooked_id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&hooked_local, local, __ATOMIC_RELAXED);
}

static void hog(void *arg) {
	rt_set_local(&marker);
	CHECK(rt_get_local() == &marker);
	int64_t until = rt_now() + 2000000000LL;
	while (!rt_preempt_requested() && rt_now() < until)
		; /* C code is never interrupted: it polls */
	CHECK(rt_preempt_requested());
	rt_yield();
	CHECK(!rt_preempt_requested());
	__atomic_store_n((uint64_t *)arg, rt_self(), __ATOMIC_RELEASE);
}

static int preempt_main(void *arg) {
	uint64_t id = 0;
	rt_set_preempt_hook(hook, NULL);
	rt_go(hog, &id, "hog");
	while (!__atomic_load_n(&id, __ATOMIC_ACQUIRE))
		rt_sleep(1000000);
	CHECK(__atomic_load_n(&hooked_id, __ATOMIC_RELAXED) == id);
	CHECK(__atomic_load_n(&hooked_local, __ATOMIC_RELAXED) == &marker);
	rt_set_preempt_hook(NULL, NULL);
	return 0;
}

TEST(sysmon_asks_long_runner_to_yield) {
	run_rt(2, preempt_main, NULL);
}
