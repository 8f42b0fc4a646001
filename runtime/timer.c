/*
 * timer.c — per-P timer heaps (sleeps, deadlines, tickers) and the public
 * rt_timer built on them.
 *
 * Each P owns a 4-ary min-heap under its own lock; p->timer0 caches the
 * earliest deadline so the scheduler can skip the lock. A timer's callback
 * runs with no lock held, on whichever M found it expired, and must not
 * park. After a one-shot timer's callback starts, the runtime never touches
 * the timer again except to count it in `firing` (under the heap lock,
 * before the callback): a callback that wants its owner to wait for it
 * decrements `firing` as its last act (rt_timer does; sleeps need not).
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

#define S              rt__sched
#define TIMERS_INITIAL 16

/* ─── Heap ───────────────────────────────────────────────────────────── */

/* 4-ary, as Go's: half the levels of a binary heap, and the four children
 * of a slot share a cache line or two. Each slot carries its timer's
 * deadline, so a sift reads the array only and writes t->idx of the timers
 * it moves. */
#define HEAP_ARITY 4

static void heap_set(rt_p *p, int i, rt__heap_entry e) {
	p->timers[i] = e;
	e.t->idx = i;
}

static void sift_up(rt_p *p, int i) {
	rt__heap_entry e = p->timers[i];
	while (i > 0) {
		int parent = (i - 1) / HEAP_ARITY;
		if (p->timers[parent].when <= e.when)
			break;
		heap_set(p, i, p->timers[parent]);
		i = parent;
	}
	heap_set(p, i, e);
}

static void sift_down(rt_p *p, int i) {
	rt__heap_entry e = p->timers[i];
	for (;;) {
		int c = HEAP_ARITY * i + 1, end = c + HEAP_ARITY;
		if (c >= p->ntimers)
			break;
		if (end > p->ntimers)
			end = p->ntimers;
		int min = c;
		for (int k = c + 1; k < end; k++)
			if (p->timers[k].when < p->timers[min].when)
				min = k;
		if (e.when <= p->timers[min].when)
			break;
		heap_set(p, i, p->timers[min]);
		i = min;
	}
	heap_set(p, i, e);
}

static void heap_remove(rt_p *p, int i) {
	rt__timer *t = p->timers[i].t;
	p->ntimers--;
	if (i != p->ntimers) {
		heap_set(p, i, p->timers[p->ntimers]);
		sift_down(p, i);
		sift_up(p, i);
	}
	t->idx = -1;
}

static void update_timer0(rt_p *p) {
	asr(&p->timer0, p->ntimers ? p->timers[0].when : 0);
}

/* ─── Internal API ───────────────────────────────────────────────────── */

void rt__timer_add(rt__timer *t, int64_t when) {
	rt_m *m = rt__getm();
	bool own = m && m->p;
	rt_p *p = own ? m->p : S.allp[rt__fastrand() % (uint32_t)S.nprocs];
	/* From the publish below to the wake-up: sysmon must not take a
	 * timer whose adder lost its CPU in between for a lost wake-up (a
	 * plain store on the owner's P; a counted M otherwise). */
	if (own)
		ast(&p->adding, 1);
	else
		__atomic_add_fetch(&S.nwatching, 1, __ATOMIC_SEQ_CST);
	if (when <= 0)
		when = 1; /* 0 means "no timer" in timer0 */
	rt__lock(&p->tlock);
	if (p->ntimers == p->captimers) {
		int cap = p->captimers ? p->captimers * 2 : TIMERS_INITIAL;
		rt__heap_entry *nt = realloc(p->timers, (size_t)cap * sizeof *nt);
		if (!nt) {
			rt__unlock(&p->tlock);
			rt__sched_debug_printf("moonshim: out of memory for a timer\n");
			abort();
		}
		p->timers = nt;
		p->captimers = cap;
	}
	t->when = when;
	asr(&t->p, p);
	heap_set(p, p->ntimers++, (rt__heap_entry){when, t});
	sift_up(p, t->idx);
	update_timer0(p);
	rt__unlock(&p->tlock);
	rt__wake_netpoller(when);
	if (own)
		ast(&p->adding, 0);
	else
		__atomic_sub_fetch(&S.nwatching, 1, __ATOMIC_SEQ_CST);
}

bool rt__timer_del(rt__timer *t) {
	rt_p *p = arl(&t->p);
	if (!p)
		return false;
	rt__lock(&p->tlock);
	bool queued = t->p == p && t->idx >= 0;
	if (queued) {
		heap_remove(p, t->idx);
		update_timer0(p);
	}
	rt__unlock(&p->tlock);
	return queued;
}

int rt__timers_run(rt_p *p, int64_t now) {
	int n = 0;
	rt__lock(&p->tlock);
	while (p->ntimers && p->timers[0].when <= now) {
		rt__timer *t = p->timers[0].t;
		void (*fn)(void *, uint64_t) = t->fn;
		void *arg = t->arg;
		uint64_t seq = t->seq;
		__atomic_add_fetch(&t->firing, 1, __ATOMIC_RELAXED); /* see rt_timer_free */
		if (t->period > 0) {
			int64_t next = t->when + t->period;
			t->when = next > now ? next : now + t->period; /* drop missed ticks */
			p->timers[0].when = t->when;
			sift_down(p, 0);
		} else {
			heap_remove(p, 0);
		}
		update_timer0(p);
		rt__unlock(&p->tlock);
		fn(arg, seq);
		n++;
		rt__lock(&p->tlock);
	}
	update_timer0(p);
	rt__unlock(&p->tlock);
	if (n)
		__atomic_fetch_add(&S.cnt.timers_fired, (uint64_t)n, __ATOMIC_RELAXED);
	return n;
}

int64_t rt__timers_next(void) {
	int64_t best = 0;
	for (int i = 0; i < S.nprocs; i++) {
		int64_t w = arl(&S.allp[i]->timer0);
		if (w && (!best || w < best))
			best = w;
	}
	return best;
}

/* ─── Sleep ──────────────────────────────────────────────────────────── */

static void wake_sleeper(void *arg, uint64_t gen) {
	rt_g *g = arg;
	if (rt__claim(g, gen))
		rt__ready_timer(g);
}

static void fin_arm(rt_m *m, rt_g *prev, void *arg) {
	(void)prev;
	rt__timer *t = arg;
	rt__timer_add(t, t->when);
}

void rt_sleep_until(int64_t deadline) {
	rt_g *g = rt__getg();
	if (deadline <= rt__nanotime())
		return;
	rt__timer t = {
	    .when = deadline, .fn = wake_sleeper, .arg = g, .seq = g->park_gen + 1, .idx = -1};
	rt__park(fin_arm, &t, "sleep");
}

void rt_sleep(int64_t ns) {
	if (ns > 0)
		rt_sleep_until(rt_deadline_in(ns));
}

/* ─── rt_timer: a timer or ticker delivering on a channel ────────────── */

bool rt__chan_try_send(rt_chan *c, const void *elem); /* chan.c */

struct rt_timer {
	rt__timer t;
	rt_chan *c;
};

static void timer_fire(void *arg, uint64_t seq) {
	(void)seq;
	rt_timer *tm = arg;
	int64_t now = rt__nanotime();
	rt__chan_try_send(tm->c, &now); /* a full channel drops the tick, like Go */
	__atomic_sub_fetch(&tm->t.firing, 1, __ATOMIC_RELEASE);
}

rt_timer *rt_timer_new(int64_t ns, int64_t period) {
	rt_timer *tm = calloc(1, sizeof *tm);
	if (!tm)
		return NULL;
	tm->c = rt_chan_new(sizeof(int64_t), 1);
	if (!tm->c) {
		free(tm);
		return NULL;
	}
	tm->t.fn = timer_fire;
	tm->t.arg = tm;
	tm->t.idx = -1;
	tm->t.period = period > 0 ? period : 0;
	rt__timer_add(&tm->t, rt_deadline_in(ns));
	return tm;
}

rt_chan *rt_timer_chan(rt_timer *tm) {
	return tm->c;
}

bool rt_timer_stop(rt_timer *tm) {
	return rt__timer_del(&tm->t);
}

void rt_timer_reset(rt_timer *tm, int64_t ns) {
	rt__timer_del(&tm->t);
	rt__timer_add(&tm->t, rt_deadline_in(ns));
}

void rt_timer_free(rt_timer *tm) {
	if (!tm)
		return;
	rt__timer_del(&tm->t);
	while (__atomic_load_n(&tm->t.firing, __ATOMIC_ACQUIRE))
		rt_yield(); /* a callback on another M is still sending */
	rt_chan_free(tm->c);
	free(tm);
}
