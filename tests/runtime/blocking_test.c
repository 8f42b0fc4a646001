/* blocking_test.c — calls that block the thread do not block the runtime:
 * the bounded pool runs them while goroutines keep going, never more at
 * once than its size, and the syscall handoff gives a stuck P away. */
#include "harness.h"

#include <unistd.h>

static int ticks, stop;

static void ticker(void *arg) {
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
		rt_sleep(1000000);
	}
}

static intptr_t slow_call(void *arg) {
	usleep((useconds_t)(intptr_t)arg);
	return 42;
}

static int pool_progress_main(void *arg) {
	rt_go(ticker, NULL, "ticker");
	CHECK(rt_blocking(slow_call, (void *)(intptr_t)100000) == 42);
	int t = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	CHECKF(t >= 20, "only %d ticks during a 100 ms blocking call on 1 P", t);
	rt_sleep(5000000);
	return 0;
}
TEST(blocking_pool_keeps_goroutines_running) {
	run_rt(1, pool_progress_main, NULL);
}

static int in_pool, max_in_pool;

static intptr_t counted_call(void *arg) {
	int n = __atomic_add_fetch(&in_pool, 1, __ATOMIC_ACQ_REL);
	int m = __atomic_load_n(&max_in_pool, __ATOMIC_RELAXED);
	while (n > m && !__atomic_compare_exchange_n(&max_in_pool, &m, n, false, __ATOMIC_RELAXED,
	                                             __ATOMIC_RELAXED))
		;
	usleep(20000);
	__atomic_sub_fetch(&in_pool, 1, __ATOMIC_ACQ_REL);
	return (intptr_t)arg * 2;
}

static void pool_user(void *arg) {
	CHECK(rt_blocking(counted_call, arg) == (intptr_t)arg * 2);
	rt_wg_done(&(*(rt_waitgroup *)rt_get_local()));
}

static rt_waitgroup pool_wg = RT_WAITGROUP_INIT;
static void pool_user_wrap(void *arg) {
	rt_set_local(&pool_wg);
	pool_user(arg);
}

static int pool_bound_main(void *arg) {
	rt_wg_add(&pool_wg, 16);
	for (intptr_t i = 0; i < 16; i++)
		rt_go(pool_user_wrap, (void *)i, "pool-user");
	rt_wg_wait(&pool_wg);
	CHECKF(max_in_pool >= 2 && max_in_pool <= 4, "%d calls ran at once (pool of 4)",
	       max_in_pool);
	return 0;
}
TEST(blocking_pool_is_bounded) {
	run_rt(2, pool_bound_main, NULL);
}

static int handoff_main(void *arg) {
	rt_go(ticker, NULL, "ticker");
	rt_sleep(2000000);
	int t0 = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
	rt_syscall_enter();
	usleep(100000); /* blocks this thread, and with it the only P... */
	rt_syscall_exit();
	int t = __atomic_load_n(&ticks, __ATOMIC_RELAXED) - t0;
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	rt_counters c;
	rt_counters_get(&c);
	/* ...until sysmon hands the P to another thread */
	CHECKF(c.handoffs > 0, "no handoff");
	CHECKF(t >= 20, "only %d ticks while the P's thread was blocked", t);
	rt_sleep(5000000);
	return 0;
}
TEST(syscall_handoff_gives_the_p_away) {
	run_rt(1, handoff_main, NULL);
}
