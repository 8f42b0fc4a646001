/*
 * rt_internal.h — the runtime's shared internals: G, M, P, the scheduler
 * state, and the small primitives (locks, futex, atomics) every runtime
 * file uses. Nothing here is for code outside runtime/.
 */
#ifndef MOONSHIM_RT_INTERNAL_H
#define MOONSHIM_RT_INTERNAL_H

#include "rt.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

/* ─── Build flavours ─────────────────────────────────────────────────── */

#if defined(__SANITIZE_ADDRESS__)
#define RT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define RT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RT_TSAN 1
#endif
#endif

#define RT_NOINLINE    __attribute__((noinline))
#define RT_LIKELY(x)   __builtin_expect(!!(x), 1)
#define RT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ─── Constants (Go's, where Go has one) ─────────────────────────────── */

#define RUNQ_SIZE          256      /* per-P ring, as Go's p.runq */
#define GLOBAL_CHECK_TICKS 61       /* schedticks between global-queue checks */
#define STEAL_TRIES        4        /* passes over the other P's */
#define GFREE_MAX          64       /* per-P dead-G cache before spilling ... */
#define GFREE_BATCH        32       /* ... this many to the global list */
#define SYSMON_MIN_US      20       /* sysmon tick while busy */
#define SYSMON_MAX_US      10000    /* and while idle */
#define SYSCALL_RETAKE_NS  20000    /* a P in a syscall this long may be handed off */
#define NETPOLL_FORCE_NS   10000000 /* sysmon polls if nobody has for 10 ms */

/* ─── Atomics shorthands ─────────────────────────────────────────────── */

#define ald(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define arl(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define ast(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define asr(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define aadd(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define ainc(p)    __atomic_fetch_add((p), 1, __ATOMIC_RELAXED)
#define acas(p, e, d)                                                                              \
	__atomic_compare_exchange_n((p), (e), (d), false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define axchg(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)

/* ─── Locks ───────────────────────────────────────────────────────────
 * Runtime locks guard a few loads and stores (a channel, a wait list, the
 * global queue), so they spin: one locked instruction to take, a plain
 * release store to drop. A spinner that waits long yields the CPU, in case
 * the holder's thread was descheduled. */

typedef struct {
	uint32_t v;
} rt__lock_t;
void rt__lock_slow(uint32_t *v);
static inline void rt__lockw(uint32_t *v) {
	if (RT_UNLIKELY(axchg(v, 1) != 0))
		rt__lock_slow(v);
}
static inline void rt__unlockw(uint32_t *v) {
	ast(v, 0);
}
static inline void rt__lock(rt__lock_t *l) {
	rt__lockw(&l->v);
}
static inline void rt__unlock(rt__lock_t *l) {
	rt__unlockw(&l->v);
}

int rt__futex_wait(uint32_t *addr, uint32_t val, int64_t timeout_ns);
void rt__futex_wake(uint32_t *addr, int n);

/* ─── G ──────────────────────────────────────────────────────────────── */

enum g_status {
	G_DEAD = 0, /* on a free list */
	G_RUNNABLE, /* in a run queue */
	G_RUNNING,
	G_WAITING, /* parked; wait_reason says on what */
	G_SYSCALL, /* between rt_syscall_enter and exit, or in rt_blocking */
};

typedef struct rt_g rt_g;
typedef struct rt_m rt_m;
typedef struct rt_p rt_p;

struct rt_g {
	void *sp; /* saved stack pointer while switched out */
	uint64_t id;
	int status; /* enum g_status; read racily by dumps */
	const char *label, *where;
	uint64_t parent;
	const char *wait_reason;
	int64_t wait_since;
	rt_fn fn;
	void *arg;
	void *local;
	rt_g *schedlink;     /* global queue / free lists / wait lists */
	rt_g *allnext;       /* every G ever made, for dumps */
	uint64_t park_gen;   /* bumped at every park; see rt__claim */
	uint64_t wake_token; /* park_gen<<1 | claimed */
	void *param;         /* handed over by the waker */
	int64_t result;      /* a waker's verdict (e.g. -ETIMEDOUT) */
	uint64_t preempt;    /* sysmon asked this G to yield: its P's schedtick + 1 then */
	/* stack slot: [guard page][stack ... ][this G][canary] */
	char *slot; /* lowest address (the guard page) */
	size_t slot_size;
	bool guarded; /* guard page is PROT_NONE */
	bool is_g0;
#ifdef RT_ASAN
	void *asan_fake;
#endif
#ifdef RT_TSAN
	void *tsan_fiber;
#endif
	unsigned valgrind_id;
};

/* ─── P ──────────────────────────────────────────────────────────────── */

enum p_status { P_IDLE = 0, P_RUNNING, P_SYSCALL };

typedef struct rt__timer rt__timer;
/* A timer heap slot: the deadline sits beside the pointer, so sifting
 * compares without touching the timers (each on its own goroutine's stack). */
typedef struct {
	int64_t when;
	rt__timer *t;
} rt__heap_entry;

struct rt_p {
	int id;
	int status; /* enum p_status, atomic */
	rt_m *m;
	rt_p *link;         /* idle list */
	uint64_t schedtick; /* atomic: sysmon reads it */
	uint64_t syscalltick;
	/* run queue: single producer (the owner), many consumers (thieves) */
	uint32_t runqhead, runqtail;
	rt_g *runq[RUNQ_SIZE];
	rt_g *runnext;
	/* dead G's that keep their default-size stack */
	rt_g *gfree;
	int ngfree;
	uint64_t rand;
	uint64_t goid_next, goid_end; /* this P's batch of goroutine ids */
	/* timers: a 4-ary min-heap under tlock (timer.c); timer0 caches the
	 * earliest */
	rt__lock_t tlock;
	rt__heap_entry *timers;
	int ntimers, captimers;
	int64_t timer0; /* atomic; 0 = none */
	int adding;     /* atomic, owner only: a timer published, its wake-up not yet issued */
	/* counters, written by the owner only, read racily */
	rt_counters cnt;
	/* sysmon's view */
	uint64_t sm_schedtick, sm_syscalltick;
	int64_t sm_when;
	bool sm_reported;
	void *arena; /* stack.c: the chunk this P carves slots from */
};

/* ─── M ──────────────────────────────────────────────────────────────── */

enum m_exited {
	M_LIVE = 0,
	M_EXITED,   /* the thread exited (reclaimed after idling): join it */
	M_JOINED,   /* joined, being joined, or never started */
	M_STARTING, /* in allm, but pthread_create has not yet given its handle */
};

typedef void (*rt__fin_fn)(rt_m *m, rt_g *prev, void *arg);

struct rt_m {
	int id;
	rt_p *p;
	rt_p *nextp; /* handed over by startm */
	bool spinning;
	rt_g *curg;
	rt_g g0;       /* the thread's own stack */
	uint32_t park; /* futex: 1 = woken */
	rt_m *link;    /* idle list */
	rt_m *alllink;
	pthread_t thread;
	int exited; /* enum m_exited, under S.lock */
	/* after-switch action: runs on whatever runs next on this M */
	rt__fin_fn fin;
	void *fin_arg;
	rt_g *fin_g;
	void *altstack;
	int64_t syscall_since; /* atomic: 0 when not in a syscall */
	bool syscall_reported;
	int streak;    /* consecutive runnext hand-offs */
	bool woken;    /* woken by startm, not yet found work */
	bool watching; /* counted in S.nwatching (see there) */
};

/* ─── The scheduler ──────────────────────────────────────────────────── */

struct rt_sched {
	rt__lock_t lock; /* global queue, idle lists, M list */
	rt_g *runq_head, *runq_tail;
	int runqsize; /* atomic reads */
	rt_p *pidle;
	int npidle; /* atomic */
	rt_m *midle;
	int nmidle;
	int nmspinning;   /* atomic */
	int needspinning; /* atomic */
	int mcount;       /* M's alive (incl. sysmon) */
	rt_m *allm;
	rt_p *allp[RT_MAX_PROCS];
	int nprocs;
	bool single; /* one P: its queues have no thieves (see sched.c) */
	rt_g *gfree; /* global dead-G list (default stacks) */
	int ngfree;
	rt_g *gfree_odd;  /* dead G's with non-default stacks */
	rt__lock_t glock; /* allgs + gfree lists */
	rt_g *allgs;
	uint64_t goidgen;
	int64_t lastpoll;  /* atomic: 0 while an M blocks in netpoll */
	int64_t polluntil; /* atomic: when that M wakes up */
	/* M's about to look at every P's timers and the poller: handed a P
	 * by startm, or between giving up their P and parking or blocking in
	 * netpoll, or back from netpoll and not yet past the timers. With the
	 * blocked poller and the spinning M's they are who sees a timer while
	 * P's are idle; sysmon counts an overdue timer none of them was set to
	 * wake for as a lost wake-up (timer_rescues). idlegen moves whenever
	 * one of them does, so sysmon can tell a still picture from a moving
	 * one. */
	int nwatching;    /* atomic */
	uint64_t idlegen; /* atomic */
	int done;         /* atomic: the main goroutine returned */
	int64_t start;
	rt_config cfg;
	/* rt_main's caller's signal mask, which every M runs with: a signal the
	 * program blocks (to read it from a signalfd) must not kill the process
	 * through a thread that lets it in */
	sigset_t sigmask;
	rt_counters cnt; /* counters not tied to a P (atomic) */
	rt_preempt_hook preempt_hook;
	void *preempt_arg;
	int64_t coarse_now; /* atomic, refreshed by sysmon: wait_since stamps */
	int pool_threads;   /* atomic: rt_blocking threads alive */
	int schedtrace_ms;
	bool debug_stacks, debug_longrun;
};
extern struct rt_sched rt__sched;

/* ─── Cross-file internals ───────────────────────────────────────────── */

/* sched.c */
rt_m *rt__getm(void); /* never cached across a park */
rt_g *rt__getg(void);
void rt__park(rt__fin_fn fin, void *arg, const char *reason);
void rt__ready(rt_g *g);
void rt__ready_timer(rt_g *g);         /* FIFO: timer wake-ups keep deadline order */
void rt__inject(rt_g *list);           /* ready a schedlink list (netpoll) */
bool rt__claim(rt_g *g, uint64_t gen); /* first of several wakers wins */
void rt__wakep(void);
/* After publishing a timer due at `when` (or a P with one going idle): an M
 * blocked in netpoll sleeps until polluntil, so wake it if `when` is
 * earlier; with nobody polling, make sure some M is up to see it (Go's
 * wakeNetPoller). */
void rt__wake_netpoller(int64_t when);
void rt__netpoll_break(void);
int64_t rt__nanotime(void);
uint32_t rt__fastrand(void);
int rt__sched_debug_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rt__switch_to(rt_g *from, rt_g *to); /* from = current context */
void rt__run_fin(rt_m *m);
void rt__g_free(rt_p *p, rt_g *g);
void rt__retake(rt_p *p, int64_t now); /* sysmon */

/* switch_*.S */
void rt__ctx_switch(void **save_sp, void *new_sp);
void rt__g_trampoline(void);

/* stack.c */
rt_g *rt__stack_new_g(rt_p *p, size_t stack_size); /* a G in a fresh slot */
void rt__stack_init(void);
void rt__stack_fini(void);
void rt__stack_prepare(rt_g *g); /* before (re)starting g */
void rt__stack_check_slow(rt_g *g);
/* At switch-out: a stack without a hardware guard is checked by hand. */
static inline void rt__stack_check(rt_g *g) {
	if (!g->guarded && !g->is_g0)
		rt__stack_check_slow(g);
}
void rt__stack_thread_init(rt_m *m); /* sigaltstack for this M */
void rt__stack_thread_fini(rt_m *m);
size_t rt__stack_default(void);

/* timer.c */
struct rt__timer {
	int64_t when, period;
	void (*fn)(void *arg, uint64_t seq);
	void *arg;
	uint64_t seq;
	int idx;    /* heap index, -1 when not queued */
	int firing; /* callbacks started (see timer.c) */
	rt_p *p;
};
void rt__timer_add(rt__timer *t, int64_t when);
bool rt__timer_del(rt__timer *t);
int rt__timers_run(rt_p *p, int64_t now); /* expired timers of p; returns count */
int64_t rt__timers_next(void);            /* earliest over all P's, 0 if none */

/* netpoll.c */
int rt__netpoll_init(void); /* 0, or -errno (epoll, eventfd) */
void rt__netpoll_fini(void);
rt_g *rt__netpoll(int64_t delay_ns); /* ready G list; non-blocking (delay 0) */
/* the blocking poller's; delay <0 forever. *took_break: it read the
 * break, which stays pending until rt__netpoll_break_taken. */
rt_g *rt__netpoll_poller(int64_t delay_ns, bool *took_break);
void rt__netpoll_break_taken(void);
bool rt__netpoll_waiters(void);
bool rt__netpoll_break_pending(void); /* a break is written and no poll has taken it yet */

/* sysmon.c */
void rt__sysmon_start(void);
void rt__sysmon_stop(void);
void rt__sysmon_wake(void);
/* sysmon's safety net for overdue timers (next: the earliest, read at now) */
void rt__sysmon_check_timers(int64_t next, int64_t now);

/* blocking.c */
void rt__blocking_init(void);
void rt__blocking_fini(void);

/* debug.c */
void rt__debug_init(void);
void rt__debug_fini(void);
void rt__dump_g(int fd, rt_g *g, int64_t now);
const char *rt__status_name(rt_g *g);

#endif
