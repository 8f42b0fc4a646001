/* timer_sync_test.c — sleeps fire in deadline order and on time, tickers
 * tick, timers stop; mutex excludes, waitgroup waits, once runs once. */
#include "harness.h"

#include <stdlib.h>

/* ─── timers in order and on time ────────────────────────────────────── */

#define SLEEPERS 200
static int64_t woke_at[SLEEPERS], due_at[SLEEPERS];
static int order[SLEEPERS], norder;
static rt_mutex order_mu = RT_MUTEX_INIT;

static void sleeper(void *arg) {
	int i = (int)(intptr_t)arg;
	rt_sleep_until(due_at[i]);
	woke_at[i] = rt_now();
	rt_mutex_lock(&order_mu);
	order[norder++] = i;
	rt_mutex_unlock(&order_mu);
}

static int timers_main(void *arg) {
	int64_t base = rt_now() + 20000000;
	for (int i = 0; i < SLEEPERS; i++) {
		/* shuffled deadlines 1 ms apart */
		int slot = (i * 37) % SLEEPERS;
		due_at[i] = base + (int64_t)slot * 1000000;
		rt_go(sleeper, (void *)(intptr_t)i, "sleeper");
	}
	rt_sleep_until(base + SLEEPERS * 1000000LL + 50000000);
	CHECK(norder == SLEEPERS);
	int late_ms2 = 0;
	for (int k = 0; k < SLEEPERS; k++) {
		int i = order[k];
		CHECKF(woke_at[i] >= due_at[i], "sleeper %d woke early", i);
		if (woke_at[i] - due_at[i] > 2000000)
			late_ms2++;
		/* timers that expire in the same batch may run in any order (each
		 * ready goes to runnext, as in Go); beyond that, deadline order */
		if (k && scaled(100) == 100)
			CHECKF(due_at[order[k - 1]] <= due_at[i] + 2000000,
			       "woke out of order at %d", k);
	}
	/* a noisy shared machine may delay a few; most must be within 2 ms */
	if (scaled(100) == 100) /* timing is meaningless under sanitizers and qemu */
		CHECKF(late_ms2 < SLEEPERS / 10, "%d of %d later than 2 ms", late_ms2, SLEEPERS);
	return 0;
}
/* One P: the order goroutines resume in is the order their timers fired
 * in (with two, the recording itself races across threads). */
TEST(timers_fire_in_order_and_on_time) {
	run_rt(1, timers_main, NULL);
}

static int ticker_main(void *arg) {
	int64_t start = rt_now(), when = 0,
	        prev = 0; /* before the ticker: ticks count from its creation */
	rt_timer *t = rt_timer_new(10000000, 10000000);
	for (int i = 0; i < 10; i++) {
		CHECK(rt_chan_recv(rt_timer_chan(t), &when));
		CHECK(when > prev);
		prev = when;
	}
	int64_t took = rt_now() - start;
	CHECKF(took >= 95000000, "10 ticks took %lld ns", (long long)took);
	if (scaled(100) == 100)
		CHECKF(took < 400000000, "10 ticks took %lld ns", (long long)took);
	CHECK(rt_timer_stop(t));
	rt_timer_free(t);
	/* a stopped one-shot never fires */
	rt_timer *o = rt_timer_new(5000000, 0);
	CHECK(rt_timer_stop(o));
	rt_case c = {.c = rt_timer_chan(o), .dir = RT_RECV, .elem = &when};
	CHECK(rt_select(&c, 1, rt_deadline_in(20000000)) < 0);
	rt_timer_reset(o, 1000000);
	CHECK(rt_select(&c, 1, rt_deadline_in(1000000000)) == 0);
	CHECK(!rt_timer_stop(o)); /* already fired */
	rt_timer_free(o);
	return 0;
}
TEST(ticker_ticks_and_timer_stops) {
	run_rt(2, ticker_main, NULL);
}

/* ─── mutex, waitgroup, once ─────────────────────────────────────────── */

static rt_mutex mu = RT_MUTEX_INIT;
static long counter;
static int inside;

static void locker(void *wg) {
	for (int i = 0; i < 2000; i++) {
		rt_mutex_lock(&mu);
		CHECK(__atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED) == 1);
		counter++;
		if (i % 100 == 0)
			rt_yield(); /* park others on the mutex */
		__atomic_sub_fetch(&inside, 1, __ATOMIC_RELAXED);
		rt_mutex_unlock(&mu);
	}
	rt_wg_done(wg);
}

static int mutex_main(void *arg) {
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	int n = 16;
	rt_wg_add(&wg, n);
	for (int i = 0; i < n; i++)
		rt_go(locker, &wg, "locker");
	rt_wg_wait(&wg);
	CHECK(counter == 2000L * n);
	CHECK(rt_mutex_trylock(&mu));
	CHECK(!rt_mutex_trylock(&mu));
	rt_mutex_unlock(&mu);
	return 0;
}
TEST(mutex_excludes_across_ps) {
	run_rt(2, mutex_main, NULL);
}

static rt_once once = RT_ONCE_INIT;
static int once_runs;
static void once_fn(void *arg) {
	rt_sleep(1000000); /* others pile up behind it */
	once_runs++;
}
static void once_user(void *wg) {
	rt_once_do(&once, once_fn, NULL);
	CHECK(once_runs == 1);
	rt_wg_done(wg);
}
static int once_main(void *arg) {
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	rt_wg_add(&wg, 8);
	for (int i = 0; i < 8; i++)
		rt_go(once_user, &wg, "once-user");
	rt_wg_wait(&wg);
	rt_wg_wait(&wg); /* zero count: returns at once */
	CHECK(once_runs == 1);
	return 0;
}
TEST(once_runs_once_waitgroup_waits) {
	run_rt(2, once_main, NULL);
}
