/*
 * sched.c — the scheduler: G creation and exit, run queues, switching,
 * parking and readying, finding work (timers, global queue, netpoll,
 * stealing), spinning and parking M's, the syscall handoff, and rt_main.
 *
 * Invariants that must stay true (see rt.h for the design):
 *  - A G is made visible to other M's (run queue, wait list, timer) only
 *    after its context is saved: whoever does that runs in the after-switch
 *    hook (m->fin) on the next context of the same M.
 *  - Submitting work is "publish, then check nmspinning" (wakep); an M
 *    leaving the spinning state decrements nmspinning, then re-checks every
 *    queue. Both sides use sequentially consistent RMW's, so one of them
 *    always sees the other: no idle P while work is queued.
 *  - Only a P's owner pushes to its ring; anyone may pop (CAS on head).
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#ifdef RT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define DEFAULT_PROCS         2 /* a shim needs little parallelism */
#define DEFAULT_MAX_THREADS   64
#define DEFAULT_IDLE_M_NS     (10LL * 1000000000)
#define DEFAULT_LONGRUN_NS    (10LL * 1000000)
#define LOCK_BACKOFF_MAX      256  /* pauses between tries, at most */
#define LOCK_SPINS            16   /* tries (with back-off) before a contended lock yields */
#define RUNNEXT_STREAK_MAX    16   /* runnext hand-offs before the ring gets a turn */
#define TIMER_CHECK_MASK      7    /* read the clock every 8 schedule ticks */
#define STEAL_RUNNEXT_WAIT_NS 3000 /* let a running victim schedule its own runnext */
#define GOID_BATCH            16   /* ids a P takes from the shared counter at once */
#define M_STACK_SIZE          (256 * 1024)

struct rt_sched rt__sched;
#define S rt__sched

static __thread rt_m *tls_m;

/* The compiler may keep &tls_m in a register across a call that switches
 * goroutines; reading it through a non-inlined function with an opaque asm
 * re-reads it on the thread we are actually on. */
RT_NOINLINE rt_m *rt__getm(void) {
	rt_m *m = tls_m;
	__asm__ volatile("" : "+r"(m)::"memory");
	return m;
}
static RT_NOINLINE void setm(rt_m *m) {
	__asm__ volatile("" ::: "memory");
	tls_m = m;
}
rt_g *rt__getg(void) {
	rt_m *m = rt__getm();
	return m ? m->curg : NULL;
}

/* On every switch: inlined into their few callers. */
#define RT_HOT     __attribute__((always_inline)) inline
#define PCNT(p, f) asr(&(p)->cnt.f, arl(&(p)->cnt.f) + 1)
#define SCNT(f)    __atomic_fetch_add(&S.cnt.f, 1, __ATOMIC_RELAXED)
#define GSET(g, s) asr(&(g)->status, (s))
/* A new G takes the P: sysmon's long-run watch and the 61-tick fairness
 * check both count these. */
#define TICK(p) asr(&(p)->schedtick, (p)->schedtick + 1)

static inline void cpu_relax(void) {
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* ─── Time, random, debug output ─────────────────────────────────────── */

int64_t rt__nanotime(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
int64_t rt_now(void) {
	return rt__nanotime();
}
int64_t rt_now_coarse(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t rt__fastrand(void) {
	rt_m *m = rt__getm();
	static uint64_t shared = 88172645463325252ULL;
	uint64_t *s = (m && m->p) ? &m->p->rand : &shared;
	uint64_t x = arl(s);
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	asr(s, x);
	return (uint32_t)(x >> 16);
}

int rt__sched_debug_printf(const char *fmt, ...) {
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 1)
		n = sizeof buf - 1;
	ssize_t r = write(2, buf, (size_t)n);
	(void)r;
	return n;
}

/* ─── Locks ──────────────────────────────────────────────────────────── */

/* Contended: back off exponentially between tries, so that the holder
 * keeps the lock's cache line for a few operations in a row instead of
 * the line bouncing between cores on every one. */
void rt__lock_slow(uint32_t *v) {
	unsigned backoff = 1;
	for (int spins = 0;; spins++) {
		if (arl(v) == 0 && axchg(v, 1) == 0)
			return;
		if (spins < LOCK_SPINS) {
			for (unsigned i = 0; i < backoff; i++)
				cpu_relax();
			if (backoff < LOCK_BACKOFF_MAX)
				backoff <<= 1;
		} else {
			sched_yield(); /* the holder may have lost its CPU */
		}
	}
}

/* ─── Run queues ───────────────────────────────────────────────────────
 * With one P nobody steals: only the P's owner touches its ring and
 * runnext, so the owner's pops and runnext swaps need no locked
 * instructions (S.single). With more P's they are Go's lock-free SPMC ring
 * operations. */

static bool runq_empty(rt_p *p) {
	/* re-read tail so a racing runnext→ring move is never missed */
	for (;;) {
		uint32_t h = ald(&p->runqhead), t = ald(&p->runqtail);
		rt_g *next = ald(&p->runnext);
		if (t == ald(&p->runqtail))
			return h == t && !next;
	}
}

static void globrunq_put_batch(rt_g *head, rt_g *tail, int n) {
	tail->schedlink = NULL;
	if (S.runq_tail)
		S.runq_tail->schedlink = head;
	else
		S.runq_head = head;
	S.runq_tail = tail;
	asr(&S.runqsize, S.runqsize + n);
}

/* Ring full: move half of it plus g to the global queue (Go's runqputslow). */
static bool runq_put_slow(rt_p *p, rt_g *g, uint32_t h, uint32_t t) {
	rt_g *batch[RUNQ_SIZE / 2 + 1];
	uint32_t n = (t - h) / 2;
	for (uint32_t i = 0; i < n; i++)
		batch[i] = arl(&p->runq[(h + i) % RUNQ_SIZE]);
	if (!acas(&p->runqhead, &h, h + n))
		return false;
	batch[n] = g;
	for (uint32_t i = 0; i < n; i++)
		batch[i]->schedlink = batch[i + 1];
	rt__lock(&S.lock);
	globrunq_put_batch(batch[0], batch[n], (int)n + 1);
	rt__unlock(&S.lock);
	return true;
}

RT_HOT static void runq_put(rt_p *p, rt_g *g, bool next) {
	if (next) {
		rt_g *old;
		if (S.single) {
			old = arl(&p->runnext);
			asr(&p->runnext, g);
		} else {
			old = axchg(&p->runnext, g);
		}
		if (!old)
			return;
		g = old;
	}
	for (;;) {
		uint32_t h = ald(&p->runqhead), t = p->runqtail;
		if (t - h < RUNQ_SIZE) {
			asr(&p->runq[t % RUNQ_SIZE], g);
			ast(&p->runqtail, t + 1);
			return;
		}
		if (runq_put_slow(p, g, h, t))
			return;
	}
}

RT_HOT static rt_g *runq_pop_ring(rt_p *p) {
	if (S.single) {
		uint32_t h = arl(&p->runqhead);
		if (h == p->runqtail)
			return NULL;
		rt_g *g = arl(&p->runq[h % RUNQ_SIZE]);
		asr(&p->runqhead, h + 1);
		return g;
	}
	for (;;) {
		uint32_t h = ald(&p->runqhead), t = p->runqtail;
		if (t == h)
			return NULL;
		rt_g *g = arl(&p->runq[h % RUNQ_SIZE]);
		if (acas(&p->runqhead, &h, h + 1))
			return g;
	}
}

RT_HOT static rt_g *runq_get(rt_p *p, int *streak) {
	rt_g *next = arl(&p->runnext);
	if (next && *streak >= RUNNEXT_STREAK_MAX) {
		/* two goroutines handing off through runnext must not starve
		 * the ring forever */
		*streak = 0;
		rt_g *g = runq_pop_ring(p);
		if (g)
			return g;
	}
	if (next && S.single) {
		asr(&p->runnext, NULL);
		(*streak)++;
		return next;
	}
	if (next && acas(&p->runnext, &next, NULL)) {
		(*streak)++;
		return next;
	}
	*streak = 0;
	return runq_pop_ring(p);
}

/* Take half of victim's ring into batch[bh...]; on the last pass also its
 * runnext. Returns how many. */
static uint32_t runq_grab(rt_p *v, rt_g **batch, uint32_t bh, bool steal_next) {
	for (;;) {
		uint32_t h = ald(&v->runqhead), t = ald(&v->runqtail);
		uint32_t n = t - h;
		n = n - n / 2;
		if (n == 0) {
			if (!steal_next)
				return 0;
			rt_g *next = ald(&v->runnext);
			if (!next)
				return 0;
			if (ald(&v->status) == P_RUNNING) {
				int64_t until = rt__nanotime() + STEAL_RUNNEXT_WAIT_NS;
				while (rt__nanotime() < until)
					cpu_relax();
			}
			if (!acas(&v->runnext, &next, NULL))
				continue;
			asr(&batch[bh % RUNQ_SIZE], next);
			return 1;
		}
		if (n > RUNQ_SIZE / 2)
			continue; /* read inconsistent h and t */
		for (uint32_t i = 0; i < n; i++)
			asr(&batch[(bh + i) % RUNQ_SIZE], arl(&v->runq[(h + i) % RUNQ_SIZE]));
		if (acas(&v->runqhead, &h, h + n))
			return n;
	}
}

static rt_g *runq_steal(rt_p *p, rt_p *v, bool steal_next) {
	uint32_t t = p->runqtail;
	uint32_t n = runq_grab(v, p->runq, t, steal_next);
	if (!n)
		return NULL;
	n--;
	rt_g *g = arl(&p->runq[(t + n) % RUNQ_SIZE]);
	if (n)
		ast(&p->runqtail, t + n);
	PCNT(p, stolen);
	for (uint32_t i = 0; i < n; i++)
		PCNT(p, stolen);
	return g;
}

/* Under S.lock: up to max G's from the global queue, one returned, the
 * rest put on p's ring. */
static rt_g *globrunq_get(rt_p *p, int max) {
	int sz = S.runqsize;
	if (!sz)
		return NULL;
	int n = sz / S.nprocs + 1;
	if (n > sz)
		n = sz;
	if (max > 0 && n > max)
		n = max;
	if (n > RUNQ_SIZE / 2)
		n = RUNQ_SIZE / 2;
	asr(&S.runqsize, sz - n);
	rt_g *g = S.runq_head;
	S.runq_head = g->schedlink;
	for (int i = 1; i < n; i++) {
		rt_g *x = S.runq_head;
		S.runq_head = x->schedlink;
		runq_put(p, x, false);
	}
	if (!S.runq_head)
		S.runq_tail = NULL;
	return g;
}

/* ─── Idle P's and M's ───────────────────────────────────────────────── */

static void pidle_put(rt_p *p) { /* S.lock held */
	p->link = S.pidle;
	S.pidle = p;
	__atomic_add_fetch(&S.npidle, 1, __ATOMIC_SEQ_CST);
}

static rt_p *pidle_get(void) { /* S.lock held */
	rt_p *p = S.pidle;
	if (p) {
		S.pidle = p->link;
		__atomic_sub_fetch(&S.npidle, 1, __ATOMIC_SEQ_CST);
	}
	return p;
}

static void acquirep(rt_m *m, rt_p *p) {
	m->p = p;
	asr(&p->m, m);
	ast(&p->status, P_RUNNING);
}

static rt_p *releasep(rt_m *m) {
	rt_p *p = m->p;
	asr(&p->m, NULL);
	ast(&p->status, P_IDLE);
	m->p = NULL;
	return p;
}

/* m will look at every P's timers before it parks or blocks in netpoll
 * (see S.nwatching). Only m itself, or startm on a parked m, calls these. */
static void watch_begin(rt_m *m) {
	if (m->watching)
		return;
	m->watching = true;
	__atomic_add_fetch(&S.nwatching, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&S.idlegen, 1, __ATOMIC_SEQ_CST);
}
static void watch_end(rt_m *m) {
	if (!m->watching)
		return;
	m->watching = false;
	__atomic_add_fetch(&S.idlegen, 1, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&S.nwatching, 1, __ATOMIC_SEQ_CST);
}

static void *mstart(void *arg);

static void m_join_exited(void) { /* S.lock held: reap reclaimed threads */
	for (rt_m *m = S.allm; m; m = m->alllink)
		if (m->exited == M_EXITED && pthread_tryjoin_np(m->thread, NULL) == 0)
			m->exited = M_JOINED;
}

static rt_m *m_new(rt_p *p, bool spinning) {
	rt_m *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	rt__lock(&S.lock);
	m_join_exited();
	m->id = S.mcount;
	asr(&S.mcount, S.mcount + 1);
	m->exited = M_STARTING; /* rt_main must not join m->thread before it is set */
	m->alllink = S.allm;
	S.allm = m;
	rt__unlock(&S.lock);
	m->nextp = p;
	m->spinning = spinning;
	watch_begin(m);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, M_STACK_SIZE);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* the new thread starts with all blocked */
	int e = pthread_create(&m->thread, &a, mstart, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	rt__lock(&S.lock);
	if (e) {
		asr(&S.mcount, S.mcount - 1);
		m->exited = M_JOINED;
	} else if (m->exited == M_STARTING) {
		m->exited = M_LIVE;
	}
	rt__unlock(&S.lock);
	if (e) {
		watch_end(m);
		return NULL;
	}
	SCNT(threads_created);
	return m;
}

/* Run some M on p (or any idle P when p is NULL). */
static void startm(rt_p *p, bool spinning) {
	rt__lock(&S.lock);
	if (!p) {
		p = pidle_get();
		if (!p) {
			rt__unlock(&S.lock);
			if (spinning) {
				__atomic_sub_fetch(&S.nmspinning, 1, __ATOMIC_SEQ_CST);
				ast(&S.needspinning, 1);
				/* While our nmspinning was up, a P going idle with a
				 * timer to see (sysmon's handoff, rt__wake_netpoller)
				 * may have left the wake to the "spinner": there is
				 * none, so look again (a sysmon rescue under TSan) */
				if (__atomic_load_n(&S.npidle, __ATOMIC_SEQ_CST) > 0)
					rt__wakep();
			}
			return;
		}
	}
	rt_m *m = S.midle;
	if (m) {
		S.midle = m->link;
		asr(&S.nmidle, S.nmidle - 1);
		rt__unlock(&S.lock);
		m->spinning = spinning;
		m->nextp = p;
		watch_begin(m); /* m is parked: its fields are ours until the wake */
		SCNT(wakeups);
		ast(&m->park, 1);
		rt__futex_wake(&m->park, 1);
		return;
	}
	int live = S.mcount;
	rt__unlock(&S.lock);
	if (live >= S.cfg.max_threads || !m_new(p, spinning)) {
		/* at the cap: give the P back; a running M will find the work */
		rt__lock(&S.lock);
		pidle_put(p);
		rt__unlock(&S.lock);
		if (spinning)
			__atomic_sub_fetch(&S.nmspinning, 1, __ATOMIC_SEQ_CST);
		rt__netpoll_break();
	}
}

void rt__wakep(void) {
	/* StoreLoad: the work we just published (a plain release store of a
	 * ring tail) must be visible before we read nmspinning, or a spinner
	 * giving up (decrement, then re-check the queues) and we can miss
	 * each other: work queued, every other P asleep. With one P there is
	 * no spinner, and the global queue is published under S.lock. */
	if (!S.single)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ald(&S.done))
		return;
	if (__atomic_load_n(&S.npidle, __ATOMIC_SEQ_CST) == 0)
		return;
	int z = 0;
	if (arl(&S.nmspinning) != 0 ||
	    !__atomic_compare_exchange_n(&S.nmspinning, &z, 1, false, __ATOMIC_SEQ_CST,
	                                 __ATOMIC_SEQ_CST))
		return;
	startm(NULL, true);
}

void rt__wake_netpoller(int64_t when) {
	/* publish, then look: the poller does the mirror image in
	 * netpoll_block */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ald(&S.lastpoll) == 0) {
		int64_t pu = ald(&S.polluntil);
		if (pu == 0 || when < pu)
			rt__netpoll_break();
	} else {
		rt__wakep();
	}
}

/* Park this M until startm hands it a P. Returns false if the M should
 * exit (runtime done, or reclaimed after idling). */
static bool stopm(rt_m *m) {
	watch_end(m);
	rt__lock(&S.lock);
	if (ald(&S.done)) { /* wake_all_ms already ran: do not sleep through it */
		rt__unlock(&S.lock);
		return false;
	}
	m->link = S.midle;
	S.midle = m;
	asr(&S.nmidle, S.nmidle + 1);
	rt__unlock(&S.lock);
	SCNT(parks);
	for (;;) {
		rt__futex_wait(&m->park, 0, m->id == 0 ? -1 : S.cfg.idle_m_ns);
		if (ald(&m->park))
			break;
		/* timed out: an idle M beyond the P count gives its thread back */
		rt__lock(&S.lock);
		if (!ald(&m->park) && S.nmidle > 1 && S.mcount > S.nprocs + 1) {
			rt_m **pp = &S.midle;
			while (*pp && *pp != m)
				pp = &(*pp)->link;
			if (*pp) {
				*pp = m->link;
				asr(&S.nmidle, S.nmidle - 1);
				asr(&S.mcount, S.mcount - 1);
				rt__unlock(&S.lock);
				SCNT(threads_reclaimed);
				return false;
			}
		}
		rt__unlock(&S.lock);
	}
	asr(&m->park, 0);
	if (m->nextp) {
		acquirep(m, m->nextp);
		m->nextp = NULL;
		m->woken = true;
	}
	return !ald(&S.done);
}

/* ─── Switching ──────────────────────────────────────────────────────── */

#ifdef RT_ASAN
static void stack_bounds(rt_g *g, const void **lo, size_t *size) {
	if (g->is_g0) {
		*lo = g->slot;
		*size = g->slot_size;
	} else {
		*lo = g->slot + 4096;
		*size = (size_t)((char *)g - (g->slot + 4096));
	}
}
#endif

void rt__run_fin(rt_m *m) {
	rt__fin_fn f = m->fin;
	if (f) {
		m->fin = NULL;
		f(m, m->fin_g, m->fin_arg);
	}
}

/* Never inlined: every switch then returns through one call site, which
 * keeps the CPU's return-address predictor right across the stack change. */
RT_NOINLINE void rt__switch_to(rt_g *from, rt_g *to) {
	if (!from->is_g0)
		rt__stack_check(from);
#ifdef RT_ASAN
	const void *lo;
	size_t sz;
	stack_bounds(to, &lo, &sz);
	__sanitizer_start_switch_fiber(ald(&from->status) == G_DEAD ? NULL : &from->asan_fake, lo,
	                               sz);
#endif
#ifdef RT_TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	rt__ctx_switch(&from->sp, to->sp);
#ifdef RT_ASAN
	__sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
	rt__run_fin(rt__getm());
}

/* Timers are about to ready G's onto p's ring tail: the G in runnext (a
 * goroutine spawning in a loop, each spawn faulting in a fresh stack)
 * would run again and again before them, one ring turn per
 * RUNNEXT_STREAK_MAX, and sleepers woke milliseconds late (while the
 * other P's M waited for a CPU on a loaded host). It goes to the ring
 * tail first, so it still runs before them (it was readied earlier), but
 * then queues behind them. Owner only. */
static void runnext_behind(rt_p *p) {
	rt_g *nx = arl(&p->runnext);
	if (!nx)
		return;
	if (S.single)
		asr(&p->runnext, NULL);
	else if (!acas(&p->runnext, &nx, NULL))
		return; /* stolen meanwhile */
	runq_put(p, nx, false);
}

/* Local work for p, or NULL: expired timers, the global queue every 61
 * ticks, runnext, the ring, the global queue. */
RT_HOT static rt_g *find_local(rt_m *m, rt_p *p) {
	uint64_t tick = p->schedtick + 1; /* the tick of the G we are about to run */
	int64_t t0 = arl(&p->timer0);
	if (t0 && (tick & TIMER_CHECK_MASK) == 0) {
		int64_t now = rt__nanotime(); /* one clock read on the switch path */
		if (t0 <= now) {
			runnext_behind(p);
			rt__timers_run(p, now);
		}
	}
	if (arl(&S.runqsize) > 0 && tick % GLOBAL_CHECK_TICKS == 0) {
		rt__lock(&S.lock);
		rt_g *g = globrunq_get(p, 1);
		rt__unlock(&S.lock);
		if (g)
			return g;
	}
	rt_g *g = runq_get(p, &m->streak);
	if (g)
		return g;
	if (arl(&S.runqsize) > 0) {
		rt__lock(&S.lock);
		g = globrunq_get(p, 0);
		rt__unlock(&S.lock);
	}
	return g;
}

/* The current goroutine stops running; fin(self, arg) runs once it is
 * switched out. Goes straight to the next local G, else to g0. */
static void schedule_next(rt_m *m, rt_g *self, rt__fin_fn fin, void *arg) {
	rt_g *next = NULL;
	if (RT_LIKELY(!arl(&S.done)))
		next = find_local(m, m->p);
	if (next) {
		GSET(next, G_RUNNING);
		TICK(m->p);
		PCNT(m->p, switches);
	} else {
		next = &m->g0;
	}
	ast(&m->curg, next);
	m->fin = fin;
	m->fin_arg = arg;
	m->fin_g = self;
	rt__switch_to(self, next);
}

void rt__park(rt__fin_fn fin, void *arg, const char *reason) {
	rt_m *m = rt__getm();
	rt_g *g = m->curg;
	asr(&g->wait_reason, reason);
	asr(&g->wait_since, arl(&S.coarse_now));
	uint64_t gen = g->park_gen + 1;
	g->park_gen = gen;
	ast(&g->wake_token, gen << 1);
	GSET(g, G_WAITING);
	schedule_next(m, g, fin, arg);
}

bool rt__claim(rt_g *g, uint64_t gen) {
	uint64_t e = gen << 1;
	return acas(&g->wake_token, &e, e | 1);
}

static void ready(rt_g *g, bool next) {
	GSET(g, G_RUNNABLE);
	rt_m *m = rt__getm();
	if (m && m->p && !ald(&S.done)) {
		runq_put(m->p, g, next);
	} else {
		rt__lock(&S.lock);
		g->schedlink = NULL;
		globrunq_put_batch(g, g, 1);
		rt__unlock(&S.lock);
	}
	rt__wakep();
}

/* Woken by a channel, mutex, fd: run next (the waker usually blocks soon). */
void rt__ready(rt_g *g) {
	ready(g, true);
}

/* Woken by a timer: several expire together, and they should run in
 * deadline order, so they queue at the tail. */
void rt__ready_timer(rt_g *g) {
	ready(g, false);
}

void rt__inject(rt_g *list) {
	if (!list)
		return;
	rt_m *m = rt__getm();
	int n = 0;
	for (rt_g *g = list; g; g = g->schedlink)
		GSET(g, G_RUNNABLE), n++;
	if (m && m->p) {
		for (rt_g *g = list, *nx; g; g = nx) {
			nx = g->schedlink;
			runq_put(m->p, g, false);
		}
	} else {
		rt_g *tail = list;
		while (tail->schedlink)
			tail = tail->schedlink;
		rt__lock(&S.lock);
		globrunq_put_batch(list, tail, n);
		rt__unlock(&S.lock);
	}
	for (int i = 0; i < n && arl(&S.npidle) > 0; i++)
		rt__wakep();
}

static void fin_runq_tail(rt_m *m, rt_g *prev, void *arg) {
	(void)arg;
	runq_put(m->p, prev, false);
}

static void fin_runnext(rt_m *m, rt_g *prev, void *arg) {
	(void)arg;
	runq_put(m->p, prev, true);
	rt__wakep();
}

void rt_yield(void) {
	rt_m *m = rt__getm();
	rt_g *g = m->curg;
	/* A yield sysmon asked for ends a long slice: the P's timers may be
	 * overdue (find_local looks at them only every few ticks, and a long
	 * runner makes few ticks), so look now. Plain yields stay clock-free. */
	if (arl(&g->preempt)) {
		int64_t t0 = arl(&m->p->timer0), now;
		if (t0 && t0 <= (now = rt__nanotime()))
			rt__timers_run(m->p, now);
	}
	asr(&g->preempt, 0);
	rt_g *next = find_local(m, m->p);
	if (!next) { /* nobody else wants this P: carry on with a fresh slice */
		TICK(m->p);
		return;
	}
	GSET(g, G_RUNNABLE);
	GSET(next, G_RUNNING);
	TICK(m->p);
	PCNT(m->p, switches);
	ast(&m->curg, next);
	m->fin = fin_runq_tail;
	m->fin_g = g;
	rt__switch_to(g, next);
}

/* A request names the schedule tick it was made in, so a yield (or any
 * reschedule) retires it even if sysmon raced with the yield. */
bool rt_preempt_requested(void) {
	rt_m *m = rt__getm();
	rt_g *g = m ? m->curg : NULL;
	return g && m->p && ald(&g->preempt) == arl(&m->p->schedtick) + 1;
}

/* ─── Goroutine life ─────────────────────────────────────────────────── */

static rt_g *gfget(rt_p *p, size_t stack_size) {
	rt_g *g = NULL;
	if (!stack_size || stack_size == rt__stack_default()) {
		if (p && !p->gfree && arl(&S.ngfree) > 0) {
			rt__lock(&S.glock);
			while (S.gfree && p->ngfree < GFREE_BATCH) {
				rt_g *x = S.gfree;
				S.gfree = x->schedlink;
				S.ngfree--;
				x->schedlink = p->gfree;
				p->gfree = x;
				p->ngfree++;
			}
			rt__unlock(&S.glock);
		}
		if (p && p->gfree) {
			g = p->gfree;
			p->gfree = g->schedlink;
			p->ngfree--;
		} else if (!p && arl(&S.ngfree) > 0) {
			rt__lock(&S.glock);
			if ((g = S.gfree)) {
				S.gfree = g->schedlink;
				S.ngfree--;
			}
			rt__unlock(&S.glock);
		}
	} else {
		rt__lock(&S.glock);
		for (rt_g **pp = &S.gfree_odd; *pp; pp = &(*pp)->schedlink)
			if ((*pp)->slot_size == stack_size) {
				g = *pp;
				*pp = g->schedlink;
				break;
			}
		rt__unlock(&S.glock);
	}
	if (g)
		return g;
	g = rt__stack_new_g(p, stack_size);
	if (!g)
		return NULL;
	/* allgs only grows while the runtime runs: a lock-free push */
	rt_g *head = arl(&S.allgs);
	do
		g->allnext = head;
	while (!acas(&S.allgs, &head, g));
	return g;
}

void rt__g_free(rt_p *p, rt_g *g) {
	if (g->slot_size != rt__stack_default() || !p) {
		rt__lock(&S.glock);
		if (g->slot_size != rt__stack_default()) {
			g->schedlink = S.gfree_odd;
			S.gfree_odd = g;
		} else {
			g->schedlink = S.gfree;
			S.gfree = g;
			S.ngfree++;
		}
		rt__unlock(&S.glock);
		return;
	}
	g->schedlink = p->gfree;
	p->gfree = g;
	if (++p->ngfree < GFREE_MAX)
		return;
	rt__lock(&S.glock);
	while (p->ngfree > GFREE_BATCH) {
		rt_g *x = p->gfree;
		p->gfree = x->schedlink;
		p->ngfree--;
		x->schedlink = S.gfree;
		S.gfree = x;
		asr(&S.ngfree, S.ngfree + 1);
	}
	rt__unlock(&S.glock);
}

static void fin_gfree(rt_m *m, rt_g *prev, void *arg) {
	(void)arg;
	rt__g_free(m->p, prev);
}

static void goexit(void) {
	rt_m *m = rt__getm();
	rt_g *g = m->curg;
	asr(&g->wait_reason, NULL);
	GSET(g, G_DEAD);
	PCNT(m->p, goroutines_exited);
	schedule_next(m, g, fin_gfree, NULL);
	__builtin_unreachable();
}

void rt__g_start(rt_g *g);
void rt__g_start(rt_g *g) {
#ifdef RT_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	rt__run_fin(rt__getm());
	g->fn(g->arg);
	goexit();
}

/* Goroutine ids come from a per-P batch, so spawning takes no locked
 * instruction on the shared counter (Go's goidcache). */
static uint64_t goid_next(rt_p *p) {
	if (!p)
		return __atomic_add_fetch(&S.goidgen, 1, __ATOMIC_RELAXED);
	if (p->goid_next == p->goid_end) {
		p->goid_end = __atomic_add_fetch(&S.goidgen, GOID_BATCH, __ATOMIC_RELAXED) + 1;
		p->goid_next = p->goid_end - GOID_BATCH;
	}
	return p->goid_next++;
}

uint64_t rt_go_at(rt_fn fn, void *arg, const char *label, size_t stack_size, const char *where) {
	rt_m *m = rt__getm();
	rt_p *p = m ? m->p : NULL;
	rt_g *g = gfget(p, stack_size);
	if (!g) {
		rt__sched_debug_printf("moonshim: out of memory for goroutine \"%s\" at %s\n",
		                       label ? label : "", where);
		abort();
	}
	/* sysmon and dumps may still be looking at this G's previous life:
	 * what they read is written atomically */
	g->fn = fn;
	g->arg = arg;
	asr(&g->label, label);
	asr(&g->where, where);
	asr(&g->local, NULL);
	asr(&g->preempt, 0);
	asr(&g->wait_reason, NULL);
	rt_g *self = m ? m->curg : NULL;
	asr(&g->parent, self ? self->id : 0);
	uint64_t id = goid_next(p);
	asr(&g->id, id);
	rt__stack_prepare(g);
	if (p)
		PCNT(p, goroutines_created);
	else
		SCNT(goroutines_created);
	if (p && self && !self->is_g0 && !arl(&S.done)) {
		/* work-first: run the child now, the parent waits in runnext
		 * (published after the switch, see fin_runnext) */
		GSET(self, G_RUNNABLE);
		GSET(g, G_RUNNING);
		TICK(p);
		PCNT(p, switches);
		ast(&m->curg, g);
		m->fin = fin_runnext;
		m->fin_g = self;
		rt__switch_to(self, g);
		return id;
	}
	GSET(g, G_RUNNABLE);
	if (p) {
		runq_put(p, g, true);
	} else {
		rt__lock(&S.lock);
		g->schedlink = NULL;
		globrunq_put_batch(g, g, 1);
		rt__unlock(&S.lock);
	}
	rt__wakep();
	return id;
}

uint64_t rt_self(void) {
	rt_g *g = rt__getg();
	return g && !g->is_g0 ? g->id : 0;
}
const char *rt_self_label(void) {
	rt_g *g = rt__getg();
	return g && !g->is_g0 ? g->label : NULL;
}
void rt_set_local(void *p) {
	rt_g *g = rt__getg();
	if (g) /* outside the runtime there is no goroutine to hold it */
		asr(&g->local, p);
}
void *rt_get_local(void) {
	return rt__getg()->local;
}
int rt_procs(void) {
	return S.nprocs;
}
int rt_goroutines(void) {
	rt_counters c;
	rt_counters_get(&c);
	return (int)(c.goroutines_created - c.goroutines_exited);
}

/* ─── Finding work on g0 ─────────────────────────────────────────────── */

static void run_all_timers(int64_t now) {
	for (int i = 0; i < S.nprocs; i++) {
		int64_t t0 = arl(&S.allp[i]->timer0);
		if (t0 && t0 <= now)
			rt__timers_run(S.allp[i], now);
	}
}

static rt_g *steal_work(rt_m *m, rt_p *p) {
	for (int pass = 0; pass < STEAL_TRIES; pass++) {
		bool last = pass == STEAL_TRIES - 1;
		int start = (int)(rt__fastrand() % (uint32_t)S.nprocs);
		for (int k = 0; k < S.nprocs; k++) {
			rt_p *v = S.allp[(start + k) % S.nprocs];
			if (v == p)
				continue;
			if (ald(&S.done))
				return NULL;
			PCNT(p, steal_attempts);
			rt_g *g = runq_steal(p, v, last);
			if (g) {
				PCNT(p, steals);
				return g;
			}
		}
	}
	(void)m;
	return NULL;
}

static bool any_runq_nonempty(void) {
	for (int i = 0; i < S.nprocs; i++)
		if (!runq_empty(S.allp[i]))
			return true;
	return false;
}

/* Poll the network blocking until the next timer. Returns a G to run (with
 * a P acquired), or NULL after a timeout/wake (goto top). */
static rt_g *netpoll_block(rt_m *m, bool *polled) {
	int64_t next = rt__timers_next();
	bool waiters = rt__netpoll_waiters();
	*polled = false;
	if (!waiters && !next)
		return NULL;
	int64_t lp = arl(&S.lastpoll);
	if (lp == 0 || !acas(&S.lastpoll, &lp, 0)) {
		/* someone else polls: make sure they wake for our timer */
		int64_t pu = arl(&S.polluntil);
		if (next && (pu == 0 || next < pu))
			rt__netpoll_break();
		return NULL;
	}
	*polled = true;
	asr(&S.polluntil, next ? next : INT64_MAX);
	/* a timer added before our CAS saw lastpoll != 0 and did not break
	 * the poll: look again now that we are the poller */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	int64_t again = rt__timers_next();
	if (again && (!next || again < next)) {
		next = again;
		asr(&S.polluntil, next);
	}
	int64_t now = rt__nanotime();
	int64_t delay = next ? (next > now ? next - now : 0) : -1;
	watch_end(m); /* lastpoll and polluntil say when we wake */
	bool took_break;
	rt_g *list = rt__netpoll_poller(delay, &took_break);
	watch_begin(m);
	if (took_break) /* only now: see rt__netpoll_poller */
		rt__netpoll_break_taken();
	asr(&S.polluntil, 0);
	ast(&S.lastpoll, rt__nanotime());
	rt__lock(&S.lock);
	rt_p *p = pidle_get();
	rt__unlock(&S.lock);
	if (!p) {
		rt__inject(list);
		return NULL;
	}
	acquirep(m, p);
	if (!list)
		return NULL;
	rt_g *g = list;
	GSET(g, G_RUNNABLE);
	rt__inject(g->schedlink);
	g->schedlink = NULL;
	return g;
}

/* Block until there is a G to run; NULL when the M must exit. */
static rt_g *find_runnable(rt_m *m) {
top:
	if (ald(&S.done))
		return NULL;
	if (!m->p) {
		if (!stopm(m))
			return NULL;
		goto top;
	}
	rt_p *p = m->p;
	run_all_timers(rt__nanotime());
	watch_end(m);
	rt_g *g = find_local(m, p);
	if (g)
		return g;
	if (rt__netpoll_waiters() && arl(&S.lastpoll) != 0) {
		rt_g *list = rt__netpoll(0);
		if (list) {
			g = list;
			rt__inject(g->schedlink);
			g->schedlink = NULL;
			return g;
		}
	}
	int busy = S.nprocs - __atomic_load_n(&S.npidle, __ATOMIC_SEQ_CST);
	if (m->spinning || 2 * arl(&S.nmspinning) < busy) {
		if (!m->spinning) {
			m->spinning = true;
			__atomic_add_fetch(&S.nmspinning, 1, __ATOMIC_SEQ_CST);
		}
		PCNT(p, spins);
		g = steal_work(m, p);
		if (g) {
			PCNT(p, spins_found_work);
			return g;
		}
	}
	/* give up the P */
	rt__lock(&S.lock);
	if (S.runqsize) {
		g = globrunq_get(p, 0);
		rt__unlock(&S.lock);
		return g;
	}
	int one = 1;
	if (!m->spinning && acas(&S.needspinning, &one, 0)) {
		rt__unlock(&S.lock);
		m->spinning = true;
		__atomic_add_fetch(&S.nmspinning, 1, __ATOMIC_SEQ_CST);
		goto top;
	}
	watch_begin(m);
	releasep(m);
	pidle_put(p);
	rt__unlock(&S.lock);
	if (m->spinning) {
		m->spinning = false;
		__atomic_sub_fetch(&S.nmspinning, 1, __ATOMIC_SEQ_CST);
		/* the delicate dance: work submitted while we were spinning saw
		 * nmspinning > 0 and did not wake anyone */
		if (any_runq_nonempty() || arl(&S.runqsize) > 0) {
			rt__lock(&S.lock);
			p = pidle_get();
			rt__unlock(&S.lock);
			if (p) {
				acquirep(m, p);
				m->spinning = true;
				__atomic_add_fetch(&S.nmspinning, 1, __ATOMIC_SEQ_CST);
				goto top;
			}
		}
	}
	bool polled;
	g = netpoll_block(m, &polled);
	if (g)
		return g;
	if (polled)
		goto top;
	if (!stopm(m))
		return NULL;
	goto top;
}

static void execute(rt_m *m, rt_g *g) {
	if (m->spinning) {
		/* chain rule: the last spinner to find work wakes another */
		m->spinning = false;
		__atomic_sub_fetch(&S.nmspinning, 1, __ATOMIC_SEQ_CST);
		rt__wakep();
	}
	if (m->woken) {
		m->woken = false;
		SCNT(wakeups_found_work);
	}
	GSET(g, G_RUNNING);
	TICK(m->p);
	PCNT(m->p, switches);
	ast(&m->curg, g);
	rt__switch_to(&m->g0, g);
}

static void m_loop(rt_m *m) {
	for (;;) {
		ast(&m->curg, &m->g0);
		rt__run_fin(m);
		rt_g *g = find_runnable(m);
		if (!g)
			break;
		execute(m, g);
	}
	ast(&m->curg, &m->g0);
	watch_end(m);
	if (m->p) {
		rt__lock(&S.lock);
		pidle_put(releasep(m));
		rt__unlock(&S.lock);
	}
}

static void g0_init(rt_m *m) {
	m->g0.is_g0 = true;
	m->g0.id = 0;
	ast(&m->curg, &m->g0);
	pthread_attr_t a;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		void *lo;
		size_t sz;
		pthread_attr_getstack(&a, &lo, &sz);
		m->g0.slot = lo;
		m->g0.slot_size = sz;
		pthread_attr_destroy(&a);
	}
#ifdef RT_TSAN
	m->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
}

static void *mstart(void *arg) {
	rt_m *m = arg;
	setm(m);
	g0_init(m);
	rt__stack_thread_init(m);
	pthread_sigmask(SIG_SETMASK, &S.sigmask, NULL);
	if (m->nextp) {
		acquirep(m, m->nextp);
		m->nextp = NULL;
	}
	m_loop(m);
	rt__stack_thread_fini(m);
	rt__lock(&S.lock);
	if (!ald(&S.done))
		m->exited = M_EXITED; /* reclaimed: joined by the next m_new or rt_main */
	rt__unlock(&S.lock);
	setm(NULL);
	return NULL;
}

/* ─── Syscall handoff ────────────────────────────────────────────────── */

void rt_syscall_enter(void) {
	rt_m *m = rt__getm();
	rt_g *g = m->curg;
	rt_p *p = m->p;
	asr(&g->wait_reason, "syscall");
	asr(&g->wait_since, arl(&S.coarse_now));
	GSET(g, G_SYSCALL);
	asr(&p->syscalltick, p->syscalltick + 1);
	ast(&m->syscall_since, rt__nanotime());
	ast(&p->status, P_SYSCALL);
	rt__sysmon_wake();
}

static void fin_globrunq(rt_m *m, rt_g *prev, void *arg) {
	(void)arg;
	rt__lock(&S.lock);
	prev->schedlink = NULL;
	globrunq_put_batch(prev, prev, 1);
	rt__unlock(&S.lock);
	rt__wakep();
}

void rt_syscall_exit(void) {
	rt_m *m = rt__getm();
	rt_g *g = m->curg;
	rt_p *p = m->p;
	ast(&m->syscall_since, 0);
	m->syscall_reported = false;
	int e = P_SYSCALL;
	if (acas(&p->status, &e, P_RUNNING)) {
		asr(&g->wait_reason, NULL);
		GSET(g, G_RUNNING);
		return;
	}
	/* sysmon handed our P to another M */
	m->p = NULL;
	rt__lock(&S.lock);
	rt_p *np = pidle_get();
	rt__unlock(&S.lock);
	asr(&g->wait_reason, NULL);
	if (np) {
		acquirep(m, np);
		GSET(g, G_RUNNING);
		return;
	}
	GSET(g, G_RUNNABLE);
	ast(&m->curg, &m->g0);
	m->fin = fin_globrunq;
	m->fin_g = g;
	rt__switch_to(g, &m->g0); /* g0 finds no P and parks this M */
}

/* Called by sysmon: give a P stuck in a syscall to another M. */
void rt__retake(rt_p *p, int64_t now) {
	int e = P_SYSCALL;
	uint64_t t = arl(&p->syscalltick);
	if (t != p->sm_syscalltick) {
		p->sm_syscalltick = t;
		p->sm_when = now;
		return;
	}
	if (now - p->sm_when < SYSCALL_RETAKE_NS)
		return;
	if (runq_empty(p) && arl(&S.nmspinning) + arl(&S.npidle) > 0 &&
	    now - p->sm_when < NETPOLL_FORCE_NS)
		return;
	if (!acas(&p->status, &e, P_IDLE))
		return;
	asr(&p->m, NULL);
	SCNT(handoffs);
	if (!runq_empty(p) || arl(&S.runqsize) > 0) {
		startm(p, false);
		return;
	}
	int z = 0;
	if (arl(&S.nmspinning) + arl(&S.npidle) == 0 &&
	    __atomic_compare_exchange_n(&S.nmspinning, &z, 1, false, __ATOMIC_SEQ_CST,
	                                __ATOMIC_SEQ_CST)) {
		startm(p, true);
		return;
	}
	rt__lock(&S.lock);
	pidle_put(p);
	rt__unlock(&S.lock);
	/* No M comes with this idle P to look at the timers and the fds, as
	 * one giving up its P in find_runnable does: the poller may have
	 * found no P to take and parked, and a break with nobody polling
	 * wakes nobody (Go's handoffp: wakeNetPoller, and an M to poll when
	 * nobody does). */
	int64_t next = rt__timers_next();
	if (next || rt__netpoll_waiters())
		rt__wake_netpoller(next ? next : INT64_MAX);
}

/* ─── Introspection ──────────────────────────────────────────────────── */

void rt_sched_sample_get(rt_sched_sample *s) {
	memset(s, 0, sizeof *s);
	s->uptime_ms = (rt__nanotime() - S.start) / 1000000;
	s->gomaxprocs = S.nprocs;
	s->idleprocs = arl(&S.npidle);
	s->threads = arl(&S.mcount) + 1 + arl(&S.pool_threads); /* + sysmon */
	s->spinningthreads = arl(&S.nmspinning);
	s->needspinning = arl(&S.needspinning);
	s->idlethreads = arl(&S.nmidle);
	s->runqueue = arl(&S.runqsize);
	for (int i = 0; i < S.nprocs; i++) {
		rt_p *p = S.allp[i];
		/* head first (as Go): the tail never falls behind a head read
		 * earlier, so the length cannot come out negative */
		uint32_t h = ald(&p->runqhead);
		uint32_t n = ald(&p->runqtail) - h;
		s->runq[i] = n > RUNQ_SIZE ? RUNQ_SIZE : (int)n;
	}
}

int rt_sched_format(const rt_sched_sample *s, char *buf, size_t n) {
	int off = snprintf(buf, n,
	                   "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
	                   "needspinning=%d idlethreads=%d runqueue=%d [",
	                   (long long)s->uptime_ms, s->gomaxprocs, s->idleprocs, s->threads,
	                   s->spinningthreads, s->needspinning, s->idlethreads, s->runqueue);
	for (int i = 0; i < s->gomaxprocs && off > 0 && (size_t)off < n; i++)
		off += snprintf(buf + off, n - (size_t)off, i ? " %d" : "%d", s->runq[i]);
	if (off > 0 && (size_t)off < n)
		off += snprintf(buf + off, n - (size_t)off, "]");
	return off;
}

void rt_counters_get(rt_counters *c) {
	uint64_t *out = (uint64_t *)c;
	const size_t nf = sizeof *c / sizeof(uint64_t);
	for (size_t f = 0; f < nf; f++) {
		uint64_t v = arl(&((uint64_t *)&S.cnt)[f]);
		for (int i = 0; i < S.nprocs; i++)
			v += arl(&((uint64_t *)&S.allp[i]->cnt)[f]);
		out[f] = v;
	}
}

/* ─── Start and stop ─────────────────────────────────────────────────── */

static int env_int(const char *name, int dflt) {
	const char *e = getenv(name);
	return e && *e ? atoi(e) : dflt;
}

static void parse_debug(void) {
	const char *e = getenv("MOONSHIM_DEBUG");
	S.schedtrace_ms = 0;
	S.debug_stacks = S.debug_longrun = false;
	if (!e)
		return;
	const char *s = strstr(e, "schedtrace=");
	if (s)
		S.schedtrace_ms = atoi(s + strlen("schedtrace="));
	S.debug_stacks = strstr(e, "stacks") != NULL;
	S.debug_longrun = strstr(e, "longrun") != NULL;
}

static struct {
	rt_main_fn fn;
	void *arg;
	int result;
	rt_g *g;
} main_g;
static int exit_leaks;

static void wake_all_ms(void) {
	rt__lock(&S.lock);
	for (rt_m *m = S.midle; m; m = m->link) {
		ast(&m->park, 1);
		rt__futex_wake(&m->park, 1);
	}
	S.midle = NULL;
	asr(&S.nmidle, 0);
	rt__unlock(&S.lock);
	rt__netpoll_break();
}

static void main_wrapper(void *arg) {
	(void)arg;
	asr(&main_g.g, rt__getg());
	main_g.result = main_g.fn(main_g.arg);
	ast(&S.done, 1);
	wake_all_ms();
}

int rt_exit_leaks(void) {
	return exit_leaks;
}

static void sched_init(const rt_config *cfg) {
	memset(&S, 0, sizeof S);
	pthread_sigmask(SIG_SETMASK, NULL, &S.sigmask);
	if (cfg)
		S.cfg = *cfg;
	if (S.cfg.procs <= 0)
		S.cfg.procs = env_int("MOONSHIM_PROCS", DEFAULT_PROCS);
	if (S.cfg.procs < 1)
		S.cfg.procs = 1;
	if (S.cfg.procs > RT_MAX_PROCS)
		S.cfg.procs = RT_MAX_PROCS;
	if (S.cfg.max_threads <= 0)
		S.cfg.max_threads = DEFAULT_MAX_THREADS;
	if (S.cfg.max_threads < S.cfg.procs + 1)
		S.cfg.max_threads = S.cfg.procs + 1;
	if (S.cfg.idle_m_ns <= 0)
		S.cfg.idle_m_ns = DEFAULT_IDLE_M_NS;
	if (S.cfg.longrun_ns <= 0)
		S.cfg.longrun_ns = DEFAULT_LONGRUN_NS;
	parse_debug();
	S.nprocs = S.cfg.procs;
	S.single = S.nprocs == 1;
	S.start = rt__nanotime();
	S.coarse_now = S.start;
	S.lastpoll = S.start;
	for (int i = 0; i < S.nprocs; i++) {
		rt_p *p = aligned_alloc(64, (sizeof(rt_p) + 63) & ~(size_t)63);
		if (!p)
			abort();
		memset(p, 0, sizeof *p);
		p->id = i;
		p->rand = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ (uint64_t)S.start;
		S.allp[i] = p;
		if (i)
			pidle_put(p);
	}
}

static void count_leaks(void) {
	exit_leaks = 0;
	for (rt_g *g = S.allgs; g; g = g->allnext)
		if (g != main_g.g && arl(&g->status) != G_DEAD)
			exit_leaks++;
	if (exit_leaks && !S.cfg.quiet_leaks) {
		rt__sched_debug_printf(
		    "moonshim: %d goroutine(s) still alive when main returned:\n", exit_leaks);
		int64_t now = rt__nanotime();
		for (rt_g *g = S.allgs; g; g = g->allnext)
			if (g != main_g.g && arl(&g->status) != G_DEAD)
				rt__dump_g(2, g, now);
	}
}

int rt_main(const rt_config *cfg, rt_main_fn fn, void *arg) {
	sched_init(cfg);
	int nperr = rt__netpoll_init();
	if (nperr) { /* nothing else is made yet: give back the P's */
		for (int i = 0; i < S.nprocs; i++)
			free(S.allp[i]);
		memset(&S, 0, sizeof S);
		errno = -nperr;
		return RT_MAIN_FAILED;
	}
	rt__stack_init();
	rt__debug_init();
	rt__blocking_init();

	rt_m *m0 = calloc(1, sizeof *m0);
	if (!m0)
		abort();
	m0->id = S.mcount;
	asr(&S.mcount, S.mcount + 1);
	m0->thread = pthread_self();
	S.allm = m0;
	setm(m0);
	g0_init(m0);
	rt__stack_thread_init(m0);
	acquirep(m0, S.allp[0]);

	main_g.fn = fn;
	main_g.arg = arg;
	main_g.result = 0;
	rt_go_at(main_wrapper, NULL, "main", 0, "rt_main");
	rt__sysmon_start();

	m_loop(m0);

	/* the main goroutine returned: stop every M, then free everything */
	ast(&S.done, 1);
	for (;;) {
		wake_all_ms();
		rt__lock(&S.lock);
		/* sysmon still runs and may start an M: one in allm whose
		 * pthread_create has not returned has no handle to join yet
		 * (TSan caught the join of a garbage handle); wait for it */
		rt_m *m;
		bool starting = false;
		for (m = S.allm; m; m = m->alllink) {
			if (m == m0 || m->exited == M_JOINED)
				continue;
			if (m->exited != M_STARTING)
				break;
			starting = true;
		}
		if (m) /* claimed: m_new's m_join_exited must not join it too */
			m->exited = M_JOINED;
		rt__unlock(&S.lock);
		if (!m && starting) {
			sched_yield();
			continue;
		}
		if (!m)
			break;
		pthread_join(m->thread, NULL);
	}
	rt__sysmon_stop();
	rt__blocking_fini();
	count_leaks();
	rt__debug_fini();
	rt__netpoll_fini();
	rt__stack_thread_fini(m0);
	setm(NULL);
	for (rt_m *m = S.allm, *n; m; m = n) {
		n = m->alllink;
		free(m);
	}
	for (int i = 0; i < S.nprocs; i++) {
		free(S.allp[i]->timers);
		free(S.allp[i]);
	}
	rt__stack_fini();
	return main_g.result;
}
