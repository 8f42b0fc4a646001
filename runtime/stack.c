/*
 * stack.c — goroutine stacks: slots carved from large lazily-committed
 * arenas, hardware guard pages while the memory-map budget lasts, canary and
 * stack-pointer checks beyond it, and the overflow report on a sigaltstack.
 *
 * A slot is [guard page][stack ...][rt_g][canary]. The G lives at the top
 * of its own stack so that a parked goroutine touches one page. Slots are
 * never returned to the kernel while the runtime runs: dead G's keep their
 * slot and are reused through the free lists in sched.c.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef RT_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef RT_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define RT_VALGRIND 1
#endif

#define PAGE          4096
#define DEFAULT_STACK (64 * 1024)
#define MIN_STACK     (16 * 1024)
#define CHUNK_SLOTS   512                   /* slots per arena chunk */
#define MAPS_RESERVE  8192                  /* memory maps left for malloc, libraries, threads */
#define CANARY        0x6d6f6f6e73746b21ULL /* "moonstk!" */
#define ALTSTACK_SIZE (64 * 1024)

typedef struct chunk {
	struct chunk *next;
	char *base;
	size_t slot_size, nslots, used;
} chunk;

static struct {
	rt__lock_t lock;
	chunk *chunks; /* every chunk, for fini */
	chunk *shared; /* default-size slots for spawns without a P */
	size_t default_size;
	long guard_budget; /* guarded slots still allowed */
	bool budget_warned;
} st;

static size_t round_page(size_t n) {
	return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

size_t rt__stack_default(void) {
	return st.default_size;
}

static long read_map_count(void) {
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = 65530;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

void rt__stack_init(void) {
	size_t sz = rt__sched.cfg.stack_size;
	if (!sz) {
		const char *e = getenv("MOONSHIM_STACK_SIZE");
		sz = e ? strtoull(e, NULL, 0) : DEFAULT_STACK;
	}
	if (sz < MIN_STACK)
		sz = MIN_STACK;
	st.default_size = round_page(sz);
	st.guard_budget = (read_map_count() - MAPS_RESERVE) / 2;
	if (st.guard_budget < 0)
		st.guard_budget = 0;
	st.budget_warned = false;
	st.chunks = st.shared = NULL;
}

void rt__stack_fini(void) {
	for (rt_g *g = rt__sched.allgs; g; g = g->allnext) {
#ifdef RT_VALGRIND
		VALGRIND_STACK_DEREGISTER(g->valgrind_id);
#endif
#ifdef RT_TSAN
		if (g->tsan_fiber)
			__tsan_destroy_fiber(g->tsan_fiber);
#endif
	}
	for (chunk *c = st.chunks, *n; c; c = n) {
		n = c->next;
		munmap(c->base, c->slot_size * c->nslots);
		free(c);
	}
	st.chunks = st.shared = NULL; /* the P's (and their arena pointers) are gone */
}

static chunk *chunk_new(size_t slot_size, size_t nslots) {
	chunk *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	size_t len = slot_size * nslots;
	void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED) {
		free(c);
		return NULL;
	}
	madvise(base, len, MADV_NOHUGEPAGE);
	c->base = base;
	c->slot_size = slot_size;
	c->nslots = nslots;
	return c;
}

static void write_canary(char *slot, size_t size) {
	uint64_t *canary = (uint64_t *)(slot + size - 16);
	canary[0] = canary[1] = CANARY;
}

/* A P carves default-size slots from its own chunk, without a lock: the
 * slot below a new one was carved earlier by the same P, so its canary is
 * already there when the new goroutine is first checked. */
static char *slot_take_local(rt_p *p, size_t size, bool *first) {
	chunk *c = p->arena;
	if (!c || c->used == c->nslots) {
		c = chunk_new(size, CHUNK_SLOTS);
		if (!c)
			return NULL;
		rt__lock(&st.lock);
		c->next = st.chunks;
		st.chunks = c;
		rt__unlock(&st.lock);
		p->arena = c;
	}
	*first = c->used == 0;
	char *s = c->base + c->used++ * c->slot_size;
	write_canary(s, size);
	return s;
}

/* Take a fresh slot of `size` bytes; `first` says whether it is the lowest
 * in its arena (nothing below it to hold a canary). */
static char *slot_take(rt_p *p, size_t size, bool *first) {
	if (p && size == st.default_size)
		return slot_take_local(p, size, first);
	rt__lock(&st.lock);
	chunk *c = st.shared;
	if (size != st.default_size || !c || c->used == c->nslots) {
		c = chunk_new(size, size == st.default_size ? CHUNK_SLOTS : 1);
		if (!c) {
			rt__unlock(&st.lock);
			return NULL;
		}
		c->next = st.chunks;
		st.chunks = c;
		if (size == st.default_size)
			st.shared = c;
	}
	*first = c->used == 0;
	char *s = c->base + c->used++ * c->slot_size;
	/* the canary must exist before the slot above can be carved and
	 * checked by another thread, so write it under the lock */
	write_canary(s, size);
	rt__unlock(&st.lock);
	return s;
}

static bool guard_take(bool first) {
	/* The lowest slot of an arena always gets a real guard: it has no
	 * neighbour below to carry a canary. */
	long b = __atomic_sub_fetch(&st.guard_budget, 1, __ATOMIC_RELAXED);
	if (b >= 0 || first)
		return true;
	if (!st.budget_warned && rt__sched.debug_stacks) {
		st.budget_warned = true;
		rt__sched_debug_printf(
		    "moonshim: vm.max_map_count allows no more guard pages; "
		    "further goroutine stacks are checked by canary at each switch\n");
	}
	return false;
}

rt_g *rt__stack_new_g(rt_p *p, size_t size) {
	bool first;
	size = size ? round_page(size < MIN_STACK ? MIN_STACK : size) : st.default_size;
	char *slot = slot_take(p, size, &first);
	if (!slot)
		return NULL;
	bool guarded = guard_take(first);
	if (guarded && mprotect(slot, PAGE, PROT_NONE) != 0)
		guarded = false;
	uint64_t *canary = (uint64_t *)(slot + size - 16);
	size_t gsz = (sizeof(rt_g) + 63) & ~(size_t)63;
	rt_g *g = (rt_g *)((char *)canary - gsz);
	memset(g, 0, sizeof *g);
	g->slot = slot;
	g->slot_size = size;
	g->guarded = guarded;
#ifdef RT_VALGRIND
	g->valgrind_id = VALGRIND_STACK_REGISTER(slot + PAGE, (char *)g);
#endif
	return g;
}

/* Build the first frame of g so that switching to it enters
 * rt__g_trampoline with the G in a callee-saved register. */
void rt__stack_prepare(rt_g *g) {
	uintptr_t top = ((uintptr_t)g) & ~(uintptr_t)15;
#ifdef RT_TSAN
	/* A goroutine never returns from its first frame, so its fiber's shadow
	 * call stack keeps the dead frames: start each goroutine on a new one. */
	if (g->tsan_fiber)
		__tsan_destroy_fiber(g->tsan_fiber);
	g->tsan_fiber = __tsan_create_fiber(0);
#endif
#ifdef RT_ASAN
	/* dead frames of the previous goroutine leave red zones behind */
	__asan_unpoison_memory_region(g->slot + PAGE, top - (uintptr_t)(g->slot + PAGE));
#endif
#if defined(__x86_64__)
	uint64_t *sp = (uint64_t *)(top - 16 - 64);
	uint32_t *ctl = (uint32_t *)sp;
	ctl[0] = 0x1F80;                    /* MXCSR: all exceptions masked, round to nearest */
	ctl[1] = 0x037F;                    /* x87 CW: the same, extended precision */
	sp[1] = sp[2] = sp[3] = sp[4] = 0;  /* r15 r14 r13 r12 */
	sp[5] = (uint64_t)g;                /* rbx */
	sp[6] = 0;                          /* rbp */
	sp[7] = (uint64_t)rt__g_trampoline; /* ret */
	g->sp = sp;
#elif defined(__aarch64__)
	uint64_t *sp = (uint64_t *)(top - 160);
	memset(sp, 0, 160);
	sp[0] = (uint64_t)g;                 /* x19 */
	sp[11] = (uint64_t)rt__g_trampoline; /* x30 */
	g->sp = sp;
#else
#error "moonshim's runtime supports x86_64 and aarch64"
#endif
}

/* ─── Overflow detection ─────────────────────────────────────────────── */

static void put(int fd, const char *s) {
	ssize_t r = write(fd, s, strlen(s));
	(void)r;
}

static void put_u(int fd, uint64_t v) {
	char b[24], *p = b + sizeof b;
	*--p = 0;
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	put(fd, p);
}

static void report_overflow(rt_g *g, const char *how) {
	put(2, "moonshim: goroutine ");
	put_u(2, g->id);
	put(2, " \"");
	put(2, g->label ? g->label : "");
	put(2, "\" overflowed its stack (");
	put_u(2, (g->slot_size - PAGE) / 1024);
	put(2, " KiB, created at ");
	put(2, g->where ? g->where : "?");
	put(2, "): ");
	put(2, how);
	put(2, "\n");
}

void rt__stack_check_slow(rt_g *g) {
	if ((char *)g->sp < g->slot + PAGE || *(uint64_t *)(g->slot - 16) != CANARY) {
		report_overflow(g, "found at a context switch (no guard page)");
		abort();
	}
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
	(void)uc;
	rt_m *m = rt__getm();
	rt_g *g = m ? m->curg : NULL;
	char *a = si->si_addr;
	if (g && !g->is_g0 && a >= g->slot - PAGE && a < g->slot + PAGE)
		report_overflow(g, "hit the guard page");
	signal(sig, SIG_DFL); /* returning re-faults and dies with the default action */
}

void rt__stack_thread_init(rt_m *m) {
	m->altstack =
	    mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->altstack == MAP_FAILED) {
		m->altstack = NULL;
		return;
	}
	stack_t ss = {.ss_sp = m->altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
	sigaltstack(&ss, NULL);
	static int installed;
	if (!__atomic_exchange_n(&installed, 1, __ATOMIC_ACQ_REL)) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_segv;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
	}
}

void rt__stack_thread_fini(rt_m *m) {
	if (!m->altstack)
		return;
	stack_t ss = {.ss_flags = SS_DISABLE};
	sigaltstack(&ss, NULL);
	munmap(m->altstack, ALTSTACK_SIZE);
	m->altstack = NULL;
}
