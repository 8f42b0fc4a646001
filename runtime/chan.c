/*
 * chan.c — channels and select with Go's semantics (runtime/chan.go,
 * runtime/select.go): a lock, a ring buffer, and queues of parked senders
 * and receivers. A value goes straight from sender to a waiting receiver
 * (and back) without touching the buffer.
 *
 * Waiters are "sudogs" on the parked goroutine's own stack. A goroutine in
 * select has one sudog per case in several channels at once; whichever
 * waker first wins rt__claim() owns it, the others skip its sudogs. A
 * channel's lock is released only after its waiter has switched out (the
 * after-switch hook), so a waker never sees a half-parked goroutine.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SELECT_MAX_CASES 64
#define CACHE_LINE       64

typedef struct sudog {
	rt_g *g;
	uint64_t gen;
	void *elem;
	rt_chan *c;
	struct sudog *next, *prev;
	int case_idx;
	bool is_select;
	bool queued;
	bool success; /* false: woken by close */
} sudog;

typedef struct {
	sudog *head, *tail;
} waitq;

struct rt_chan {
	rt__lock_t lock;
	size_t elemsize, cap, count, sendx, recvx;
	bool closed;
	waitq recvq, sendq;
	char *buf;
};

/* With one P, channels are only ever touched by the thread that holds that
 * P (goroutines, and timer callbacks run by the same thread), and P
 * hand-overs between threads synchronise; the lock is then elided. */
static inline void chan_lock(rt_chan *c) {
	if (!rt__sched.single)
		rt__lock(&c->lock);
}
static inline void chan_unlock(rt_chan *c) {
	if (!rt__sched.single)
		rt__unlock(&c->lock);
}

static void chan_panic(const char *what) {
	rt__sched_debug_printf("moonshim: panic: %s (goroutine %llu \"%s\")\n", what,
	                       (unsigned long long)rt_self(),
	                       rt_self_label() ? rt_self_label() : "");
	abort();
}

/* The channel and its buffer are one block, the buffer starting on its own
 * cache line: senders filling slots must not keep stealing the line that
 * holds the lock and the counters. */
rt_chan *rt_chan_new(size_t elem_size, size_t cap) {
	size_t head = (sizeof(rt_chan) + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
	size_t bufsz = cap * elem_size;
	if (elem_size && cap > (SIZE_MAX - head) / elem_size)
		return NULL;
	rt_chan *c =
	    aligned_alloc(CACHE_LINE, (head + bufsz + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1));
	if (!c)
		return NULL;
	memset(c, 0, head + bufsz);
	c->elemsize = elem_size;
	c->cap = cap;
	c->buf = bufsz ? (char *)c + head : NULL;
	return c;
}

void rt_chan_free(rt_chan *c) {
	free(c);
}

size_t rt_chan_len(rt_chan *c) {
	return arl(&c->count);
}
size_t rt_chan_cap(rt_chan *c) {
	return c->cap;
}

/* ─── Wait queues (channel lock held) ────────────────────────────────── */

static void wq_push(waitq *q, sudog *s) {
	s->next = NULL;
	s->prev = q->tail;
	if (q->tail)
		q->tail->next = s;
	else
		q->head = s;
	q->tail = s;
	s->queued = true;
}

static void wq_remove(waitq *q, sudog *s) {
	if (!s->queued)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		q->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		q->tail = s->prev;
	s->queued = false;
}

/* First waiter whose goroutine we can claim; losers are dropped. Inlined:
 * it runs under the lock on every operation, mostly on an empty queue. */
static inline __attribute__((always_inline)) sudog *wq_take(waitq *q) {
	sudog *s;
	while ((s = q->head)) {
		wq_remove(q, s);
		/* a plain send/receive has only this channel to wake it, and we
		 * hold its lock; a select may be woken elsewhere first */
		if (!s->is_select || rt__claim(s->g, s->gen))
			return s;
	}
	return NULL;
}

static inline __attribute__((always_inline)) void copy_elem(rt_chan *c, void *dst,
                                                            const void *src) {
	if (!dst || !c->elemsize)
		return;
	if (!src) {
		memset(dst, 0, c->elemsize);
		return;
	}
	switch (c->elemsize) { /* the common sizes, without a call to memcpy */
	case 8:
		memcpy(dst, src, 8);
		break;
	case 4:
		memcpy(dst, src, 4);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	default:
		memcpy(dst, src, c->elemsize);
	}
}

/* The ring index after i: a compare, not a division (a 64-bit divide costs
 * tens of cycles, on every buffered send and receive). */
static inline size_t ring_next(const rt_chan *c, size_t i) {
	return i + 1 == c->cap ? 0 : i + 1;
}

static void *slot(rt_chan *c, size_t i) {
	return c->buf + i * c->elemsize;
}

static void wake(sudog *s, bool success) {
	s->success = success;
	s->g->param = s;
	rt__ready(s->g);
}

/* ─── The three operations, lock held, not blocking ──────────────────── */

/* Send if it can proceed now: 1 done, 0 would block. Unlocks on success. */
static int send_now(rt_chan *c, const void *elem) {
	sudog *r = wq_take(&c->recvq);
	if (r) {
		copy_elem(c, r->elem, elem);
		chan_unlock(c);
		wake(r, true);
		return 1;
	}
	if (c->count < c->cap) {
		copy_elem(c, slot(c, c->sendx), elem);
		c->sendx = ring_next(c, c->sendx);
		asr(&c->count, c->count + 1);
		chan_unlock(c);
		return 1;
	}
	return 0;
}

/* Receive if it can proceed now: 1 done, 0 would block. Unlocks on
 * success. *ok is false for a closed, drained channel. */
static int recv_now(rt_chan *c, void *elem, bool *ok) {
	sudog *s = wq_take(&c->sendq);
	if (s) {
		if (c->cap == 0) {
			copy_elem(c, elem, s->elem);
		} else {
			/* buffer is full: take its head, put the sender's value at its tail */
			copy_elem(c, elem, slot(c, c->recvx));
			copy_elem(c, slot(c, c->recvx), s->elem);
			c->recvx = ring_next(c, c->recvx);
			c->sendx = c->recvx;
		}
		chan_unlock(c);
		wake(s, true);
		*ok = true;
		return 1;
	}
	if (c->count > 0) {
		copy_elem(c, elem, slot(c, c->recvx));
		c->recvx = ring_next(c, c->recvx);
		asr(&c->count, c->count - 1);
		chan_unlock(c);
		*ok = true;
		return 1;
	}
	if (c->closed) {
		chan_unlock(c);
		copy_elem(c, elem, NULL);
		*ok = false;
		return 1;
	}
	return 0;
}

static void fin_unlock(rt_m *m, rt_g *prev, void *arg) {
	(void)prev;
	chan_unlock((rt_chan *)arg);
}

void rt_chan_send(rt_chan *c, const void *elem) {
	chan_lock(c);
	if (c->closed) {
		chan_unlock(c);
		chan_panic("send on closed channel");
	}
	if (send_now(c, elem))
		return;
	rt_g *g = rt__getg();
	sudog s = {.g = g, .gen = g->park_gen + 1, .elem = (void *)elem, .c = c};
	wq_push(&c->sendq, &s);
	rt__park(fin_unlock, c, "chan send");
	if (!s.success)
		chan_panic("send on closed channel");
}

bool rt_chan_recv(rt_chan *c, void *elem) {
	bool ok;
	chan_lock(c);
	if (recv_now(c, elem, &ok))
		return ok;
	rt_g *g = rt__getg();
	sudog s = {.g = g, .gen = g->park_gen + 1, .elem = elem, .c = c};
	wq_push(&c->recvq, &s);
	rt__park(fin_unlock, c, "chan receive");
	if (!s.success)
		copy_elem(c, elem, NULL);
	return s.success;
}

/* For timers: send without blocking, from any context. */
bool rt__chan_try_send(rt_chan *c, const void *elem) {
	chan_lock(c);
	if (!c->closed && send_now(c, elem))
		return true;
	chan_unlock(c);
	return false;
}

void rt_chan_close(rt_chan *c) {
	chan_lock(c);
	if (c->closed) {
		chan_unlock(c);
		chan_panic("close of closed channel");
	}
	c->closed = true;
	sudog *woken = NULL, *s;
	while ((s = wq_take(&c->recvq))) {
		copy_elem(c, s->elem, NULL);
		s->next = woken;
		woken = s;
	}
	while ((s = wq_take(&c->sendq))) {
		s->next = woken;
		woken = s;
	}
	chan_unlock(c);
	while (woken) {
		s = woken;
		woken = s->next; /* read before the goroutine can run and reuse s */
		wake(s, false);
	}
}

/* ─── select ─────────────────────────────────────────────────────────── */

typedef struct {
	rt_chan **locks; /* distinct channels in address order */
	int nlocks;
	rt__timer timer;
	bool has_timer;
} select_park;

static void lock_all(rt_chan **l, int n) {
	for (int i = 0; i < n; i++)
		chan_lock(l[i]);
}
static void unlock_all(rt_chan **l, int n) {
	for (int i = n - 1; i >= 0; i--)
		chan_unlock(l[i]);
}

static void fin_select(rt_m *m, rt_g *prev, void *arg) {
	(void)prev;
	select_park *sp = arg;
	/* arm the timer before any lock drops: once a lock drops a waker may
	 * resume us, and we would return before the timer is in the heap */
	if (sp->has_timer)
		rt__timer_add(&sp->timer, sp->timer.when);
	unlock_all(sp->locks, sp->nlocks);
}

static void select_timeout(void *arg, uint64_t gen) {
	rt_g *g = arg;
	if (rt__claim(g, gen)) {
		g->param = NULL;
		rt__ready_timer(g);
	}
}

static int cmp_chan(const void *a, const void *b) {
	uintptr_t x = (uintptr_t) * (rt_chan *const *)a, y = (uintptr_t) * (rt_chan *const *)b;
	return x < y ? -1 : x > y;
}

/* Try case i with its channel locked; on success every lock is released.
 * The helpers unlock only their own channel, so re-lock around them. */
static bool select_try(rt_case *cs, int i, rt_chan **locks, int nlocks) {
	rt_chan *c = cs[i].c;
	/* the helpers release c's lock on success: release the others first,
	 * keeping c's, so that all are released when they return */
	if (cs[i].dir == RT_SEND) {
		if (c->closed) {
			unlock_all(locks, nlocks);
			chan_panic("send on closed channel");
		}
		if (!(c->recvq.head || c->count < c->cap))
			return false;
	} else {
		if (!(c->sendq.head || c->count > 0 || c->closed))
			return false;
	}
	for (int k = nlocks - 1; k >= 0; k--)
		if (locks[k] != c)
			chan_unlock(locks[k]);
	if (cs[i].dir == RT_SEND) {
		if (send_now(c, cs[i].elem))
			return true;
	} else if (recv_now(c, cs[i].elem, &cs[i].ok)) {
		return true;
	}
	/* every queued waiter lost its claim: nothing ready after all */
	chan_unlock(c);
	lock_all(locks, nlocks);
	return false;
}

int rt_select(rt_case *cs, int n, int64_t deadline) {
	if (n < 0 || n > SELECT_MAX_CASES)
		chan_panic("rt_select: too many cases");
	rt_chan *locks[SELECT_MAX_CASES];
	int order[SELECT_MAX_CASES];
	int nl = 0, no = 0;
	for (int i = 0; i < n; i++) {
		if (!cs[i].c)
			continue; /* nil channel: never ready */
		locks[nl++] = cs[i].c;
		/* random poll order (Fisher-Yates insertion) */
		int j = (int)(rt__fastrand() % (uint32_t)(no + 1));
		order[no] = order[j];
		order[j] = i;
		no++;
	}
	qsort(locks, (size_t)nl, sizeof *locks, cmp_chan);
	int d = 0;
	for (int i = 0; i < nl; i++)
		if (!d || locks[d - 1] != locks[i])
			locks[d++] = locks[i];
	nl = d;

	for (;;) {
		lock_all(locks, nl);
		for (int k = 0; k < no; k++) {
			int i = order[k];
			if (select_try(cs, i, locks, nl))
				return i;
		}
		if (deadline != RT_FOREVER && deadline <= rt__nanotime()) {
			unlock_all(locks, nl);
			return -ETIMEDOUT;
		}
		rt_g *g = rt__getg();
		uint64_t gen = g->park_gen + 1;
		sudog sg[SELECT_MAX_CASES];
		for (int k = 0; k < no; k++) {
			int i = order[k];
			sg[k] = (sudog){.g = g,
			                .gen = gen,
			                .elem = cs[i].elem,
			                .c = cs[i].c,
			                .case_idx = i,
			                .is_select = true};
			wq_push(cs[i].dir == RT_SEND ? &cs[i].c->sendq : &cs[i].c->recvq, &sg[k]);
		}
		select_park sp = {
		    .locks = locks, .nlocks = nl, .has_timer = deadline != RT_FOREVER};
		sp.timer = (rt__timer){
		    .when = deadline, .fn = select_timeout, .arg = g, .seq = gen, .idx = -1};
		g->param = NULL;
		if (no == 0 && !sp.has_timer) {
			unlock_all(locks, nl);
			chan_panic("select with no cases blocks forever");
		}
		rt__park(fin_select, &sp, "select");
		if (sp.has_timer)
			rt__timer_del(&sp.timer);
		sudog *won = g->param;
		lock_all(locks, nl);
		for (int k = 0; k < no; k++) {
			rt_chan *c = sg[k].c;
			wq_remove(cs[sg[k].case_idx].dir == RT_SEND ? &c->sendq : &c->recvq,
			          &sg[k]);
		}
		unlock_all(locks, nl);
		if (!won)
			return -ETIMEDOUT;
		int i = won->case_idx;
		if (cs[i].dir == RT_SEND) {
			if (!won->success)
				chan_panic("send on closed channel");
		} else {
			cs[i].ok = won->success;
			if (!won->success)
				copy_elem(cs[i].c, cs[i].elem, NULL);
		}
		return i;
	}
}
