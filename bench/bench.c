/*
 * bench.c — moonshim's side of the runtime benchmarks: `moonbench CASE [N]`
 * runs one case on the runtime and prints "RESULT <value> <unit>".
 * bench/go/main.go is the Go twin of every case (same algorithm, same N);
 * bench/run.sh runs both and prints the ratios.
 */
#define _GNU_SOURCE
#include "rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKYNET_LEAVES        1000000
#define SKYNET_FANOUT        10
#define SPAWN_BATCH          1000
#define THROUGHPUT_PRODUCERS 4
#define THROUGHPUT_CAP       128

static long N;
static double result;
static const char *unit;

/* ─── yield_pingpong (1 P): ns per yield ─────────────────────────────── */

static rt_waitgroup wg = RT_WAITGROUP_INIT;

static void yielder(void *arg) {
	for (long i = 0; i < N / 2; i++)
		rt_yield();
	rt_wg_done(&wg);
}

static int yield_pingpong(void *arg) {
	int64_t t0 = rt_now();
	rt_wg_add(&wg, 2);
	rt_go(yielder, NULL, "yielder");
	rt_go(yielder, NULL, "yielder");
	rt_wg_wait(&wg);
	result = (double)(rt_now() - t0) / (double)N;
	unit = "ns/yield";
	return 0;
}

/* ─── chan_pingpong (1 P): ns per unbuffered round trip ──────────────── */

static rt_chan *ping, *pong;

static void echo(void *arg) {
	int64_t v;
	while (rt_chan_recv(ping, &v))
		rt_chan_send(pong, &v);
	rt_chan_close(pong);
}

static int chan_pingpong(void *arg) {
	ping = rt_chan_new(sizeof(int64_t), 0);
	pong = rt_chan_new(sizeof(int64_t), 0);
	rt_go(echo, NULL, "echo");
	int64_t t0 = rt_now(), v;
	for (int64_t i = 0; i < N; i++) {
		rt_chan_send(ping, &i);
		rt_chan_recv(pong, &v);
	}
	result = (double)(rt_now() - t0) / (double)N;
	unit = "ns/roundtrip";
	rt_chan_close(ping);
	rt_chan_recv(pong, &v); /* wait for echo to close pong */
	rt_chan_free(ping);
	rt_chan_free(pong);
	return 0;
}

/* ─── chan_throughput (2 P): ns per message, 4 producers, cap 128 ────── */

static rt_chan *tq;

static void producer(void *arg) {
	for (int64_t i = 0; i < N / THROUGHPUT_PRODUCERS; i++)
		rt_chan_send(tq, &i);
	rt_wg_done(&wg);
}

static void closer(void *arg) {
	rt_wg_wait(&wg);
	rt_chan_close(tq);
}

static int chan_throughput(void *arg) {
	tq = rt_chan_new(sizeof(int64_t), THROUGHPUT_CAP);
	int64_t t0 = rt_now(), v, sum = 0, count = 0;
	rt_wg_add(&wg, THROUGHPUT_PRODUCERS);
	for (int i = 0; i < THROUGHPUT_PRODUCERS; i++)
		rt_go(producer, NULL, "producer");
	rt_go(closer, NULL, "closer");
	while (rt_chan_recv(tq, &v))
		sum += v, count++;
	result = (double)(rt_now() - t0) / (double)count;
	unit = "ns/msg";
	rt_chan_free(tq);
	return count == N / THROUGHPUT_PRODUCERS * THROUGHPUT_PRODUCERS ? 0 : 1;
}

/* ─── spawn_join (1 P): 1e6 goroutines, at most 1000 alive ───────────── */

static void done(void *arg) {
	rt_wg_done(&wg);
}

static int spawn_join(void *arg) {
	int64_t t0 = rt_now();
	for (long i = 0; i < N; i += SPAWN_BATCH) {
		long n = N - i < SPAWN_BATCH ? N - i : SPAWN_BATCH;
		rt_wg_add(&wg, n);
		for (long j = 0; j < n; j++)
			rt_go(done, NULL, "spawn");
		rt_wg_wait(&wg);
	}
	result = (double)(rt_now() - t0) / (double)N;
	unit = "ns/goroutine";
	return 0;
}

/* ─── skynet (2 P): 1e6-leaf tree of goroutines, ms total ────────────── */

typedef struct {
	rt_chan *parent;
	int64_t num, size;
} skynet_arg;

static void skynet(void *arg) {
	skynet_arg a = *(skynet_arg *)arg; /* the parent's copy dies with its loop */
	free(arg);
	if (a.size == 1) {
		rt_chan_send(a.parent, &a.num);
		return;
	}
	rt_chan *rc = rt_chan_new(sizeof(int64_t), 0);
	int64_t sub = a.size / SKYNET_FANOUT, sum = 0, v;
	for (int i = 0; i < SKYNET_FANOUT; i++) {
		skynet_arg *c = malloc(sizeof *c);
		*c = (skynet_arg){rc, a.num + i * sub, sub};
		rt_go(skynet, c, "skynet");
	}
	for (int i = 0; i < SKYNET_FANOUT; i++) {
		rt_chan_recv(rc, &v);
		sum += v;
	}
	rt_chan_free(rc);
	rt_chan_send(a.parent, &sum);
}

static int skynet_main(void *arg) {
	rt_chan *c = rt_chan_new(sizeof(int64_t), 0);
	int64_t t0 = rt_now(), sum;
	skynet_arg *a = malloc(sizeof *a);
	*a = (skynet_arg){c, 0, N};
	rt_go(skynet, a, "skynet");
	rt_chan_recv(c, &sum);
	result = (double)(rt_now() - t0) / 1e6;
	unit = "ms";
	while (rt_goroutines() > 1) /* the last senders are still exiting */
		rt_sleep(100000);
	rt_chan_free(c);
	return sum == N * (N - 1) / 2 ? 0 : 1;
}

/* ─── parked_memory (1 P): RSS per parked goroutine ──────────────────── */

static rt_chan *block;
static rt_waitgroup started = RT_WAITGROUP_INIT;

static long rss_kib(void) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static void parked(void *arg) {
	rt_wg_done(&started);
	rt_chan_recv(block, NULL);
	rt_wg_done(&wg);
}

static int parked_memory(void *arg) {
	block = rt_chan_new(0, 0);
	long before = rss_kib();
	rt_wg_add(&started, N);
	rt_wg_add(&wg, N);
	for (long i = 0; i < N; i++)
		rt_go(parked, NULL, "parked");
	rt_wg_wait(&started);
	long after = rss_kib();
	result = (double)(after - before) * 1024.0 / (double)N;
	unit = "B/goroutine";
	rt_chan_close(block);
	rt_wg_wait(&wg);
	rt_chan_free(block);
	return 0;
}

/* ─── sleep_storm (2 P): p99 lateness of random 1–10 ms sleeps ───────── */

static int64_t *lateness;

static uint64_t splitmix(uint64_t x) { /* same sequence as the Go twin */
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static void storm_sleeper(void *arg) {
	long i = (long)(intptr_t)arg;
	int64_t d = 1000000 + (int64_t)(splitmix((uint64_t)i) % 9000001);
	int64_t deadline = rt_now() + d;
	rt_sleep(d);
	lateness[i] = rt_now() - deadline;
	rt_wg_done(&wg);
}

static int cmp64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int sleep_storm(void *arg) {
	lateness = calloc((size_t)N, sizeof *lateness);
	rt_wg_add(&wg, N);
	for (long i = 0; i < N; i++)
		rt_go(storm_sleeper, (void *)(intptr_t)i, "sleeper");
	rt_wg_wait(&wg);
	qsort(lateness, (size_t)N, sizeof *lateness, cmp64);
	fprintf(stderr, "sleep_storm: p50 %.1f us\n", (double)lateness[N / 2] / 1e3);
	result = (double)lateness[N * 99 / 100] / 1e3;
	unit = "us(p99)";
	free(lateness);
	return 0;
}

/* ─── driver ─────────────────────────────────────────────────────────── */

static const struct {
	const char *name;
	int (*fn)(void *);
	int procs;
	long n;
} cases[] = {
    {"yield_pingpong", yield_pingpong, 1, 20000000},   {"chan_pingpong", chan_pingpong, 1, 5000000},
    {"chan_throughput", chan_throughput, 2, 10000000}, {"spawn_join", spawn_join, 1, 1000000},
    {"skynet", skynet_main, 2, SKYNET_LEAVES},         {"parked_memory", parked_memory, 1, 100000},
    {"sleep_storm", sleep_storm, 2, 100000},
};

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: moonbench CASE [N]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (strcmp(argv[1], cases[i].name))
			continue;
		N = argc > 2 ? atol(argv[2]) : cases[i].n;
		rt_config cfg = {.procs = cases[i].procs};
		int r = rt_main(&cfg, cases[i].fn, NULL);
		if (r || rt_exit_leaks()) {
			fprintf(stderr, "%s: failed (result %d, %d leaked)\n", argv[1], r,
			        rt_exit_leaks());
			return 1;
		}
		printf("RESULT %.2f %s\n", result, unit);
		return 0;
	}
	fprintf(stderr, "moonbench: no case %s\n", argv[1]);
	return 2;
}
