/*
 * blocking.c — a bounded thread pool for calls that cannot be made
 * non-blocking (regular-file I/O, getaddrinfo, mount). The calling
 * goroutine parks; its job is queued only after it has switched out, and
 * the pool thread readies it when the call returns. Threads start on demand
 * up to the configured size and exit after idling (unlike Go's M's, which
 * are never given back).
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S                rt__sched
#define DEFAULT_POOL     4
#define POOL_THREADS_MAX 256

typedef struct job {
	intptr_t (*fn)(void *);
	void *arg;
	intptr_t result;
	rt_g *g;
	struct job *next;
} job;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *head, *tail;
	int size; /* cap on threads */
	int threads, idle;
	bool stop;
	pthread_t tids[POOL_THREADS_MAX];
	bool joinable[POOL_THREADS_MAX];
} bp;

static void *pool_main(void *arg) {
	int slot = (int)(intptr_t)arg;
	pthread_mutex_lock(&bp.mu);
	for (;;) {
		while (!bp.head && !bp.stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns = S.cfg.idle_m_ns;
			ts.tv_sec += ns / 1000000000;
			ts.tv_nsec += ns % 1000000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			bp.idle++;
			int r = pthread_cond_timedwait(&bp.cv, &bp.mu, &ts);
			bp.idle--;
			if (r == ETIMEDOUT && !bp.head)
				goto out; /* idle long enough: give the thread back */
		}
		if (!bp.head)
			break; /* stopping with nothing queued */
		job *j = bp.head;
		bp.head = j->next;
		if (!bp.head)
			bp.tail = NULL;
		pthread_mutex_unlock(&bp.mu);
		j->result = j->fn(j->arg);
		rt_g *g = j->g; /* j lives on g's stack: last touch */
		rt__ready(g);
		pthread_mutex_lock(&bp.mu);
	}
out:
	bp.threads--;
	__atomic_sub_fetch(&S.pool_threads, 1, __ATOMIC_RELAXED);
	(void)slot;
	pthread_mutex_unlock(&bp.mu);
	return NULL;
}

void rt__blocking_init(void) {
	pthread_mutex_init(&bp.mu, NULL);
	pthread_cond_init(&bp.cv, NULL);
	bp.head = bp.tail = NULL;
	bp.threads = bp.idle = 0;
	bp.stop = false;
	bp.size = S.cfg.blocking_threads > 0 ? S.cfg.blocking_threads : DEFAULT_POOL;
	if (bp.size > POOL_THREADS_MAX)
		bp.size = POOL_THREADS_MAX;
	memset(bp.joinable, 0, sizeof bp.joinable);
}

void rt__blocking_fini(void) {
	pthread_mutex_lock(&bp.mu);
	bp.stop = true;
	pthread_cond_broadcast(&bp.cv);
	pthread_mutex_unlock(&bp.mu);
	for (int i = 0; i < POOL_THREADS_MAX; i++)
		if (bp.joinable[i])
			pthread_join(bp.tids[i], NULL);
	memset(bp.joinable, 0, sizeof bp.joinable);
	pthread_cond_destroy(&bp.cv);
	pthread_mutex_destroy(&bp.mu);
}

/* Start a thread if every one is busy and the cap allows. bp.mu held. */
static void pool_grow(void) {
	if (bp.idle > 0 || bp.threads >= bp.size)
		return;
	for (int i = 0; i < POOL_THREADS_MAX; i++) {
		if (bp.joinable[i]) {
			/* reuse the slot of a thread that idled out */
			if (pthread_tryjoin_np(bp.tids[i], NULL) != 0)
				continue;
			bp.joinable[i] = false;
		}
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		int e = pthread_create(&bp.tids[i], NULL, pool_main, (void *)(intptr_t)i);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (e == 0) {
			bp.joinable[i] = true;
			bp.threads++;
			__atomic_add_fetch(&S.pool_threads, 1, __ATOMIC_RELAXED);
		}
		return;
	}
}

static void fin_submit(rt_m *m, rt_g *prev, void *arg) {
	(void)prev;
	job *j = arg;
	pthread_mutex_lock(&bp.mu);
	if (bp.tail)
		bp.tail->next = j;
	else
		bp.head = j;
	bp.tail = j;
	pool_grow();
	pthread_cond_signal(&bp.cv);
	pthread_mutex_unlock(&bp.mu);
}

intptr_t rt_blocking(intptr_t (*fn)(void *arg), void *arg) {
	job j = {.fn = fn, .arg = arg, .g = rt__getg()};
	rt__park(fin_submit, &j, "blocking call");
	return j.result;
}
