/*
 * rt.h — moonshim's runtime: goroutines (G) on OS threads (M) on processors (P).
 *
 * ─── Design ──────────────────────────────────────────────────────────────────
 *
 * This is Go's scheduler (runtime/proc.go, "Scalable Go Scheduler Design",
 * Vyukov 2012) rebuilt in C for a container shim. Everything the shim does —
 * watching cgroup files, serving containerd, running Lua checks — is a
 * goroutine, so a slow or blocked piece of work parks one goroutine, never
 * the process.
 *
 *   G  a goroutine: a C function running on its own mmap'd stack, with a
 *      saved stack pointer, a state, a wait reason and a label for dumps.
 *   M  an OS thread. Each M has a "g0": the thread's own stack, where the
 *      scheduler loop runs when there is nothing to switch to directly.
 *   P  a processor token; an M must hold one to run goroutines. There are
 *      exactly rt_procs() of them. A P owns a 256-slot ring run queue, a
 *      `runnext` slot, a free list of dead G's (each keeps its stack), and
 *      a timer heap.
 *
 * Scheduling. A goroutine that stops (yield, park, exit) switches *directly*
 * to the next runnable G of its P — no trip through g0 — which is why a
 * yield costs one queue operation plus one register switch. Only when the P
 * has nothing local does the M fall back to g0 and run the find-runnable
 * loop: expired timers, the global queue (also checked every 61 schedule
 * ticks for fairness), the local ring, a non-blocking netpoll, then stealing
 * half of a random victim's ring. An M may only spin looking for work while
 * 2*nspinning < nprocs - nidle; a spinning M that finds work wakes another
 * (the chain rule), and one that gives up re-checks every queue after
 * dropping its spinning flag, so submitted work is never left with idle P's
 * (no lost wake-ups). Idle M's sleep on a futex; the last one blocks in
 * epoll until the next timer.
 *
 * With one P nobody can steal, so its run queue and the channels are used
 * without locked instructions; with more, they are Go's lock-free ring and
 * short spinlocks. Goroutines woken by a channel or lock run next (runnext);
 * goroutines woken by timers queue at the tail, so expiries run in deadline
 * order.
 *
 * Spawning is work-first: rt_go() switches to the new goroutine at once and
 * leaves the parent in `runnext`, where an idle P can steal it (Cilk's
 * policy). A tree of goroutines therefore runs depth-first on each P and
 * keeps few stacks alive, where Go's child-in-runnext policy runs it
 * breadth-first.
 *
 * Parking and the after-switch hook. A goroutine that parks (channel, mutex,
 * sleep, fd) publishes itself in a wait structure still holding that
 * structure's lock, and the lock is released *by whoever runs next on the
 * same M*, after the switch has saved the parked context. No waker can see
 * a half-switched goroutine. Timers for sleeps and deadlines are armed in
 * the same hook, before the lock drops (once it drops, a waker may resume
 * the goroutine, which must find its timer in the heap to cancel it).
 *
 * Stacks. A goroutine stack is one slot in a large MAP_NORESERVE arena
 * (MADV_NOHUGEPAGE): a guard page at the bottom, the stack, and the G
 * itself at the top, so a parked goroutine usually costs one 4 KiB page.
 * Each PROT_NONE guard splits the arena into two memory maps, and Linux
 * allows vm.max_map_count (65530) per process, so the first stacks get a
 * hardware guard (a hit is reported on a sigaltstack with the goroutine's
 * id and label) while the map budget lasts; later stacks keep that page as
 * plain, never-touched memory and are checked at every switch:
 * a canary at the top of the slot below and the saved stack pointer. A
 * process that wants every stack hardware-guarded raises vm.max_map_count;
 * MOONSHIM_DEBUG=stacks says when the budget runs out.
 *
 * Thread-locals and errno. A goroutine may resume on another M, and gcc
 * and clang may keep a TLS address (including errno's) in a register across
 * a call. The runtime reaches its per-M state only through non-inlined
 * accessors, and every API here returns -errno instead of setting errno:
 * never hold an errno value across a call that can park.
 *
 * Blocking. fds are made pollable and parked on the netpoller
 * (rt_poll_*); what cannot be polled runs on a bounded thread pool
 * (rt_blocking); for a call of unknown length, bracket it with
 * rt_syscall_enter/exit and sysmon hands the P to another M if it blocks
 * (Go's handoff), with a cap on M's and idle M's reclaimed after a while.
 *
 * sysmon is one thread without a P. It prints schedtrace lines, takes P's
 * from M's stuck in syscalls, polls the network when nobody has, reports
 * goroutines that run too long and asks the embedding code to preempt them
 * (the Lua engine arms a count hook); C code itself is never interrupted.
 *
 * Debugging. MOONSHIM_DEBUG=schedtrace=MS prints Go's own SCHED line on
 * stderr every MS milliseconds. SIGQUIT (unless disabled) prints a goroutine
 * dump and carries on. When the main goroutine returns, goroutines still
 * blocked are reported as leaks (id, label, wait reason, wait time, where
 * they were created), goleak-style.
 *
 * ─── Conventions ─────────────────────────────────────────────────────────────
 * Times are int64_t nanoseconds on CLOCK_MONOTONIC (rt_now()). A deadline is
 * an absolute time: RT_FOREVER never expires; any time <= rt_now() (e.g. 0)
 * means "do not wait". Functions that can fail return -errno.
 */
#ifndef MOONSHIM_RT_H
#define MOONSHIM_RT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RT_FOREVER INT64_MAX
/* Durations: the runtime's times are nanoseconds (int64_t). */
#define RT_MICROSECOND 1000LL
#define RT_MILLISECOND (1000 * RT_MICROSECOND)
#define RT_SECOND      (1000 * RT_MILLISECOND)
#define RT_MAX_PROCS   64 /* more P's than this make no sense for a shim */

/* ─── Start-up ─────────────────────────────────────────────────────────── */

typedef struct rt_config {
	int procs;            /* P's; 0: $MOONSHIM_PROCS, else 2 */
	size_t stack_size;    /* per goroutine incl. guard; 0: $MOONSHIM_STACK_SIZE, else 64 KiB */
	int max_threads;      /* cap on M's, 0: 64 */
	int blocking_threads; /* rt_blocking pool size, 0: 4 */
	int64_t idle_m_ns;    /* idle M's above `procs` exit after this, 0: 10 s */
	int64_t longrun_ns;   /* a goroutine running this long is asked to yield, 0: 10 ms */
	bool no_sigquit_dump; /* leave SIGQUIT alone (a shim that forwards it) */
	bool quiet_leaks;     /* do not print the leak report at exit */
} rt_config;

typedef int (*rt_main_fn)(void *arg);

/* Start the runtime, run main_fn(arg) as goroutine 1, and return its result
 * once it returns. Goroutines still alive then are abandoned (reported as
 * leaks, see rt_exit_leaks). The runtime can be started again afterwards.
 * Every thread it starts has the caller's signal mask: block a signal
 * before rt_main to read it from a signalfd. */
int rt_main(const rt_config *cfg, rt_main_fn main_fn, void *arg);
/* rt_main's answer when the runtime could not start (the netpoller's epoll
 * instance or wake-up eventfd: EMFILE, ENOMEM, ...): main_fn did not run,
 * errno says why. */
#define RT_MAIN_FAILED INT_MIN

/* Goroutines still blocked when the last rt_main's main goroutine returned. */
int rt_exit_leaks(void);

/* ─── Goroutines ───────────────────────────────────────────────────────── */

typedef void (*rt_fn)(void *arg);

#define RT__STR2(x) #x
#define RT__STR(x)  RT__STR2(x)
/* Spawn fn(arg) as a goroutine; `label` (a string that outlives it) names it
 * in dumps and leak reports. Returns the goroutine id. */
#define rt_go(fn, arg, label) rt_go_at((fn), (arg), (label), 0, __FILE__ ":" RT__STR(__LINE__))
/* The same with a stack size (0: the default), e.g. for a Lua world. */
#define rt_go_stack(fn, arg, label, stack_size)                                                    \
	rt_go_at((fn), (arg), (label), (stack_size), __FILE__ ":" RT__STR(__LINE__))
uint64_t rt_go_at(rt_fn fn, void *arg, const char *label, size_t stack_size, const char *where);

void rt_yield(void);
uint64_t rt_self(void); /* current goroutine id, 0 outside one */
const char *rt_self_label(void);
void rt_set_local(void *p); /* one pointer of goroutine-local storage */
void *rt_get_local(void);
int rt_procs(void);
int rt_goroutines(void); /* live goroutines */

/* ─── Time ─────────────────────────────────────────────────────────────── */

int64_t rt_now(void);
/* rt_now() to within a clock tick (a few ms, never ahead of it), for a
 * fraction of its cost: for times measured in seconds (idle expiry). */
int64_t rt_now_coarse(void);
/* now + ns, RT_FOREVER when that would overflow */
static inline int64_t rt_deadline_at(int64_t now, int64_t ns) {
	return ns >= RT_FOREVER - now ? RT_FOREVER : now + ns;
}
static inline int64_t rt_deadline_in(int64_t ns) {
	return rt_deadline_at(rt_now(), ns);
}
void rt_sleep(int64_t ns);
void rt_sleep_until(int64_t deadline);

/* ─── Channels and select (Go semantics) ───────────────────────────────── */

typedef struct rt_chan rt_chan;
rt_chan *rt_chan_new(size_t elem_size, size_t cap); /* NULL on ENOMEM */
void rt_chan_free(rt_chan *c);                      /* no goroutine may be waiting on it */
void rt_chan_send(rt_chan *c, const void *elem);    /* aborts on a closed channel, like Go */
bool rt_chan_recv(rt_chan *c, void *elem);          /* false: closed and drained (elem zeroed) */
void rt_chan_close(rt_chan *c);                     /* aborts if already closed */
size_t rt_chan_len(rt_chan *c);
size_t rt_chan_cap(rt_chan *c);

enum { RT_RECV = 0, RT_SEND = 1 };
typedef struct rt_case {
	rt_chan *c; /* NULL: never ready */
	int dir;    /* RT_RECV or RT_SEND */
	void *elem; /* value to send, or where to receive (may be NULL) */
	bool ok;    /* receive: false if the channel was closed */
} rt_case;
/* Wait until one case can proceed and do it; among several ready cases one
 * is chosen at random. Returns its index, or -ETIMEDOUT when the deadline
 * passes first (deadline 0 = Go's `default:`). */
int rt_select(rt_case *cases, int n, int64_t deadline);

/* ─── Timers and tickers (deliver the fire time, int64_t, on .c) ───────── */

typedef struct rt_timer rt_timer;
rt_timer *rt_timer_new(int64_t ns, int64_t period); /* period 0: one shot */
rt_chan *rt_timer_chan(rt_timer *t);                /* capacity 1; a tick is dropped if full */
bool rt_timer_stop(rt_timer *t);                    /* true if it was still pending */
void rt_timer_reset(rt_timer *t, int64_t ns);
void rt_timer_free(rt_timer *t); /* stops it first */

/* ─── Sync ─────────────────────────────────────────────────────────────── */

typedef struct rt_mutex {
	uint32_t state; /* 0 free, 1 locked, 2 locked with waiters */
	uint32_t lk;    /* guards the wait list */
	void *head, *tail;
} rt_mutex;
#define RT_MUTEX_INIT                                                                              \
	{ 0, 0, 0, 0 }
void rt_mutex_lock(rt_mutex *m);
bool rt_mutex_trylock(rt_mutex *m);
void rt_mutex_unlock(rt_mutex *m);

typedef struct rt_waitgroup {
	uint64_t state; /* count << 32 | parked waiters, one atomic word (as Go's) */
	uint32_t lk;
	void *head, *tail;
} rt_waitgroup;
#define RT_WAITGROUP_INIT                                                                          \
	{ 0, 0, 0, 0 }
void rt_wg_add(rt_waitgroup *wg, int64_t n); /* aborts if the count goes negative */
void rt_wg_done(rt_waitgroup *wg);
void rt_wg_wait(rt_waitgroup *wg);

typedef struct rt_once {
	uint32_t done;
	rt_mutex mu;
} rt_once;
#define RT_ONCE_INIT                                                                               \
	{ 0, RT_MUTEX_INIT }
void rt_once_do(rt_once *o, rt_fn fn, void *arg);

/* ─── Netpoller ────────────────────────────────────────────────────────── */

enum { RT_POLL_READ = 1, RT_POLL_WRITE = 2, RT_POLL_PRI = 4 };
typedef struct rt_pollfd rt_pollfd;
/* Register fd (set O_NONBLOCK yourself for read/write). NULL on error with
 * *err = -errno. */
rt_pollfd *rt_poll_open(int fd, int *err);
int rt_poll_fd(rt_pollfd *pd);
/* Wake every waiter with -ECANCELED, deregister and free pd. Call it before
 * close(fd): epoll knows fds by number, and a number reused by a new file
 * would be deregistered instead. */
void rt_poll_close(rt_pollfd *pd);
/* Wake every waiter with -ECANCELED and fail later waits the same way, but
 * leave pd registered: the goroutine that owns pd closes it (Go's evict).
 * This is how another goroutine stops one parked on pd. */
void rt_poll_evict(rt_pollfd *pd);
/* Park until one of `modes` is ready: 0, -ETIMEDOUT, -ECANCELED. */
int rt_poll_wait(rt_pollfd *pd, int modes, int64_t deadline);
/* Has an edge of `mode` (one of RT_POLL_*) been seen with nobody waiting
 * since a wait last took one? Says so and forgets it. False does not
 * prove the fd quiet: an event the kernel queued may not have been polled
 * yet (the netpoller runs when an M looks for work, sysmon at the latest
 * every 10 ms). */
bool rt_poll_take_edge(rt_pollfd *pd, int mode);
/* Has the netpoller seen the peer hang up or the fd fail (EPOLLRDHUP,
 * EPOLLHUP, EPOLLERR) since rt_poll_open? Sticky; with the same caveat. */
bool rt_poll_hup(rt_pollfd *pd);
ssize_t rt_read(rt_pollfd *pd, void *buf, size_t n, int64_t deadline);
ssize_t rt_write(rt_pollfd *pd, const void *buf, size_t n, int64_t deadline); /* all of it */
int rt_accept(rt_pollfd *pd, struct sockaddr *addr, socklen_t *len, int flags, int64_t deadline);
int rt_connect(rt_pollfd *pd, const struct sockaddr *addr, socklen_t len, int64_t deadline);
ssize_t rt_recvmsg(rt_pollfd *pd, struct msghdr *msg, int flags, int64_t deadline);
ssize_t rt_sendmsg(rt_pollfd *pd, const struct msghdr *msg, int flags, int64_t deadline);

/* ─── Blocking work ────────────────────────────────────────────────────── */

/* Run fn(arg) on the bounded blocking pool and park until it returns. fn
 * runs on a plain thread: it must not call rt_ functions. */
intptr_t rt_blocking(intptr_t (*fn)(void *arg), void *arg);
/* Around a call that may block for long: if it does, sysmon hands this P
 * to another M, and rt_syscall_exit gets a P back (or queues the goroutine).
 * Call no rt_ function in between: the thread may no longer own a P. */
void rt_syscall_enter(void);
void rt_syscall_exit(void);

/* ─── sysmon hooks ─────────────────────────────────────────────────────── */

/* Called on the sysmon thread when goroutine `id` (local = its rt_set_local
 * pointer) has run longer than longrun_ns without yielding. It must only set
 * flags (e.g. lua_sethook); the goroutine then yields by itself. */
typedef void (*rt_preempt_hook)(uint64_t id, void *local, void *hook_arg);
void rt_set_preempt_hook(rt_preempt_hook hook, void *hook_arg);
bool rt_preempt_requested(void); /* for the current goroutine; rt_yield clears it */

/* ─── Introspection ────────────────────────────────────────────────────── */

typedef struct rt_sched_sample {
	int64_t uptime_ms;
	int gomaxprocs, idleprocs, threads, spinningthreads, needspinning, idlethreads;
	int runqueue;           /* global queue */
	int runq[RT_MAX_PROCS]; /* per-P ring length (runnext excluded, as Go) */
} rt_sched_sample;
void rt_sched_sample_get(rt_sched_sample *s);
/* Go's line: "SCHED 0ms: gomaxprocs=2 idleprocs=1 ... runqueue=0 [0 0]". */
int rt_sched_format(const rt_sched_sample *s, char *buf, size_t n);

typedef struct rt_counters {
	uint64_t goroutines_created, goroutines_exited, switches;
	uint64_t steals, steal_attempts, stolen; /* successful steals, tries, G's moved */
	uint64_t wakeups, wakeups_found_work;    /* M's woken by wakep, and those that ran work */
	uint64_t parks, spins, spins_found_work; /* M parks on the futex, spinning rounds */
	uint64_t netpolls, timers_fired, handoffs, longruns, threads_created, threads_reclaimed;
	/* overdue timers (by 2 ms, with a P idle) no M was set to wake for: a
	 * lost wake-up, which sysmon's safety net recovers (stays 0) */
	uint64_t timer_rescues;
	/* overdue timers some M was set to see (the poller due or told to
	 * wake, an M on its way to the timers): its thread was late to get a
	 * CPU on a loaded machine; nothing was lost */
	uint64_t timer_late_polls;
} rt_counters;
void rt_counters_get(rt_counters *c);

/* Goroutine dump: "goroutine 7 [chan receive, 1203 ms]: \"label\" created by
 * goroutine 1 at file.c:12", one per live goroutine. */
void rt_dump(int fd);
/* Write the goroutines other than the caller that are blocked right now,
 * goleak-style; returns how many. */
int rt_leak_report(int fd);
/* One live goroutine as a snapshot saw it, for a program's own leak
 * detection (the strings are static: rt_go's label and call site, the
 * runtime's state names). */
typedef struct rt_ginfo {
	uint64_t id;
	const char *label; /* rt_go's label ("" when none) */
	const char *where; /* "file.c:LINE" of the rt_go that made it */
	const char *state; /* "running", "runnable", "syscall", or why it waits: Go's
	                      names ("chan receive", "select", "sync.Mutex.Lock", ...) */
	bool waiting;
	int64_t wait_ns; /* parked this long (waiting only) */
} rt_ginfo;
/* Up to max live goroutines into out; returns how many are live (more than
 * max when out was too short). */
int rt_goroutine_info(rt_ginfo *out, int max);

#ifdef __cplusplus
}
#endif
#endif
