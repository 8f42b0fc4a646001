/*
 * wakeup_test.c — no lost wake-ups: timers pending on a P that sysmon hands
 * off (rt_syscall_enter/exit) and fd readiness arriving while every M parks
 * must be seen by an M without sysmon's safety net: timer_rescues stays 0
 * over many runs. (timer_late_polls may move on a loaded machine: the
 * thread of an M set to see the timer was late to get a CPU; it is
 * reported, not asserted.) And the netpoller's wake-up contract itself: a
 * break belongs to the blocking poller, whatever non-blocking polls run;
 * and sysmon's classifier: a timer run after sysmon read it is no rescue.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "rt_internal.h" /* the netpoller's internals, for the break contract */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define US           1000LL
#define MS           1000000LL
#define SLEEPERS     3
#define HANDOFF_RUNS 40          /* rt_main runs per case, as the 1-in-40 report */
#define HANDOFFS     scaled(60)  /* syscall handoffs per run */
#define BREAK_WAIT   (2000 * MS) /* a blocking poll a break must cut short */
#define POLL_SHORT   (2 * MS)    /* a poll with no break pending sleeps this long */
#define STALE_SLEEP  (300 * MS)  /* main's sleep: the poller blocks until then */
#define STALE_AGO    (10 * MS)   /* the stale read: a timer this overdue, run since */
#define ASLEEP_WAIT  (200 * MS)  /* bound on waiting for the poller to block */

static int64_t mono_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ─── sleepers: goroutines with short timers always pending ──────────── */

typedef struct {
	int stop;
	int64_t worst_late; /* ns past a deadline before the sleeper ran */
	long sleeps;
	rt_waitgroup wg;
} sleepers;

typedef struct {
	sleepers *s;
	int64_t period;
} sleeper_arg;

static void sleeper(void *arg) {
	sleeper_arg *a = arg;
	sleepers *s = a->s;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		int64_t deadline = rt_now() + a->period;
		rt_sleep_until(deadline);
		int64_t late = rt_now() - deadline;
		if (late > __atomic_load_n(&s->worst_late, __ATOMIC_RELAXED))
			__atomic_store_n(&s->worst_late, late, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->sleeps, 1, __ATOMIC_RELAXED);
	}
	rt_wg_done(&s->wg);
}

static sleeper_arg sleeper_args[SLEEPERS];

static void sleepers_start(sleepers *s) {
	static const int64_t periods[SLEEPERS] = {300 * US, 700 * US, 1300 * US};
	memset(s, 0, sizeof *s);
	for (int i = 0; i < SLEEPERS; i++) {
		sleeper_args[i] = (sleeper_arg){.s = s, .period = periods[i]};
		rt_wg_add(&s->wg, 1);
		rt_go(sleeper, &sleeper_args[i], "sleeper");
	}
}

static void sleepers_stop(sleepers *s) {
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	rt_wg_wait(&s->wg);
}

/* ─── a pipe written from outside the runtime ────────────────────────── */

typedef struct {
	int fds[2];
	int writes;
	int64_t written_at; /* atomic: when the last byte went in */
	int64_t worst_latency;
	int stop;
	rt_waitgroup wg;
} piper;

static void *pipe_writer(void *arg) {
	piper *p = arg;
	unsigned seed = 12345;
	for (int i = 0; i < p->writes && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE); i++) {
		usleep(200 + rand_r(&seed) % 900);
		/* one byte at a time: the reader drains it before the next */
		while (__atomic_load_n(&p->written_at, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
			usleep(100);
		__atomic_store_n(&p->written_at, mono_ns(), __ATOMIC_RELEASE);
		char c = 'x';
		if (write(p->fds[1], &c, 1) != 1)
			break;
	}
	return NULL;
}

static void pipe_reader(void *arg) {
	piper *p = arg;
	int err = 0;
	rt_pollfd *pd = rt_poll_open(p->fds[0], &err);
	if (!pd) {
		fprintf(stderr, "rt_poll_open: %d\n", err);
		__atomic_store_n(&p->worst_latency, -1, __ATOMIC_RELEASE);
		rt_wg_done(&p->wg);
		return;
	}
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		char c;
		ssize_t n = read(p->fds[0], &c, 1);
		if (n == 1) {
			int64_t lat = mono_ns() - __atomic_load_n(&p->written_at, __ATOMIC_ACQUIRE);
			if (lat > p->worst_latency)
				p->worst_latency = lat;
			__atomic_store_n(&p->written_at, 0, __ATOMIC_RELEASE);
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			break;
		rt_poll_wait(pd, RT_POLL_READ, rt_deadline_in(5 * MS));
	}
	rt_poll_close(pd);
	rt_wg_done(&p->wg);
}

/* ─── the workload ───────────────────────────────────────────────────── */

typedef struct {
	bool with_pipe;
	uint64_t rescues, late_polls, handoffs;
	int64_t worst_late, worst_latency;
	long sleeps;
} run_result;

static sleepers SL;
static piper PI;

static int handoff_stress_main(void *arg) {
	run_result *r = arg;
	rt_counters c0, c1;
	pthread_t wt;
	rt_counters_get(&c0);
	sleepers_start(&SL);
	if (r->with_pipe) {
		memset(&PI, 0, sizeof PI);
		CHECK(pipe2(PI.fds, O_NONBLOCK | O_CLOEXEC) == 0);
		PI.writes = (int)HANDOFFS;
		rt_wg_add(&PI.wg, 1);
		rt_go(pipe_reader, &PI, "pipe-reader");
		CHECK(pthread_create(&wt, NULL, pipe_writer, &PI) == 0);
	}
	unsigned seed = 777;
	for (long i = 0; i < HANDOFFS; i++) {
		rt_syscall_enter();
		usleep(100 + rand_r(&seed) % 500); /* long enough for sysmon's retake */
		rt_syscall_exit();
		if (i % 3 == 0)
			rt_sleep((int64_t)(rand_r(&seed) % 400) * US);
	}
	if (r->with_pipe) {
		__atomic_store_n(&PI.stop, 1, __ATOMIC_RELEASE);
		pthread_join(wt, NULL);
		rt_wg_wait(&PI.wg);
		close(PI.fds[0]);
		close(PI.fds[1]);
		r->worst_latency = PI.worst_latency;
	}
	sleepers_stop(&SL);
	rt_counters_get(&c1);
	r->rescues = c1.timer_rescues - c0.timer_rescues;
	r->late_polls = c1.timer_late_polls - c0.timer_late_polls;
	r->worst_late = SL.worst_late;
	r->sleeps = SL.sleeps;
	r->handoffs = c1.handoffs - c0.handoffs;
	return 0;
}

static void handoff_stress(int procs, bool with_pipe) {
	uint64_t rescues = 0, late_polls = 0, handoffs = 0;
	int64_t late = 0, latency = 0;
	int bad_runs = 0;
	for (int run = 0; run < HANDOFF_RUNS; run++) {
		run_result r = {.with_pipe = with_pipe};
		run_rt(procs, handoff_stress_main, &r);
		rescues += r.rescues;
		handoffs += r.handoffs;
		late_polls += r.late_polls;
		bad_runs += r.rescues > 0;
		if (r.worst_late > late)
			late = r.worst_late;
		if (r.worst_latency > latency)
			latency = r.worst_latency;
	}
	fprintf(stderr,
	        "  %d runs of %ld blocking calls on %d P: %llu handoffs, timer_rescues %llu "
	        "(in %d runs), timer_late_polls %llu, worst timer lateness %lld us, worst fd "
	        "wake-up %lld us\n",
	        HANDOFF_RUNS, (long)HANDOFFS, procs, (unsigned long long)handoffs,
	        (unsigned long long)rescues, bad_runs, (unsigned long long)late_polls,
	        (long long)(late / US), (long long)(latency / US));
	CHECKF(handoffs > 0, "sysmon handed off no P in %d runs", HANDOFF_RUNS);
	CHECKF(rescues == 0, "sysmon rescued %llu overdue timer(s) in %d of %d runs",
	       (unsigned long long)rescues, bad_runs, HANDOFF_RUNS);
}

TEST(handoffs_lose_no_timer_1p) {
	handoff_stress(1, false);
}
TEST(handoffs_lose_no_timer_2p) {
	handoff_stress(2, false);
}
TEST(handoffs_and_fd_readiness_lose_no_wakeup_1p) {
	handoff_stress(1, true);
}
TEST(handoffs_and_fd_readiness_lose_no_wakeup_2p) {
	handoff_stress(2, true);
}

/* ─── the break belongs to the blocking poller ───────────────────────── */

/* An M that read lastpoll != 0 polls without blocking (find_runnable,
 * sysmon's 10 ms poll) while another M may have just begun a blocking poll.
 * If that look took the break written to wake the blocking poller, the
 * poller slept on until its old deadline, past an earlier timer (a sysmon
 * rescue), or for ever when it had no timer (the M parked while work was
 * pending). */
static int break_main(void *arg) {
	(void)arg;
	rt__netpoll_break();
	CHECK(rt__netpoll_break_pending());
	CHECK(rt__netpoll(0) == NULL); /* another M's non-blocking look */
	CHECKF(rt__netpoll_break_pending(), "a non-blocking poll took the poller's wake-up");
	int64_t t0 = rt_now();
	bool took_break;
	CHECK(rt__netpoll_poller(BREAK_WAIT, &took_break) == NULL);
	int64_t took = rt_now() - t0;
	fprintf(stderr, "  the blocking poll after the break returned in %lld us\n",
	        (long long)(took / US));
	CHECKF(took < BREAK_WAIT / 2, "the blocking poller slept %lld ms through a break",
	       (long long)(took / MS));
	CHECK(took_break && rt__netpoll_break_pending()); /* until the poller says */
	rt__netpoll_break_taken();
	CHECK(!rt__netpoll_break_pending());
	t0 = rt_now(); /* taken: the next poll sleeps its time */
	CHECK(rt__netpoll_poller(POLL_SHORT, &took_break) == NULL && !took_break);
	CHECK(rt_now() - t0 >= POLL_SHORT);
	return 0;
}

TEST(netpoll_break_survives_a_nonblocking_poll) {
	run_rt(1, break_main, NULL);
}

/* ─── a stale earliest-timer read is no lost wake-up ─────────────────── */

/* sysmon reads the earliest timer, then the M's picture; under qemu-user
 * it lost its CPU for ms in between, the overdue timer was run meanwhile,
 * and the poller, rightly blocked until the next one, was counted as a
 * poller sleeping past an overdue timer: a rescue with no wake-up lost. */
typedef struct {
	uint64_t rescues, late_polls;
	bool asleep;
} stale_result;

static bool poller_asleep(void) {
	struct rt_sched *s = &rt__sched;
	return __atomic_load_n(&s->lastpoll, __ATOMIC_SEQ_CST) == 0 &&
	       __atomic_load_n(&s->polluntil, __ATOMIC_SEQ_CST) != 0 &&
	       __atomic_load_n(&s->nwatching, __ATOMIC_SEQ_CST) == 0 &&
	       __atomic_load_n(&s->npidle, __ATOMIC_SEQ_CST) == s->nprocs;
}

static void *stale_checker(void *arg) {
	stale_result *r = arg;
	int64_t give_up = rt_now() + ASLEEP_WAIT;
	while (!poller_asleep() && rt_now() < give_up)
		usleep(100);
	r->asleep = poller_asleep();
	rt_counters c0, c1;
	rt_counters_get(&c0);
	int64_t now = rt_now();
	rt__sysmon_check_timers(now - STALE_AGO, now); /* a read from before the run */
	rt_counters_get(&c1);
	r->rescues = c1.timer_rescues - c0.timer_rescues;
	r->late_polls = c1.timer_late_polls - c0.timer_late_polls;
	return NULL;
}

static int stale_main(void *arg) {
	stale_result *r = arg;
	pthread_t t;
	CHECK(pthread_create(&t, NULL, stale_checker, r) == 0);
	rt_sleep(STALE_SLEEP); /* the only timer: the poller blocks until it */
	pthread_join(t, NULL);
	return 0;
}

TEST(sysmon_stale_timer_read_is_no_rescue) {
	stale_result r = {0};
	run_rt(1, stale_main, &r);
	fprintf(stderr, "  poller asleep %d: timer_rescues %llu, timer_late_polls %llu\n", r.asleep,
	        (unsigned long long)r.rescues, (unsigned long long)r.late_polls);
	CHECKF(r.asleep, "the poller did not block within %lld ms", (long long)(ASLEEP_WAIT / MS));
	CHECKF(r.rescues == 0, "a timer run before sysmon looked counted as a lost wake-up");
}
