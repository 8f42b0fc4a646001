/*
 * sysmon.c — the monitor thread (Go's sysmon): runs without a P, wakes
 * every 20 µs while the scheduler is busy and backs off to 10 ms when idle.
 * When every P is idle there is nothing to retake or preempt, so, like Go's
 * sysmon, it sleeps longer (100 ms): an idle program costs ~10 wake-ups a
 * second, not 100.
 * Each tick it refreshes the coarse clock, hands off P's stuck in syscalls,
 * polls the network if nobody has for 10 ms, flags goroutines that run too
 * long (asking the embedder's preempt hook to stop them), prints the
 * schedtrace line and serves goroutine-dump requests.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#define S                         rt__sched
#define TIMER_OVERDUE_NS          (2 * 1000000LL) /* see the safety net in sysmon_main */
#define IDLE_TICKS_BEFORE_BACKOFF 50
#define SYSCALL_REPORT_NS         (1000LL * 1000000) /* an M blocked this long is reported */
#define LONGRUN_REPORT_FACTOR     10                 /* report at 10x the preempt threshold */
#define DEEP_SLEEP_NS             (100LL * 1000000)  /* sleep while every P is idle */
#define STILL_TRIES               8                  /* reads for a still picture of the idle M's */

static struct {
	pthread_t thread;
	bool running;
	uint32_t wake;    /* futex word: bumped to wake sysmon */
	int stop;         /* atomic */
	int64_t delay_us; /* atomic: current sleep, read by rt__sysmon_wake */
	int64_t next_trace;
} sm;

extern int rt__dump_requested; /* debug.c: set by SIGQUIT */

void rt__sysmon_wake(void) {
	if (arl(&sm.delay_us) <= SYSMON_MIN_US * 2 && !ald(&sm.stop))
		return; /* already ticking fast: no need for a syscall */
	__atomic_add_fetch(&sm.wake, 1, __ATOMIC_RELEASE);
	rt__futex_wake(&sm.wake, 1);
}

/* With every P idle nothing can be retaken or preempted: sleep long. A P
 * taken meanwhile (an I/O or timer wake-up) is seen within DEEP_SLEEP_NS,
 * and a goroutine entering a syscall wakes us (rt__sysmon_wake). */
static bool all_idle(void) {
	return !S.schedtrace_ms && arl(&S.npidle) == S.nprocs;
}

void rt_set_preempt_hook(rt_preempt_hook hook, void *arg) {
	asr(&S.preempt_arg, arg);
	ast(&S.preempt_hook, hook);
}

/* Is the goroutine on p running for too long on one schedtick? */
static bool check_longrun(rt_p *p, int64_t now) {
	if (ald(&p->status) != P_RUNNING)
		return false;
	uint64_t t = arl(&p->schedtick);
	if (t != p->sm_schedtick || ald(&p->status) != P_RUNNING) {
		p->sm_schedtick = t;
		p->sm_when = now;
		p->sm_reported = false;
		return false;
	}
	int64_t ran = now - p->sm_when;
	if (ran < S.cfg.longrun_ns)
		return false;
	rt_m *m = arl(&p->m);
	rt_g *g = m ? ald(&m->curg) : NULL;
	if (!g || g->is_g0)
		return false;
	if (arl(&g->preempt) != t + 1) {
		/* the hook first: a goroutine that sees the request (and yields)
		 * may be watched by code that expects the hook to have run */
		rt_preempt_hook hook = ald(&S.preempt_hook);
		if (hook)
			hook(arl(&g->id), arl(&g->local), arl(&S.preempt_arg));
		ast(&g->preempt, t + 1);
		__atomic_fetch_add(&S.cnt.longruns, 1, __ATOMIC_RELAXED);
	}
	if (!p->sm_reported && S.debug_longrun && ran >= S.cfg.longrun_ns * LONGRUN_REPORT_FACTOR) {
		p->sm_reported = true;
		rt__sched_debug_printf(
		    "moonshim: goroutine %llu \"%s\" has run %lld ms without yielding "
		    "(created at %s)\n",
		    (unsigned long long)arl(&g->id), arl(&g->label) ? arl(&g->label) : "",
		    (long long)(ran / 1000000), arl(&g->where) ? arl(&g->where) : "?");
	}
	return true;
}

/* Is some M set to see the earliest timer, overdue at `now`, while P's are
 * idle? One handed a P or on its way to park or poll (S.nwatching), one
 * that has published the timer and not yet issued its wake-up
 * (p->adding), a spinning one, or the M blocked in netpoll sleeping until
 * then or earlier, or told to wake by a break it has not taken yet. Then an
 * overdue timer means that M's thread has not had a CPU since (measured:
 * on a loaded host a poller returns from epoll up to several ms after its
 * timeout; under SCHED_FIFO these vanish), not that a wake-up was lost.
 * The picture is read between two reads of S.idlegen, until it is still:
 * M's that keep moving are awake, not stuck. The timer judged is read
 * inside the picture too, before and after it: a deadline read earlier
 * may have been run since (sysmon can lose its CPU for ms between the
 * two), and a poller rightly sleeping until the next one is no lost
 * wake-up (rescues under qemu-user). */
static bool timer_watched(int64_t now) {
	for (int try = 0; try < STILL_TRIES; try++) {
		uint64_t gen = ald(&S.idlegen);
		int64_t when = rt__timers_next();
		if (!when || when + TIMER_OVERDUE_NS >= now)
			return true; /* run or removed since: an M saw it */
		bool seen = ald(&S.nwatching) > 0 || ald(&S.nmspinning) > 0;
		for (int i = 0; i < S.nprocs && !seen; i++)
			seen = ald(&S.allp[i]->adding) != 0; /* its wake-up is on the way */
		if (!seen && ald(&S.lastpoll) == 0) {
			int64_t pu = ald(&S.polluntil);
			seen = (pu && pu <= when) || rt__netpoll_break_pending();
		}
		if (seen)
			return true;
		if (ald(&S.idlegen) == gen && rt__timers_next() == when)
			return false; /* a still picture with nobody set to wake */
	}
	return true; /* M's kept moving: one of them is awake */
}

/* Safety net (Go's sysmon does the same): the earliest timer, `next` as
 * read at `now`, overdue by more than a tick while P's sit idle, so break
 * the poller and start an M. Only a timer no M was set to wake for is a
 * lost wake-up (timer_rescues, which must stay 0); see timer_watched. */
void rt__sysmon_check_timers(int64_t next, int64_t now) {
	if (!next || next + TIMER_OVERDUE_NS >= now || arl(&S.npidle) == 0)
		return;
	if (timer_watched(now))
		__atomic_fetch_add(&S.cnt.timer_late_polls, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&S.cnt.timer_rescues, 1, __ATOMIC_RELAXED);
	rt__netpoll_break();
	rt__wakep();
}

static void check_syscalls(int64_t now) {
	if (!S.debug_longrun)
		return;
	for (rt_m *m = ald(&S.allm); m; m = m->alllink) {
		int64_t since = ald(&m->syscall_since);
		if (since && now - since > SYSCALL_REPORT_NS && !m->syscall_reported) {
			m->syscall_reported = true;
			rt__sched_debug_printf(
			    "moonshim: thread M%d blocked in a call for %lld ms\n", m->id,
			    (long long)((now - since) / 1000000));
		}
	}
}

static void schedtrace(int64_t now) {
	if (!S.schedtrace_ms || now < sm.next_trace)
		return;
	sm.next_trace = now + (int64_t)S.schedtrace_ms * 1000000;
	rt_sched_sample s;
	char line[1024];
	rt_sched_sample_get(&s);
	int n = rt_sched_format(&s, line, sizeof line - 1);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	ssize_t r = write(2, line, (size_t)n);
	(void)r;
}

static void *sysmon_main(void *arg) {
	(void)arg;
	int idle = 0;
	int64_t delay_us = SYSMON_MIN_US;
	sm.next_trace = rt__nanotime();
	while (!ald(&sm.stop)) {
		uint32_t w = ald(&sm.wake);
		int64_t sleep_ns = delay_us * 1000;
		if (S.schedtrace_ms && sleep_ns > S.schedtrace_ms * 1000000LL)
			sleep_ns = S.schedtrace_ms * 1000000LL;
		if (delay_us == SYSMON_MAX_US && all_idle()) {
			asr(&sm.delay_us, DEEP_SLEEP_NS / 1000);
			sleep_ns = DEEP_SLEEP_NS;
		}
		rt__futex_wait(&sm.wake, w, sleep_ns);
		if (ald(&sm.stop))
			break;
		int64_t now = rt__nanotime();
		asr(&S.coarse_now, now);
		bool busy = false;
		for (int i = 0; i < S.nprocs; i++) {
			rt_p *p = S.allp[i];
			if (ald(&p->status) == P_SYSCALL) {
				busy = true;
				rt__retake(p, now);
			} else {
				busy |= check_longrun(p, now);
			}
		}
		int64_t lp = arl(&S.lastpoll);
		/* nobody has polled for 10 ms: do it here. A CAS, as Go's: a
		 * plain store could overwrite the 0 of an M that has just
		 * begun a blocking poll, and then timers added meanwhile would
		 * not break that poll (rt__wake_netpoller) */
		if (lp && lp + NETPOLL_FORCE_NS < now && rt__netpoll_waiters() &&
		    acas(&S.lastpoll, &lp, now))
			rt__inject(rt__netpoll(0));
		rt__sysmon_check_timers(rt__timers_next(), now);
		check_syscalls(now);
		schedtrace(now);
		if (__atomic_exchange_n(&rt__dump_requested, 0, __ATOMIC_ACQ_REL))
			rt_dump(2);
		if (busy) {
			idle = 0;
			delay_us = SYSMON_MIN_US;
		} else if (++idle > IDLE_TICKS_BEFORE_BACKOFF && delay_us < SYSMON_MAX_US) {
			delay_us *= 2;
			if (delay_us > SYSMON_MAX_US)
				delay_us = SYSMON_MAX_US;
		}
		asr(&sm.delay_us, delay_us);
	}
	return NULL;
}

void rt__sysmon_start(void) {
	/* atomic: M's already running may call rt__sysmon_wake meanwhile */
	ast(&sm.stop, 0);
	ast(&sm.wake, 0);
	ast(&sm.delay_us, SYSMON_MIN_US);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	sm.running = pthread_create(&sm.thread, NULL, sysmon_main, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void rt__sysmon_stop(void) {
	if (!sm.running)
		return;
	ast(&sm.stop, 1);
	rt__sysmon_wake();
	pthread_join(sm.thread, NULL);
	sm.running = false;
}
