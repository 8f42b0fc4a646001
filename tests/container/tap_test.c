/* tap_test.c — the stderr tap (shim/tap.c): every byte passes through
 * unchanged and in order with the lines shown to the callback (a torn last
 * line too); and with a sink that never reads, the child's writes never
 * block: what the buffer cannot hold is dropped and counted, and tap_wait
 * gives up on the sink after its grace instead of hanging. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/tap.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define MS  1000000LL
#define MiB (1024 * 1024)

typedef struct {
	int fd;
	char *buf;
	size_t len, cap;
} slurp;

static void *slurp_thread(void *arg) {
	slurp *s = arg;
	char chunk[65536];
	ssize_t n;
	while ((n = read(s->fd, chunk, sizeof chunk)) > 0) {
		if (s->len + (size_t)n > s->cap) {
			s->cap = (s->len + (size_t)n) * 2;
			s->buf = realloc(s->buf, s->cap);
		}
		memcpy(s->buf + s->len, chunk, (size_t)n);
		s->len += (size_t)n;
	}
	return NULL;
}

typedef struct {
	int lines, sched;
	size_t last_len;
} seen;

static void on_line(void *arg, const char *text, size_t len) {
	seen *s = arg;
	s->lines++;
	s->last_len = len;
	if (len >= 6 && !memcmp(text, "SCHED ", 6))
		s->sched++;
}

typedef struct {
	int fd;
	const char *data;
	size_t len;
} feeder;

static void *feed_thread(void *arg) {
	feeder *f = arg;
	for (size_t off = 0; off < f->len;) {
		ssize_t n = write(f->fd, f->data + off, f->len - off > 777 ? 777 : f->len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(f->fd);
	return NULL;
}

static int passthrough_main(void *arg) {
	/* 20,000 lines, every tenth a SCHED line, then a last line without a newline */
	size_t cap = 4 * MiB, len = 0;
	char *data = malloc(cap);
	for (int i = 0; i < 20000; i++)
		len += (size_t)snprintf(data + len, cap - len,
		                        i % 10 ? "app line %d with some text\n"
		                               : "SCHED %dms: gomaxprocs=2 idleprocs=1 threads=4 "
		                                 "spinningthreads=0 idlethreads=1 runqueue=0 [0 0]\n",
		                        i);
	len += (size_t)snprintf(data + len, cap - len, "torn tail");
	int child[2], sink[2];
	CHECK(pipe(child) == 0 && pipe(sink) == 0);
	slurp s = {.fd = sink[0]};
	pthread_t st, ft;
	pthread_create(&st, NULL, slurp_thread, &s);
	seen sn = {0};
	ms_err err = {0};
	tap *t = tap_start(child[0], sink[1], 1 << 20, NULL, on_line, &sn, &err);
	CHECKF(t, "%s", err.msg);
	feeder f = {child[1], data, len};
	pthread_create(&ft, NULL, feed_thread, &f);
	tap_stats ts;
	tap_wait(t, &ts);
	close(sink[1]);
	pthread_join(ft, NULL);
	pthread_join(st, NULL);
	CHECKF(s.len == len && !memcmp(s.buf, data, len), "passed %zu of %zu bytes (or changed)",
	       s.len, len);
	CHECKF(sn.lines == 20001 && sn.sched == 2000 && sn.last_len == 9,
	       "lines %d sched %d last %zu", sn.lines, sn.sched, sn.last_len);
	CHECK(ts.bytes_in == len && ts.bytes_out == len && ts.bytes_dropped == 0);
	close(sink[0]);
	free(s.buf);
	free(data);
	return 0;
}

TEST(tap_passes_every_byte_and_shows_lines) {
	run_rt(2, passthrough_main, NULL);
}

static int stalled_main(void *arg) {
	/* the sink is a pipe nobody reads: 16 MiB from the child must go
	 * through the tap without the child blocking */
	int child[2], sink[2];
	CHECK(pipe(child) == 0 && pipe(sink) == 0);
	seen sn = {0};
	ms_err err = {0};
	tap *t = tap_start(child[0], sink[1], 256 * 1024, NULL, on_line, &sn, &err);
	CHECKF(t, "%s", err.msg);
	size_t len = 16 * MiB;
	char *data = malloc(len);
	memset(data, 'x', len);
	for (size_t i = 99; i < len; i += 100)
		data[i] = '\n';
	feeder f = {child[1], data, len};
	pthread_t ft;
	int64_t t0 = rt_now();
	pthread_create(&ft, NULL, feed_thread, &f);
	tap_stats ts;
	tap_wait(t, &ts);
	int64_t took = rt_now() - t0;
	pthread_join(ft, NULL);
	CHECKF(ts.bytes_in == len, "the child wrote %llu of %zu bytes",
	       (unsigned long long)ts.bytes_in, len);
	CHECKF(ts.bytes_dropped > 0 && ts.bytes_out + ts.bytes_dropped == len,
	       "out %llu dropped %llu", (unsigned long long)ts.bytes_out,
	       (unsigned long long)ts.bytes_dropped);
	CHECKF(sn.lines == (int)(len / 100) + 1, "lines %d", sn.lines); /* and the tail */
	CHECKF(took < 15000 * MS, "tap_wait took %lld ms", (long long)(took / MS));
	close(sink[0]);
	close(sink[1]);
	free(data);
	return 0;
}

TEST(tap_never_blocks_the_child_on_a_stalled_sink) {
	run_rt(2, stalled_main, NULL);
}
