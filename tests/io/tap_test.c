/* tap_test.c — the stderr tap (shim/io/tap.c): every byte passes through
 * unchanged and in order with the lines shown to the callback (a torn last
 * line too). Lossless, the default: an 8+ MB single write (a Go panic's
 * goroutine dump) reaches a file, and a slowly drained pipe, whole, in
 * order, nothing dropped; with a sink nobody reads the child waits (the
 * tap parked, not spinning) and goes on once the sink drains; a sink that
 * stays stuck after the child is gone is given up after the grace. Drop
 * mode: with a sink that never reads, the child's writes never block,
 * what the buffer cannot hold is dropped and counted. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
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
		len +=
		    (size_t)snprintf(data + len, cap - len,
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
	tap *t = tap_start(child[0], sink[1], 1 << 20, TAP_LOSSLESS, NULL, on_line, &sn, &err);
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
	/* drop mode, the sink a pipe nobody reads: 16 MiB from the child must
	 * go through the tap without the child blocking */
	int child[2], sink[2];
	CHECK(pipe(child) == 0 && pipe(sink) == 0);
	seen sn = {0};
	ms_err err = {0};
	tap *t = tap_start(child[0], sink[1], 256 * 1024, TAP_DROP, NULL, on_line, &sn, &err);
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

TEST(tap_drop_mode_never_blocks_the_child_on_a_stalled_sink) {
	run_rt(2, stalled_main, NULL);
}

/* ─── lossless (the default) ─────────────────────────────────────────── */

#define DUMP_BYTES (8300 * 1000) /* the goroutine dump: 8.3 MB in one write */

/* Lines as a goroutine dump has them, numbered (so a cut or a reordering
 * shows), every 50th a SCHED line; DUMP_BYTES in all, the last line torn. */
static char *dump_text(size_t len) {
	char *d = malloc(len + 128);
	size_t n = 0;
	for (int i = 0; n < len; i++)
		n += (size_t)sprintf(d + n,
		                     i % 50 ? "goroutine %d [chan receive]:\n\tmain.worker(0x%x)\n"
		                            : "SCHED %dms: gomaxprocs=2 idleprocs=0 threads=5 "
		                              "runqueue=%d\n",
		                     i, i);
	return d; /* the first len bytes are used */
}

typedef struct {
	int fd;
	const char *data;
	size_t len;
	ssize_t wrote;
	int64_t done_at; /* atomic: rt_now() when the write returned */
} one_write;

/* The child: all of it in one write(2), as Go writes a panic's dump. */
static void *one_write_thread(void *arg) {
	one_write *w = arg;
	w->wrote = write(w->fd, w->data, w->len);
	__atomic_store_n(&w->done_at, rt_now(), __ATOMIC_RELEASE);
	close(w->fd);
	return NULL;
}

static int lossless_file_main(void *arg) {
	char path[128];
	snprintf(path, sizeof path, "/tmp/moonshim-tap-%d.out", getpid());
	int out = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECKF(out >= 0, "open %s: %s", path, strerror(errno));
	char *data = dump_text(DUMP_BYTES);
	int child[2];
	CHECK(pipe(child) == 0);
	seen sn = {0};
	ms_err err = {0};
	tap *t = tap_start(child[0], out, 1 << 20, TAP_LOSSLESS, NULL, on_line, &sn, &err);
	CHECKF(t, "%s", err.msg);
	one_write w = {.fd = child[1], .data = data, .len = DUMP_BYTES};
	pthread_t th;
	int64_t t0 = rt_now();
	pthread_create(&th, NULL, one_write_thread, &w);
	tap_stats ts;
	tap_wait(t, &ts);
	double ms = (double)(rt_now() - t0) / MS;
	pthread_join(th, NULL);
	struct stat sb;
	CHECK(fstat(out, &sb) == 0);
	char *got = malloc(DUMP_BYTES + 1);
	ssize_t n = pread(out, got, DUMP_BYTES + 1, 0);
	fprintf(stderr, "%d bytes in one write into a file: %zd arrived in %.0f ms, %llu dropped\n",
	        DUMP_BYTES, n, ms, (unsigned long long)ts.bytes_dropped);
	CHECKF(w.wrote == DUMP_BYTES, "the child's write returned %zd", w.wrote);
	CHECKF(sb.st_size == DUMP_BYTES && n == DUMP_BYTES && !memcmp(got, data, DUMP_BYTES),
	       "the file has %lld of %d bytes (or they differ)", (long long)sb.st_size, DUMP_BYTES);
	CHECKF(ts.bytes_in == DUMP_BYTES && ts.bytes_out == DUMP_BYTES && ts.bytes_dropped == 0,
	       "in %llu out %llu dropped %llu", (unsigned long long)ts.bytes_in,
	       (unsigned long long)ts.bytes_out, (unsigned long long)ts.bytes_dropped);
	CHECKF(sn.sched > 0 && (uint64_t)sn.lines == ts.lines, "lines %d sched %d", sn.lines,
	       sn.sched);
	close(out);
	unlink(path);
	free(got);
	free(data);
	return 0;
}

TEST(tap_lossless_big_write_into_a_file) {
	run_rt(2, lossless_file_main, NULL);
}

typedef struct {
	int fd;
	int go;          /* atomic: 0 read nothing yet, 1 drain */
	size_t piece;    /* bytes per read */
	useconds_t rest; /* between reads */
	slurp s;
} slow_drain;

static void *slow_drain_thread(void *arg) {
	slow_drain *d = arg;
	while (!__atomic_load_n(&d->go, __ATOMIC_ACQUIRE))
		usleep(1000);
	char *chunk = malloc(d->piece);
	ssize_t n;
	while ((n = read(d->fd, chunk, d->piece)) > 0) {
		if (d->s.len + (size_t)n > d->s.cap) {
			d->s.cap = (d->s.len + (size_t)n) * 2;
			d->s.buf = realloc(d->s.buf, d->s.cap);
		}
		memcpy(d->s.buf + d->s.len, chunk, (size_t)n);
		d->s.len += (size_t)n;
		usleep(d->rest);
	}
	free(chunk);
	return NULL;
}

static int64_t cpu_ns(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* A sink pipe nobody reads for a while, then read slowly (~30 MB/s, well
 * below the child): the child waits in its write while the sink takes
 * nothing — the tap parked, costing no CPU — and every byte arrives. */
static int lossless_slow_pipe_main(void *arg) {
	char *data = dump_text(DUMP_BYTES);
	int child[2], sink[2];
	CHECK(pipe(child) == 0 && pipe(sink) == 0);
	slow_drain d = {.fd = sink[0], .piece = 16 * 1024, .rest = 500};
	pthread_t dt, wt;
	pthread_create(&dt, NULL, slow_drain_thread, &d);
	seen sn = {0};
	ms_err err = {0};
	tap *t = tap_start(child[0], sink[1], 256 * 1024, TAP_LOSSLESS, NULL, on_line, &sn, &err);
	CHECKF(t, "%s", err.msg);
	one_write w = {.fd = child[1], .data = data, .len = DUMP_BYTES};
	pthread_create(&wt, NULL, one_write_thread, &w);
	rt_sleep(200 * MS); /* everything fills: the child's pipe, the ring, the sink's pipe */
	int64_t c0 = cpu_ns();
	rt_sleep(300 * MS);
	int64_t parked_cpu = cpu_ns() - c0;
	bool held = !__atomic_load_n(&w.done_at, __ATOMIC_ACQUIRE);
	__atomic_store_n(&d.go, 1, __ATOMIC_RELEASE);
	tap_stats ts;
	tap_wait(t, &ts);
	close(sink[1]);
	pthread_join(wt, NULL);
	pthread_join(dt, NULL);
	fprintf(stderr,
	        "unread sink: child held %s, %.1f ms CPU in 300 ms; then %zu of %d bytes "
	        "arrived, %llu dropped\n",
	        held ? "yes" : "no", (double)parked_cpu / MS, d.s.len, DUMP_BYTES,
	        (unsigned long long)ts.bytes_dropped);
	CHECKF(held, "the child's write finished while the sink took nothing");
	CHECKF(parked_cpu < 60 * MS, "the stalled tap used %lld ms of CPU in 300 ms",
	       (long long)(parked_cpu / MS));
	CHECKF(w.wrote == DUMP_BYTES, "the child's write returned %zd", w.wrote);
	CHECKF(d.s.len == DUMP_BYTES && !memcmp(d.s.buf, data, DUMP_BYTES),
	       "the sink got %zu of %d bytes (or they differ)", d.s.len, DUMP_BYTES);
	CHECK(ts.bytes_out == DUMP_BYTES && ts.bytes_dropped == 0);
	close(sink[0]);
	free(d.s.buf);
	free(data);
	return 0;
}

TEST(tap_lossless_slow_pipe_holds_the_child_and_loses_nothing) {
	run_rt(2, lossless_slow_pipe_main, NULL);
}

/* The child is gone, the sink never reads again: tap_wait drops the rest
 * after its grace (5 s without progress) rather than hang. */
static int lossless_stuck_main(void *arg) {
	int child[2], sink[2];
	CHECK(pipe(child) == 0 && pipe(sink) == 0);
	ms_err err = {0};
	tap *t = tap_start(child[0], sink[1], 64 * 1024, TAP_LOSSLESS, NULL, NULL, NULL, &err);
	CHECKF(t, "%s", err.msg);
	size_t len = 4 * MiB; /* more than the sink's pipe, the ring and the child's pipe */
	char *data = calloc(1, len);
	int fl = fcntl(child[1], F_GETFL);
	CHECK(fcntl(child[1], F_SETFL, fl | O_NONBLOCK) == 0);
	size_t put = 0;
	for (int idle = 0; idle < 50 && put < len; idle++) { /* what fits, then the child exits */
		ssize_t n = write(child[1], data + put, len - put);
		if (n > 0) {
			put += (size_t)n;
			idle = 0;
		}
		rt_sleep(2 * MS);
	}
	close(child[1]);
	int64_t t0 = rt_now();
	tap_stats ts;
	tap_wait(t, &ts);
	int64_t took = rt_now() - t0;
	fprintf(stderr,
	        "stuck sink: %zu bytes in, %llu out, %llu dropped, given up after %lld ms\n", put,
	        (unsigned long long)ts.bytes_out, (unsigned long long)ts.bytes_dropped,
	        (long long)(took / MS));
	CHECK(put < len); /* the child was held */
	CHECKF(ts.bytes_in == put && ts.bytes_out + ts.bytes_dropped == put && ts.bytes_dropped > 0,
	       "in %llu out %llu dropped %llu of %zu", (unsigned long long)ts.bytes_in,
	       (unsigned long long)ts.bytes_out, (unsigned long long)ts.bytes_dropped, put);
	CHECKF(took < 15000 * MS, "tap_wait took %lld ms", (long long)(took / MS));
	close(sink[0]);
	close(sink[1]);
	free(data);
	return 0;
}

TEST(tap_lossless_gives_up_a_stuck_sink_after_the_child) {
	run_rt(2, lossless_stuck_main, NULL);
}
