/*
 * sync.c — goroutine-aware mutex, waitgroup and once. Contended waiters
 * park (the thread runs other goroutines); a mutex hands ownership directly
 * to the first waiter, so no waiter starves.
 *
 * The wait lists live in the public structs (so they can be statically
 * initialised) and are guarded by the struct's `lk` word, a runtime lock
 * that a parking goroutine releases only after it has switched out.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <stdlib.h>

#define MUTEX_SPINS 32 /* CAS attempts before parking */

typedef struct waiter {
	rt_g *g;
	struct waiter *next;
} waiter;

static void wl_push(void **head, void **tail, waiter *w) {
	w->next = NULL;
	if (*tail)
		((waiter *)*tail)->next = w;
	else
		*head = w;
	*tail = w;
}

static waiter *wl_pop(void **head, void **tail) {
	waiter *w = *head;
	if (w) {
		*head = w->next;
		if (!*head)
			*tail = NULL;
	}
	return w;
}

static void fin_unlock_word(rt_m *m, rt_g *prev, void *arg) {
	(void)prev;
	rt__unlockw(arg);
}

/* ─── Mutex ──────────────────────────────────────────────────────────── */

bool rt_mutex_trylock(rt_mutex *mu) {
	uint32_t e = 0;
	return acas(&mu->state, &e, 1);
}

void rt_mutex_lock(rt_mutex *mu) {
	for (int i = 0; i < MUTEX_SPINS; i++) {
		uint32_t e = 0;
		if (arl(&mu->state) == 0 && acas(&mu->state, &e, 1))
			return;
	}
	rt__lockw(&mu->lk);
	for (;;) {
		uint32_t s = ald(&mu->state);
		if (s == 0) {
			if (acas(&mu->state, &s, 1)) {
				rt__unlockw(&mu->lk);
				return;
			}
			continue;
		}
		if (s == 2 || acas(&mu->state, &s, 2))
			break;
	}
	waiter w = {.g = rt__getg()};
	wl_push(&mu->head, &mu->tail, &w);
	rt__park(fin_unlock_word, &mu->lk, "sync.Mutex.Lock");
	/* the unlocker handed the mutex to us */
}

void rt_mutex_unlock(rt_mutex *mu) {
	uint32_t e = 1;
	if (acas(&mu->state, &e, 0))
		return;
	if (e == 0) {
		rt__sched_debug_printf("moonshim: panic: unlock of unlocked mutex\n");
		abort();
	}
	rt__lockw(&mu->lk);
	waiter *w = wl_pop(&mu->head, &mu->tail);
	if (!w) {
		ast(&mu->state, 0);
		rt__unlockw(&mu->lk);
		return;
	}
	ast(&mu->state, mu->head ? 2 : 1); /* still locked: ownership passes to w */
	rt__unlockw(&mu->lk);
	rt__ready(w->g);
}

/* ─── WaitGroup ────────────────────────────────────────────────────────
 * Count and number of parked waiters share one atomic word. The Done that
 * brings the count to zero touches the WaitGroup again only if somebody is
 * parked on it; that waiter cannot return (and free it) before it is woken.
 * Without the shared word, a Done could lock a WaitGroup whose Wait saw zero
 * and whose owner already returned. */

#define WG_COUNT(s)   ((int32_t)((s) >> 32))
#define WG_WAITERS(s) ((uint32_t)(s))

void rt_wg_add(rt_waitgroup *wg, int64_t n) {
	uint64_t s = __atomic_add_fetch(&wg->state, (uint64_t)n << 32, __ATOMIC_ACQ_REL);
	int32_t v = WG_COUNT(s);
	if (v < 0) {
		rt__sched_debug_printf("moonshim: panic: negative waitgroup counter\n");
		abort();
	}
	if (v > 0 || WG_WAITERS(s) == 0)
		return;
	rt__lockw(&wg->lk);
	waiter *all = wg->head;
	wg->head = wg->tail = NULL;
	ast(&wg->state, 0);
	rt__unlockw(&wg->lk);
	while (all) {
		waiter *w = all;
		all = w->next; /* read before the goroutine can run */
		rt__ready(w->g);
	}
}

void rt_wg_done(rt_waitgroup *wg) {
	rt_wg_add(wg, -1);
}

void rt_wg_wait(rt_waitgroup *wg) {
	for (;;) {
		uint64_t s = ald(&wg->state);
		if (WG_COUNT(s) == 0)
			return;
		rt__lockw(&wg->lk);
		if (acas(&wg->state, &s, s + 1)) {
			waiter w = {.g = rt__getg()};
			wl_push(&wg->head, &wg->tail, &w);
			rt__park(fin_unlock_word, &wg->lk, "sync.WaitGroup.Wait");
			return;
		}
		rt__unlockw(&wg->lk); /* the count moved: look again */
	}
}

/* ─── Once ───────────────────────────────────────────────────────────── */

void rt_once_do(rt_once *o, rt_fn fn, void *arg) {
	if (ald(&o->done))
		return;
	rt_mutex_lock(&o->mu);
	if (!o->done) {
		fn(arg);
		ast(&o->done, 1);
	}
	rt_mutex_unlock(&o->mu);
}
