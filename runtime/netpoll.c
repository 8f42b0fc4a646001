/*
 * netpoll.c — the epoll netpoller: fds registered once, edge-triggered, for
 * read, write and priority (EPOLLPRI: cgroup.events, PSI triggers); a
 * goroutine parks on an rt_pollfd until its mode is ready or its deadline
 * passes. The scheduler calls rt__netpoll() from find-runnable (non-blocking)
 * and from the last idle M (blocking until the next timer).
 *
 * Wake-ups (rt__netpoll_break) go through an eventfd registered
 * level-triggered, and only a blocking poll reads it (as Go's netpollBreak):
 * a non-blocking poll (find-runnable's, sysmon's) that raced with an M
 * entering a blocking poll must not eat the wake-up meant for that M, or
 * the M sleeps through an earlier timer (or, with no timer, forever).
 *
 * Stale events: epoll data carries the pollfd pointer tagged with its
 * generation in the low bits, and pollfds are recycled, never freed, while
 * the runtime runs, so an event for a closed fd is recognised and dropped.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define S               rt__sched
#define NMODES          3   /* read, write, pri */
#define EVENTS_PER_POLL 128 /* as Go */
#define TAG_MASK        63  /* pollfds are 64-byte aligned */
#define BREAK_TAG       1   /* epoll data of the wake-up eventfd */

int rt__errno(void);

struct rt_pollfd {
	int fd;
	rt__lock_t lock;
	uint32_t gen; /* bumped at close; tags epoll data */
	bool closing;
	bool ready[NMODES]; /* an edge arrived with nobody waiting */
	bool hup;           /* sticky: EPOLLRDHUP, EPOLLHUP or EPOLLERR was seen */
	rt_g *waiter[NMODES];
	uint64_t wgen[NMODES];
	rt_pollfd *next_free;
} __attribute__((aligned(64)));

static struct {
	int epfd, evfd;
	int waiters;            /* atomic: goroutines parked on fds */
	uint32_t break_pending; /* atomic: de-duplicates eventfd writes */
	rt__lock_t lock;        /* free list */
	rt_pollfd *free;
	rt_pollfd **all; /* every pollfd allocated, for fini */
	size_t nall, capall;
	bool no_pwait2;
	uint64_t registrations; /* atomic: orders a pollfd's set-up before its events */
} np;

int rt__netpoll_init(void) {
	memset(&np, 0, sizeof np);
	np.epfd = epoll_create1(EPOLL_CLOEXEC);
	np.evfd = np.epfd < 0 ? -1 : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = BREAK_TAG};
	if (np.evfd < 0 || epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.evfd, &ev) < 0) {
		/* without the wake-up eventfd an idle M could sleep through work */
		int e = errno;
		if (np.epfd >= 0)
			close(np.epfd);
		if (np.evfd >= 0)
			close(np.evfd);
		memset(&np, 0, sizeof np);
		return -e;
	}
	return 0;
}

void rt__netpoll_fini(void) {
	close(np.epfd);
	close(np.evfd);
	for (size_t i = 0; i < np.nall; i++)
		free(np.all[i]);
	free(np.all);
	memset(&np, 0, sizeof np);
}

bool rt__netpoll_waiters(void) {
	return arl(&np.waiters) > 0;
}

bool rt__netpoll_break_pending(void) {
	return ald(&np.break_pending) != 0;
}

void rt__netpoll_break(void) {
	if (axchg(&np.break_pending, 1))
		return;
	uint64_t one = 1;
	ssize_t r = write(np.evfd, &one, sizeof one);
	(void)r;
}

static int mode_index(int mode) {
	return mode == RT_POLL_READ ? 0 : mode == RT_POLL_WRITE ? 1 : 2;
}

/* Wake the waiter of mode i or remember the edge. pd->lock held. */
static void pd_fire(rt_pollfd *pd, int i, int64_t result, rt_g **list) {
	rt_g *g = pd->waiter[i];
	if (g) {
		pd->waiter[i] = NULL;
		if (rt__claim(g, pd->wgen[i])) {
			g->result = result;
			g->schedlink = *list;
			*list = g;
			return;
		}
	}
	pd->ready[i] = true;
}

static int epoll_wait_ns(struct epoll_event *evs, int64_t delay) {
	if (delay < 0)
		return epoll_wait(np.epfd, evs, EVENTS_PER_POLL, -1);
	if (!np.no_pwait2) {
		struct timespec ts = {.tv_sec = delay / 1000000000, .tv_nsec = delay % 1000000000};
		int n = (int)syscall(SYS_epoll_pwait2, np.epfd, evs, EVENTS_PER_POLL, &ts, NULL, 0);
		if (n >= 0 || rt__errno() != ENOSYS)
			return n;
		np.no_pwait2 = true; /* old kernel or qemu-user: millisecond timeouts */
	}
	int64_t ms = (delay + 999999) / 1000000;
	return epoll_wait(np.epfd, evs, EVENTS_PER_POLL, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

/* poller: the M that set S.lastpoll to 0 (it takes the wake-ups, even
 * with a zero delay); everyone else polls with delay 0. A break it takes
 * stays pending until rt__netpoll_break_taken: until the poller counts as
 * looking at the timers again, sysmon must see that it was told to wake. */
static rt_g *netpoll(int64_t delay, bool poller, bool *took_break) {
	struct epoll_event evs[EVENTS_PER_POLL];
	int n = epoll_wait_ns(evs, delay);
	(void)__atomic_load_n(&np.registrations, __ATOMIC_ACQUIRE);
	rt_g *list = NULL;
	for (int i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;
		if (d == BREAK_TAG) {
			if (!poller)
				continue; /* the blocking poller's (see the top) */
			uint64_t v;
			ssize_t r = read(np.evfd, &v, sizeof v);
			(void)r;
			*took_break = true;
			continue;
		}
		rt_pollfd *pd = (rt_pollfd *)(uintptr_t)(d & ~(uint64_t)TAG_MASK);
		uint32_t ev = evs[i].events;
		rt__lock(&pd->lock);
		if ((pd->gen & TAG_MASK) == (d & TAG_MASK) && !pd->closing) {
			if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				pd->hup = true;
			if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				pd_fire(pd, 0, 0, &list);
			if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				pd_fire(pd, 1, 0, &list);
			if (ev & (EPOLLPRI | EPOLLERR))
				pd_fire(pd, 2, 0, &list);
		}
		rt__unlock(&pd->lock);
	}
	__atomic_fetch_add(&S.cnt.netpolls, 1, __ATOMIC_RELAXED);
	return list;
}

rt_g *rt__netpoll(int64_t delay) {
	bool took = false;
	return netpoll(delay, false, &took);
}

rt_g *rt__netpoll_poller(int64_t delay, bool *took_break) {
	*took_break = false;
	return netpoll(delay, true, took_break);
}

void rt__netpoll_break_taken(void) {
	ast(&np.break_pending, 0);
}

/* ─── pollfd life ────────────────────────────────────────────────────── */

static rt_pollfd *pd_alloc(void) {
	rt__lock(&np.lock);
	rt_pollfd *pd = np.free;
	if (pd) {
		np.free = pd->next_free;
		rt__unlock(&np.lock);
		return pd;
	}
	if (np.nall == np.capall) {
		size_t cap = np.capall ? np.capall * 2 : 64;
		rt_pollfd **a = realloc(np.all, cap * sizeof *a);
		if (!a) {
			rt__unlock(&np.lock);
			return NULL;
		}
		np.all = a;
		np.capall = cap;
	}
	pd = aligned_alloc(64, sizeof *pd);
	if (pd) {
		memset(pd, 0, sizeof *pd);
		np.all[np.nall++] = pd;
	}
	rt__unlock(&np.lock);
	return pd;
}

rt_pollfd *rt_poll_open(int fd, int *err) {
	rt_pollfd *pd = pd_alloc();
	if (!pd) {
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	rt__lock(&pd->lock);
	pd->fd = fd;
	pd->closing = false;
	pd->hup = false;
	for (int i = 0; i < NMODES; i++) {
		pd->ready[i] = false;
		pd->waiter[i] = NULL;
	}
	uint32_t gen = pd->gen;
	rt__unlock(&pd->lock);
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
	    .data.u64 = (uint64_t)(uintptr_t)pd | (gen & TAG_MASK),
	};
	/* the raw epoll_pwait2 syscall hides the kernel's ordering from TSan:
	 * a release here and an acquire after each wait make it visible */
	__atomic_add_fetch(&np.registrations, 1, __ATOMIC_RELEASE);
	if (epoll_ctl(np.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		int e = rt__errno();
		rt__lock(&np.lock);
		pd->next_free = np.free;
		np.free = pd;
		rt__unlock(&np.lock);
		if (err)
			*err = -e;
		return NULL;
	}
	return pd;
}

int rt_poll_fd(rt_pollfd *pd) {
	return pd->fd;
}

/* Mark pd closing and wake its waiters with -ECANCELED. */
static void pd_evict(rt_pollfd *pd) {
	rt_g *list = NULL;
	rt__lock(&pd->lock);
	pd->closing = true;
	pd->gen++;
	for (int i = 0; i < NMODES; i++)
		if (pd->waiter[i])
			pd_fire(pd, i, -ECANCELED, &list);
	rt__unlock(&pd->lock);
	while (list) {
		rt_g *g = list;
		list = g->schedlink;
		rt__ready(g);
	}
}

void rt_poll_evict(rt_pollfd *pd) {
	if (pd)
		pd_evict(pd);
}

void rt_poll_close(rt_pollfd *pd) {
	if (!pd)
		return;
	epoll_ctl(np.epfd, EPOLL_CTL_DEL, pd->fd, NULL);
	pd_evict(pd);
	rt__lock(&np.lock);
	pd->next_free = np.free;
	np.free = pd;
	rt__unlock(&np.lock);
}

/* ─── Waiting ────────────────────────────────────────────────────────── */

bool rt_poll_take_edge(rt_pollfd *pd, int mode) {
	int i = mode_index(mode);
	rt__lock(&pd->lock);
	bool edge = pd->ready[i];
	pd->ready[i] = false;
	rt__unlock(&pd->lock);
	return edge;
}

bool rt_poll_hup(rt_pollfd *pd) {
	rt__lock(&pd->lock);
	bool hup = pd->hup;
	rt__unlock(&pd->lock);
	return hup;
}

typedef struct {
	rt_pollfd *pd;
	rt__timer timer;
	bool has_timer;
} poll_wait;

static void poll_timeout(void *arg, uint64_t gen) {
	rt_g *g = arg;
	if (rt__claim(g, gen)) {
		g->result = -ETIMEDOUT;
		rt__ready_timer(g);
	}
}

static void fin_poll(rt_m *m, rt_g *prev, void *arg) {
	(void)prev;
	poll_wait *w = arg;
	if (w->has_timer) /* before the unlock: see fin_select in chan.c */
		rt__timer_add(&w->timer, w->timer.when);
	rt__unlock(&w->pd->lock);
}

int rt_poll_wait(rt_pollfd *pd, int modes, int64_t deadline) {
	rt_g *g = rt__getg();
	rt__lock(&pd->lock);
	if (pd->closing) {
		rt__unlock(&pd->lock);
		return -ECANCELED;
	}
	for (int m = RT_POLL_READ; m <= RT_POLL_PRI; m <<= 1)
		if ((modes & m) && pd->ready[mode_index(m)]) {
			pd->ready[mode_index(m)] = false;
			rt__unlock(&pd->lock);
			return 0;
		}
	if (deadline != RT_FOREVER && deadline <= rt__nanotime()) {
		rt__unlock(&pd->lock);
		return -ETIMEDOUT;
	}
	uint64_t gen = g->park_gen + 1;
	for (int m = RT_POLL_READ; m <= RT_POLL_PRI; m <<= 1)
		if (modes & m) {
			int i = mode_index(m);
			if (pd->waiter[i]) {
				rt__unlock(&pd->lock);
				return -EBUSY; /* one waiter per direction, as Go */
			}
		}
	for (int m = RT_POLL_READ; m <= RT_POLL_PRI; m <<= 1)
		if (modes & m) {
			pd->waiter[mode_index(m)] = g;
			pd->wgen[mode_index(m)] = gen;
		}
	poll_wait w = {.pd = pd, .has_timer = deadline != RT_FOREVER};
	w.timer =
	    (rt__timer){.when = deadline, .fn = poll_timeout, .arg = g, .seq = gen, .idx = -1};
	g->result = 0;
	__atomic_add_fetch(&np.waiters, 1, __ATOMIC_SEQ_CST);
	rt__park(fin_poll, &w, "IO wait");
	__atomic_sub_fetch(&np.waiters, 1, __ATOMIC_SEQ_CST);
	if (w.has_timer)
		rt__timer_del(&w.timer);
	int res = (int)g->result;
	rt__lock(&pd->lock);
	for (int i = 0; i < NMODES; i++)
		if (pd->waiter[i] == g && pd->wgen[i] == gen)
			pd->waiter[i] = NULL;
	rt__unlock(&pd->lock);
	return res;
}
