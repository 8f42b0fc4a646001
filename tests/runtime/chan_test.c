/* chan_test.c — channels and select behave as Go's: many producers and
 * consumers lose and duplicate nothing, close wakes everyone, select is
 * fair and honours default and timeouts. */
#include "harness.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>

/* ─── many producers, many consumers ─────────────────────────────────── */

#define PRODUCERS 8
#define CONSUMERS 8

typedef struct {
	rt_chan *c;
	long per;
	int id;
	uint64_t sum;
	long count;
	rt_waitgroup *wg;
} mpmc_arg;

static void producer(void *a) {
	mpmc_arg *m = a;
	for (long i = 0; i < m->per; i++) {
		int64_t v = (int64_t)m->id * 1000000000LL + i;
		rt_chan_send(m->c, &v);
	}
	rt_wg_done(m->wg);
}

static void consumer(void *a) {
	mpmc_arg *m = a;
	int64_t v;
	while (rt_chan_recv(m->c, &v)) {
		m->sum += (uint64_t)v;
		m->count++;
	}
	rt_wg_done(m->wg);
}

static int mpmc(size_t cap) {
	rt_chan *c = rt_chan_new(sizeof(int64_t), cap);
	rt_waitgroup pw = RT_WAITGROUP_INIT, cw = RT_WAITGROUP_INIT;
	mpmc_arg p[PRODUCERS], q[CONSUMERS];
	long per = scaled(20000);
	uint64_t want = 0;
	rt_wg_add(&pw, PRODUCERS);
	rt_wg_add(&cw, CONSUMERS);
	for (int i = 0; i < CONSUMERS; i++) {
		q[i] = (mpmc_arg){.c = c, .wg = &cw};
		rt_go(consumer, &q[i], "consumer");
	}
	for (int i = 0; i < PRODUCERS; i++) {
		p[i] = (mpmc_arg){.c = c, .per = per, .id = i, .wg = &pw};
		for (long k = 0; k < per; k++)
			want += (uint64_t)i * 1000000000ULL + (uint64_t)k;
		rt_go(producer, &p[i], "producer");
	}
	rt_wg_wait(&pw);
	rt_chan_close(c);
	rt_wg_wait(&cw);
	uint64_t sum = 0;
	long count = 0;
	for (int i = 0; i < CONSUMERS; i++)
		sum += q[i].sum, count += q[i].count;
	CHECKF(count == per * PRODUCERS, "count %ld", count);
	CHECK(sum == want);
	rt_chan_free(c);
	return 0;
}

static int mpmc_unbuffered(void *a) {
	return mpmc(0);
}
static int mpmc_buffered(void *a) {
	return mpmc(16);
}
TEST(chan_many_producers_consumers_unbuffered) {
	run_rt(2, mpmc_unbuffered, NULL);
}
TEST(chan_many_producers_consumers_buffered) {
	run_rt(2, mpmc_buffered, NULL);
}

/* ─── close semantics ────────────────────────────────────────────────── */

static void blocked_recv(void *a) {
	rt_chan *c = a;
	int64_t v = 42;
	bool ok = rt_chan_recv(c, &v);
	CHECK(!ok && v == 0); /* closed: zero value, ok false */
}

static int close_main(void *a) {
	rt_chan *c = rt_chan_new(sizeof(int64_t), 2);
	int64_t v = 7;
	rt_chan_send(c, &v);
	v = 8;
	rt_chan_send(c, &v);
	rt_chan_close(c);
	/* buffered values survive close, then zero values with ok=false */
	CHECK(rt_chan_recv(c, &v) && v == 7);
	CHECK(rt_chan_recv(c, &v) && v == 8);
	CHECK(!rt_chan_recv(c, &v) && v == 0);
	CHECK(!rt_chan_recv(c, NULL));
	rt_chan_free(c);

	rt_chan *u = rt_chan_new(sizeof(int64_t), 0);
	for (int i = 0; i < 5; i++)
		rt_go(blocked_recv, u, "blocked-recv");
	rt_sleep(2000000);
	rt_chan_close(u); /* wakes all five */
	for (int i = 0; i < 100 && rt_goroutines() > 1; i++)
		rt_sleep(1000000);
	CHECK(rt_goroutines() == 1);
	rt_chan_free(u);
	return 0;
}
TEST(chan_close_semantics) {
	run_rt(2, close_main, NULL);
}

/* Go panics on these; so do we: the child process must abort with a message. */
static int send_closed_main(void *a) {
	rt_chan *c = rt_chan_new(sizeof(int), 1);
	rt_chan_close(c);
	int v = 1;
	rt_chan_send(c, &v);
	return 0;
}
static int close_closed_main(void *a) {
	rt_chan *c = rt_chan_new(sizeof(int), 1);
	rt_chan_close(c);
	rt_chan_close(c);
	return 0;
}

static void expect_panic(int (*fn)(void *), const char *msg) {
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 2);
		rt_config cfg = {.procs = 1, .quiet_leaks = true};
		rt_main(&cfg, fn, NULL);
		_exit(0);
	}
	close(pfd[1]);
	char buf[4096] = {0};
	size_t n = 0;
	ssize_t r;
	while (n < sizeof buf - 1 && (r = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)r;
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d", st);
	CHECKF(strstr(buf, msg) != NULL, "stderr: %s", buf);
}

TEST(chan_send_on_closed_panics) {
	expect_panic(send_closed_main, "send on closed channel");
}
TEST(chan_close_of_closed_panics) {
	expect_panic(close_closed_main, "close of closed channel");
}

/* ─── select ─────────────────────────────────────────────────────────── */

static int select_fair_main(void *a) {
	rt_chan *c1 = rt_chan_new(sizeof(int), 1), *c2 = rt_chan_new(sizeof(int), 1);
	int hits[2] = {0, 0}, one = 1, v;
	long n = scaled(20000);
	for (long i = 0; i < n; i++) {
		rt_chan_send(c1, &one);
		rt_chan_send(c2, &one);
		rt_case cs[2] = {{.c = c1, .dir = RT_RECV, .elem = &v},
		                 {.c = c2, .dir = RT_RECV, .elem = &v}};
		int k = rt_select(cs, 2, RT_FOREVER);
		CHECK(k == 0 || k == 1);
		hits[k]++;
		rt_chan_recv(k == 0 ? c2 : c1, &v); /* drain the other */
	}
	/* both ready every time: the choice must be close to 50/50 */
	CHECKF(hits[0] > n * 45 / 100 && hits[1] > n * 45 / 100, "%d %d", hits[0], hits[1]);
	rt_chan_free(c1);
	rt_chan_free(c2);
	return 0;
}
TEST(select_fairness) {
	run_rt(1, select_fair_main, NULL);
}

static void delayed_send(void *a) {
	rt_sleep(20000000);
	int v = 5;
	rt_chan_send(a, &v);
}

static int select_default_timeout_main(void *a) {
	rt_chan *c = rt_chan_new(sizeof(int), 0);
	int v = 0;
	rt_case rc = {.c = c, .dir = RT_RECV, .elem = &v};
	CHECK(rt_select(&rc, 1, 0) == -ETIMEDOUT); /* default: nothing ready */
	int64_t t0 = rt_now();
	CHECK(rt_select(&rc, 1, rt_deadline_in(30000000)) == -ETIMEDOUT);
	int64_t took = rt_now() - t0;
	CHECKF(took >= 30000000, "took %lld ns", (long long)took);
	if (scaled(100) == 100)
		CHECKF(took < 300000000, "took %lld ns", (long long)took);
	/* a send that arrives before the deadline wins */
	rt_go(delayed_send, c, "delayed-send");
	CHECK(rt_select(&rc, 1, rt_deadline_in(2000000000LL)) == 0 && v == 5 && rc.ok);
	/* nil channels never fire; send cases work too */
	rt_chan *b = rt_chan_new(sizeof(int), 1);
	int w = 9;
	rt_case cs[2] = {{.c = NULL, .dir = RT_RECV, .elem = &v},
	                 {.c = b, .dir = RT_SEND, .elem = &w}};
	CHECK(rt_select(cs, 2, RT_FOREVER) == 1);
	CHECK(rt_chan_len(b) == 1 && rt_chan_recv(b, &v) && v == 9);
	/* a closed channel is ready with ok=false */
	rt_chan_close(b);
	rt_case cc = {.c = b, .dir = RT_RECV, .elem = &v};
	CHECK(rt_select(&cc, 1, RT_FOREVER) == 0 && !cc.ok);
	rt_chan_free(b);
	rt_chan_free(c);
	return 0;
}
TEST(select_default_timeout_nil_closed) {
	run_rt(2, select_default_timeout_main, NULL);
}

/* Several selecters and senders racing across P's: every value arrives once. */
static rt_chan *sa, *sb, *squit;
static uint64_t got_sum;

static void selecter(void *wg) {
	int64_t v;
	for (;;) {
		rt_case cs[3] = {{.c = sa, .dir = RT_RECV, .elem = &v},
		                 {.c = sb, .dir = RT_RECV, .elem = &v},
		                 {.c = squit, .dir = RT_RECV, .elem = NULL}};
		int k = rt_select(cs, 3, rt_deadline_in(5000000));
		if (k == 2)
			break;
		if (k >= 0)
			__atomic_add_fetch(&got_sum, (uint64_t)v, __ATOMIC_RELAXED);
	}
	rt_wg_done(wg);
}

static void select_sender(void *arg) {
	long n = scaled(10000);
	for (long i = 1; i <= n; i++) {
		int64_t v = i;
		rt_chan_send(i % 2 ? sa : sb, &v);
	}
}

static int select_race_main(void *a) {
	sa = rt_chan_new(sizeof(int64_t), 0);
	sb = rt_chan_new(sizeof(int64_t), 4);
	squit = rt_chan_new(0, 0);
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	rt_wg_add(&wg, 4);
	for (int i = 0; i < 4; i++)
		rt_go(selecter, &wg, "selecter");
	long n = scaled(10000);
	for (int i = 0; i < 3; i++)
		rt_go(select_sender, NULL, "select-sender");
	uint64_t want = 3 * (uint64_t)n * (uint64_t)(n + 1) / 2;
	for (int i = 0; i < 10000 && __atomic_load_n(&got_sum, __ATOMIC_RELAXED) != want; i++)
		rt_sleep(1000000);
	uint64_t got = __atomic_load_n(&got_sum, __ATOMIC_RELAXED);
	CHECKF(got == want, "got %llu want %llu", (unsigned long long)got,
	       (unsigned long long)want);
	rt_chan_close(squit);
	rt_wg_wait(&wg);
	for (int i = 0; i < 100 && rt_goroutines() > 1; i++)
		rt_sleep(1000000);
	rt_chan_free(sa);
	rt_chan_free(sb);
	rt_chan_free(squit);
	return 0;
}
TEST(select_many_selecters_and_senders) {
	run_rt(2, select_race_main, NULL);
}
