/* logfile_test.c — the CRI log file as kubelet reads it: full lines, long
 * lines cut into P..P F, text without a final newline, two streams at
 * once, the timestamp format; blocking mode (the default): a container
 * that writes an 8 MB text to stdout, then to stderr, has every line in
 * the log, into a file and into a slowly read FIFO; non-blocking mode: a
 * container that writes 50 MB while the file sits on a sink that hardly
 * reads never blocks, and what the buffer cannot hold is dropped and
 * counted; --log-mode's parsing. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define MS  1000000LL
#define KiB 1024
#define MiB (1024 * 1024)

/* ─── helpers ────────────────────────────────────────────────────────── */

typedef struct {
	char ts[64], stream[16], tag[4];
	char *text;
	size_t len;
} rec;

typedef struct {
	char *data;
	rec *r;
	size_t n;
} recs;

static void tmp_path(char *buf, size_t n, const char *name) {
	snprintf(buf, n, "/tmp/moonshim-lf-%d-%s", getpid(), name);
	unlink(buf);
}

/* RFC3339Nano in UTC: 2006-01-02T15:04:05[.fraction]Z, the fraction 1 to 9
 * digits without a trailing zero. */
static bool valid_ts(const char *s) {
	const char *shape = "dddd-dd-ddTdd:dd:dd";
	for (int i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	s += strlen(shape);
	if (*s == '.') {
		int digits = 0;
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
		if (digits < 1 || digits > 9 || s[-1] == '0')
			return false;
	}
	return s[0] == 'Z' && s[1] == 0;
}

/* Split a CRI log into records, checking the shape of every line. */
static recs parse_log(char *data, size_t size) {
	recs out = {.data = data};
	size_t cap = 64;
	out.r = malloc(cap * sizeof *out.r);
	for (char *p = data, *end = data + size; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		CHECKF(nl, "the log ends without a newline");
		char *sp1 = memchr(p, ' ', (size_t)(nl - p));
		char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1)) : NULL;
		char *sp3 = sp2 ? memchr(sp2 + 1, ' ', (size_t)(nl - sp2 - 1)) : NULL;
		CHECKF(sp3, "not a CRI record: %.80s", p);
		if (out.n == cap)
			out.r = realloc(out.r, (cap *= 2) * sizeof *out.r);
		rec *r = &out.r[out.n++];
		snprintf(r->ts, sizeof r->ts, "%.*s", (int)(sp1 - p), p);
		snprintf(r->stream, sizeof r->stream, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
		snprintf(r->tag, sizeof r->tag, "%.*s", (int)(sp3 - sp2 - 1), sp2 + 1);
		r->text = sp3 + 1;
		r->len = (size_t)(nl - sp3 - 1);
		CHECKF(valid_ts(r->ts), "bad timestamp \"%s\"", r->ts);
		CHECKF(!strcmp(r->tag, "F") || !strcmp(r->tag, "P"), "bad tag \"%s\"", r->tag);
		p = nl + 1;
	}
	return out;
}

static recs read_log(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECKF(fd >= 0, "open %s: %s", path, strerror(errno));
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	char *data = malloc((size_t)st.st_size + 1);
	CHECK(read(fd, data, (size_t)st.st_size) == st.st_size);
	close(fd);
	return parse_log(data, (size_t)st.st_size);
}

static void free_recs(recs *r) {
	free(r->data);
	free(r->r);
}

static void check_rec(const recs *rs, size_t i, const char *stream, const char *tag, char fill,
                      size_t len) {
	CHECKF(i < rs->n, "record %zu missing (%zu records)", i, rs->n);
	const rec *r = &rs->r[i];
	CHECKF(!strcmp(r->stream, stream) && !strcmp(r->tag, tag) && r->len == len,
	       "record %zu: %s %s with %zu bytes, want %s %s with %zu", i, r->stream, r->tag,
	       r->len, stream, tag, len);
	for (size_t k = 0; k < len; k++)
		CHECKF(r->text[k] == fill, "record %zu byte %zu is 0x%02x, want '%c'", i, k,
		       (unsigned char)r->text[k], fill);
}

static void check_text(const recs *rs, size_t i, const char *stream, const char *tag,
                       const char *text) {
	CHECKF(i < rs->n, "record %zu missing (%zu records)", i, rs->n);
	const rec *r = &rs->r[i];
	CHECKF(!strcmp(r->stream, stream) && !strcmp(r->tag, tag) && r->len == strlen(text) &&
	           !memcmp(r->text, text, r->len),
	       "record %zu: \"%s %s %.*s\", want \"%s %s %s\"", i, r->stream, r->tag, (int)r->len,
	       r->text, stream, tag, text);
}

/* A pipe whose write end is on the netpoller (the test writes without
 * blocking its P); the read end goes to the log. */
typedef struct {
	int r, w;
	rt_pollfd *wpd;
} tpipe;

static tpipe tpipe_open(void) {
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
	int e = 0;
	tpipe t = {p[0], p[1], rt_poll_open(p[1], &e)};
	CHECKF(t.wpd, "rt_poll_open: %s", strerror(-e));
	return t;
}

static void tpipe_write(tpipe *t, const void *p, size_t n) {
	CHECK(rt_write(t->wpd, p, n, RT_FOREVER) == (ssize_t)n);
}

/* Write, then give the reader time to take it as a chunk of its own. */
static void tpipe_piece(tpipe *t, const void *p, size_t n) {
	tpipe_write(t, p, n);
	rt_sleep(5 * MS);
}

static void tpipe_fill(tpipe *t, char c, size_t n) {
	char *b = malloc(n);
	memset(b, c, n);
	tpipe_write(t, b, n);
	free(b);
}

static void tpipe_close(tpipe *t) {
	rt_poll_close(t->wpd);
	close(t->w);
}

static lf_log *open_log(const char *path, size_t buffer) {
	ms_err e = {0};
	lf_log *l = lf_open(path, buffer, LF_BLOCKING, &e);
	CHECKF(l, "lf_open: %s", e.msg);
	return l;
}

static void add_stream(lf_log *l, int fd, const char *name) {
	ms_err e = {0};
	CHECKF(lf_add_stream(l, fd, name, &e) >= 0, "lf_add_stream: %s", e.msg);
}

/* ─── full lines ─────────────────────────────────────────────────────── */

static int full_lines_main(void *arg) {
	char path[128];
	tmp_path(path, sizeof path, "full.log");
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	const char *old = "2020-01-01T00:00:00Z stdout F old line\n"; /* kept: appended to */
	CHECK(fd >= 0 && write(fd, old, strlen(old)) == (ssize_t)strlen(old));
	close(fd);
	lf_log *l = open_log(path, 0);
	tpipe p = tpipe_open();
	add_stream(l, p.r, "stdout");
	tpipe_write(&p, "hello\nworld\r\n\nwith spaces  and\ttab\n", 35);
	tpipe_piece(&p, "split ", 6);
	tpipe_piece(&p, "across reads\r", 13);
	tpipe_piece(&p, "\n", 1);
	tpipe_close(&p);
	lf_stats st;
	lf_close(l, &st);

	recs rs = read_log(path);
	CHECKF(rs.n == 6, "%zu records", rs.n);
	check_text(&rs, 0, "stdout", "F", "old line");
	check_text(&rs, 1, "stdout", "F", "hello");
	check_text(&rs, 2, "stdout", "F", "world"); /* "\r\n" ends a line, as in containerd */
	check_text(&rs, 3, "stdout", "F", "");
	check_text(&rs, 4, "stdout", "F", "with spaces  and\ttab");
	check_text(&rs, 5, "stdout", "F", "split across reads");
	CHECKF(st.all.lines == 5 && st.stream[0].lines == 5 && st.all.dropped_records == 0,
	       "lines %llu dropped %llu", (unsigned long long)st.all.lines,
	       (unsigned long long)st.all.dropped_records);
	CHECK(st.all.bytes == 5 + 5 + 0 + 20 + 18 && st.write_error == 0);
	struct stat sb;
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600); /* existing mode kept */
	free_recs(&rs);
	unlink(path);

	tmp_path(path, sizeof path, "mode.log"); /* a new file is created 0640 */
	l = open_log(path, 0);
	lf_close(l, NULL);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);
	unlink(path);
	return 0;
}

TEST(logfile_full_lines) {
	run_rt(2, full_lines_main, NULL);
}

/* ─── long lines: P records of 16 KiB, then F ────────────────────────── */

static int long_lines_main(void *arg) {
	char path[128];
	tmp_path(path, sizeof path, "long.log");
	lf_log *l = open_log(path, 4 * MiB);
	tpipe p = tpipe_open();
	add_stream(l, p.r, "stdout");
	tpipe_fill(&p, 'a', 40000); /* P 16384, P 16384, F 7232 */
	tpipe_piece(&p, "\n", 1);
	tpipe_fill(&p, 'b', LF_RECORD_MAX); /* exactly the max: one F */
	tpipe_piece(&p, "\n", 1);
	tpipe_fill(&p, 'c', LF_RECORD_MAX); /* the max, then "\r\n" in pieces: one F */
	tpipe_piece(&p, "\r", 1);
	tpipe_piece(&p, "\n", 1);
	tpipe_fill(&p, 'd', LF_RECORD_MAX + 1); /* one past the max: P 16384, F 1 */
	tpipe_piece(&p, "\n", 1);
	tpipe_fill(&p, 'e', 2 * LF_RECORD_MAX); /* twice the max: P, F */
	tpipe_piece(&p, "\n", 1);
	tpipe_fill(&p, 'f', LF_RECORD_MAX); /* a '\r' past the max that no '\n' follows */
	tpipe_piece(&p, "\r", 1);
	tpipe_piece(&p, "g\n", 2);
	tpipe_close(&p);
	lf_stats st;
	lf_close(l, &st);

	recs rs = read_log(path);
	size_t i = 0;
	check_rec(&rs, i++, "stdout", "P", 'a', LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "P", 'a', LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "F", 'a', 40000 - 2 * LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "F", 'b', LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "F", 'c', LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "P", 'd', LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "F", 'd', 1);
	check_rec(&rs, i++, "stdout", "P", 'e', LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "F", 'e', LF_RECORD_MAX);
	check_rec(&rs, i++, "stdout", "P", 'f', LF_RECORD_MAX);
	check_text(&rs, i++, "stdout", "F", "\rg");
	CHECKF(rs.n == i, "%zu records, want %zu", rs.n, i);
	CHECK(st.all.lines == i && st.all.dropped_records == 0);
	free_recs(&rs);
	unlink(path);
	return 0;
}

TEST(logfile_long_lines_split) {
	run_rt(2, long_lines_main, NULL);
}

/* ─── text without a final newline ──────────────────────────────────── */

static int no_newline_main(void *arg) {
	char path[128];
	tmp_path(path, sizeof path, "eof.log");
	lf_log *l = open_log(path, 0);
	tpipe out = tpipe_open(), err = tpipe_open();
	add_stream(l, out.r, "stdout");
	add_stream(l, err.r, "stderr");
	tpipe_write(&out, "abc\ndef", 7);
	tpipe_fill(&err, 'z', 20000);
	tpipe_close(&out);
	tpipe_close(&err);
	lf_stats st;
	lf_close(l, &st);

	/* containerd writes what is left at EOF as a partial record */
	recs rs = read_log(path);
	CHECKF(rs.n == 4, "%zu records", rs.n);
	size_t o = 0, e = 0;
	for (size_t i = 0; i < rs.n; i++) {
		if (!strcmp(rs.r[i].stream, "stdout")) {
			check_text(&rs, i, "stdout", o ? "P" : "F", o ? "def" : "abc");
			o++;
		} else {
			check_rec(&rs, i, "stderr", "P", 'z',
			          e ? 20000 - LF_RECORD_MAX : LF_RECORD_MAX);
			e++;
		}
	}
	CHECK(o == 2 && e == 2);
	CHECK(st.stream[0].lines == 2 && st.stream[0].bytes == 6);
	CHECK(st.stream[1].lines == 2 && st.stream[1].bytes == 20000);
	free_recs(&rs);
	unlink(path);
	return 0;
}

TEST(logfile_no_trailing_newline) {
	run_rt(2, no_newline_main, NULL);
}

/* ─── both streams interleaved ──────────────────────────────────────── */

#define INTERLEAVED_LINES 5000

typedef struct {
	tpipe p;
	const char *name;
	rt_waitgroup *wg;
} emitter;

static void emit_lines(void *arg) {
	emitter *em = arg;
	for (int i = 0; i < INTERLEAVED_LINES; i++) {
		char line[64];
		int n = snprintf(line, sizeof line, "%s line %d\n", em->name, i);
		tpipe_write(&em->p, line, (size_t)n);
		if (i % 100 == 99)
			rt_sleep(MS / 5); /* let the other stream's lines in between */
	}
	tpipe_close(&em->p);
	rt_wg_done(em->wg);
}

static int interleaved_main(void *arg) {
	char path[128];
	tmp_path(path, sizeof path, "both.log");
	lf_log *l = open_log(path, 8 * MiB);
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	emitter em[2] = {{tpipe_open(), "stdout", &wg}, {tpipe_open(), "stderr", &wg}};
	for (int i = 0; i < 2; i++)
		add_stream(l, em[i].p.r, em[i].name);
	rt_wg_add(&wg, 2);
	for (int i = 0; i < 2; i++)
		rt_go(emit_lines, &em[i], "emitter");
	rt_wg_wait(&wg);
	lf_stats st;
	lf_close(l, &st);

	recs rs = read_log(path);
	int next[2] = {0, 0}, switches = 0;
	const char *prev = NULL;
	for (size_t i = 0; i < rs.n; i++) {
		int s = !strcmp(rs.r[i].stream, "stderr");
		char want[64];
		snprintf(want, sizeof want, "%s line %d", em[s].name, next[s]++);
		check_text(&rs, i, em[s].name, "F", want);
		switches += prev && strcmp(prev, rs.r[i].stream);
		prev = rs.r[i].stream;
	}
	CHECK(next[0] == INTERLEAVED_LINES && next[1] == INTERLEAVED_LINES);
	CHECK(st.all.lines == 2 * INTERLEAVED_LINES && st.all.dropped_records == 0);
	fprintf(stderr, "%d records, the stream changed %d times\n", 2 * INTERLEAVED_LINES,
	        switches);
	CHECK(switches > 0);
	free_recs(&rs);
	unlink(path);
	return 0;
}

TEST(logfile_streams_interleaved) {
	run_rt(2, interleaved_main, NULL);
}

/* ─── timestamps ─────────────────────────────────────────────────────── */

static double ts_seconds(const char *s) {
	struct tm tm = {0};
	double frac = 0;
	CHECK(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	             &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	const char *dot = strchr(s, '.');
	if (dot)
		frac = strtod(dot, NULL);
	return (double)timegm(&tm) + frac;
}

static double wall_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int timestamps_main(void *arg) {
	static const struct {
		time_t sec;
		long nsec;
		const char *want;
	} cases[] = {
	    {0, 0, "1970-01-01T00:00:00Z"},
	    {1795953600, 123456789, "2026-11-29T12:00:00.123456789Z"},
	    {1795953600, 100000000, "2026-11-29T12:00:00.1Z"},
	    {1795953600, 120, "2026-11-29T12:00:00.00000012Z"},
	    {1795953600, 1, "2026-11-29T12:00:00.000000001Z"},
	    {951868799, 999999999, "2000-02-29T23:59:59.999999999Z"},
	    {951868799, 500000, "2000-02-29T23:59:59.0005Z"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[LF_TIME_MAX];
		struct timespec ts = {cases[i].sec, cases[i].nsec};
		size_t n = lf_format_time(&ts, buf);
		CHECKF(!strcmp(buf, cases[i].want) && n == strlen(buf),
		       "%ld.%09ld: \"%s\", want \"%s\"", (long)cases[i].sec, cases[i].nsec, buf,
		       cases[i].want);
	}

	/* records carry the wall-clock time they were read at, in UTC */
	char path[128];
	tmp_path(path, sizeof path, "time.log");
	lf_log *l = open_log(path, 0);
	tpipe p = tpipe_open();
	add_stream(l, p.r, "stdout");
	double before = wall_now();
	tpipe_piece(&p, "first\n", 6);
	double mid = wall_now();
	rt_sleep(20 * MS);
	tpipe_piece(&p, "second\n", 7);
	double after = wall_now();
	tpipe_close(&p);
	lf_close(l, NULL);
	recs rs = read_log(path);
	CHECK(rs.n == 2);
	double t0 = ts_seconds(rs.r[0].ts), t1 = ts_seconds(rs.r[1].ts);
	CHECKF(t0 >= before - 1e-6 && t0 <= mid + 1e-6, "%s not in [%.6f, %.6f]", rs.r[0].ts,
	       before, mid);
	CHECKF(t1 >= mid + 0.019 && t1 <= after + 1e-6, "%s not in [%.6f, %.6f]", rs.r[1].ts,
	       mid + 0.02, after);
	free_recs(&rs);
	unlink(path);
	return 0;
}

TEST(logfile_timestamp_format) {
	run_rt(2, timestamps_main, NULL);
}

/* ─── a fast writer and a slow sink ─────────────────────────────────── */

#define FLOOD_BYTES (50L * MiB)
#define FLOOD_LINE  100                /* 99 bytes of text and a newline */
#define FLOOD_CHUNK (655 * FLOOD_LINE) /* whole lines, just under a pipe's 64 KiB */
#define SLOW_READ   (4 * KiB)
#define SLOW_PAUSE  2000 /* µs between slow reads: ~2 MB/s */

typedef struct {
	int fd;
	int slow; /* atomic */
	uint64_t bytes, lines, bad;
} drain;

/* The log's reader: slow while the flood lasts, then fast, to EOF. Every
 * line it gets must be a whole record. */
static void *drain_run(void *arg) {
	drain *d = arg;
	char *buf = malloc(64 * KiB), line[256];
	size_t have = 0;
	for (;;) {
		bool slow = __atomic_load_n(&d->slow, __ATOMIC_ACQUIRE);
		ssize_t n = read(d->fd, buf, slow ? SLOW_READ : 64 * KiB);
		if (n <= 0)
			break;
		d->bytes += (uint64_t)n;
		for (ssize_t i = 0; i < n; i++) {
			if (have < sizeof line - 1)
				line[have++] = buf[i];
			if (buf[i] != '\n')
				continue;
			line[have - 1] = 0;
			char *sp = strchr(line, ' ');
			if (sp)
				*sp = 0;
			d->bad += !sp || !valid_ts(line) || strncmp(sp + 1, "stdout F ", 9) ||
			          strlen(sp + 10) != FLOOD_LINE - 1;
			d->lines++;
			have = 0;
		}
		if (slow)
			usleep(SLOW_PAUSE);
	}
	free(buf);
	return NULL;
}

static intptr_t wait_child(void *arg) {
	int st;
	return waitpid((pid_t)(intptr_t)arg, &st, 0) > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int flood_main(void *arg) {
	char path[128];
	tmp_path(path, sizeof path, "fifo");
	CHECK(mkfifo(path, 0600) == 0);
	drain d = {.slow = 1};
	d.fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* so the log's open returns */
	CHECK(d.fd >= 0);
	ms_err e = {0};
	lf_log *l = lf_open(path, 1 * MiB, LF_NON_BLOCKING, &e);
	CHECKF(l, "lf_open: %s", e.msg);
	CHECK(fcntl(d.fd, F_SETFL, 0) == 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, drain_run, &d) == 0);

	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	add_stream(l, p[0], "stdout");
	char *chunk = malloc(FLOOD_CHUNK);
	for (int i = 0; i < FLOOD_CHUNK; i++)
		chunk[i] = i % FLOOD_LINE == FLOOD_LINE - 1 ? '\n' : 'a' + i % 26;
	int64_t t0 = rt_now();
	pid_t pid = fork();
	if (pid == 0) { /* the container: 50 MB as fast as the pipe takes it */
		for (long done = 0; done + FLOOD_CHUNK <= FLOOD_BYTES;)
			done += write(p[1], chunk, FLOOD_CHUNK) == FLOOD_CHUNK ? FLOOD_CHUNK : 0;
		_exit(0);
	}
	CHECK(pid > 0);
	close(p[1]);
	CHECK(rt_blocking(wait_child, (void *)(intptr_t)pid) == 0);
	double ms = (double)(rt_now() - t0) / MS;
	__atomic_store_n(&d.slow, 0, __ATOMIC_RELEASE);
	lf_stats st;
	lf_close(l, &st);
	CHECK(pthread_join(th, NULL) == 0);
	close(d.fd);
	unlink(path);
	free(chunk);

	uint64_t lines = FLOOD_BYTES / FLOOD_CHUNK * (FLOOD_CHUNK / FLOOD_LINE),
	         sent = lines * (FLOOD_LINE - 1);
	fprintf(stderr,
	        "child wrote %ld MB in %.0f ms (%.0f MB/s); %llu records reached the file, "
	        "%llu dropped (%llu bytes)\n",
	        FLOOD_BYTES / MiB, ms, (double)FLOOD_BYTES / MiB / (ms / 1e3),
	        (unsigned long long)st.all.lines, (unsigned long long)st.all.dropped_records,
	        (unsigned long long)st.all.dropped_bytes);
	double limit = 3000.0 * (double)(100 / scaled(100)); /* a blocked child takes ~25 s */
	CHECKF(ms < limit, "the child took %.0f ms to write %ld MB (limit %.0f)", ms,
	       FLOOD_BYTES / MiB, limit);
	CHECK(st.all.dropped_records > 0 && st.stream[0].dropped_bytes > 0);
	CHECKF(st.all.lines + st.all.dropped_records == lines, "%llu + %llu records of %llu",
	       (unsigned long long)st.all.lines, (unsigned long long)st.all.dropped_records,
	       (unsigned long long)lines);
	CHECK(st.all.bytes + st.all.dropped_bytes == sent);
	CHECK(st.write_error == 0 && st.lost_bytes == 0);
	CHECKF(d.lines == st.all.lines && d.bad == 0,
	       "the sink got %llu lines (%llu bad), want %llu", (unsigned long long)d.lines,
	       (unsigned long long)d.bad, (unsigned long long)st.all.lines);
	return 0;
}

TEST(logfile_non_blocking_slow_sink_never_blocks_child) {
	run_rt(2, flood_main, NULL);
}

/* ─── blocking: every line of a big text, stdout then stderr ──────────── */

#define TEXT_LINE  75                            /* bytes per line with its newline */
#define TEXT_LINES (8 * 1000 * 1000 / TEXT_LINE) /* the 8 MB text file, `cat` twice */
#define TEXT_BYTES (TEXT_LINES * TEXT_LINE)
#define CAT_CHUNK  (128 * KiB) /* what cat(1) writes at a time */

/* Line i, exactly TEXT_LINE bytes with its newline. */
static void text_line(char *buf, int i) {
	char line[TEXT_LINE + 32];
	snprintf(line, sizeof line,
	         "line %07d of a text file that the container cats twice, %08x (text)\n", i,
	         (unsigned)i * 2654435761u);
	memcpy(buf, line, TEXT_LINE);
}

/* The container: the text to stdout, then to stderr, as fast as the pipes
 * take it. */
static void cat_twice(int out, int err) {
	char *text = malloc(TEXT_BYTES);
	for (int i = 0; i < TEXT_LINES; i++)
		text_line(text + (size_t)i * TEXT_LINE, i);
	int fds[2] = {out, err};
	for (int f = 0; f < 2; f++)
		for (size_t off = 0; off < TEXT_BYTES;) {
			size_t n = TEXT_BYTES - off < CAT_CHUNK ? TEXT_BYTES - off : CAT_CHUNK;
			ssize_t w = write(fds[f], text + off, n);
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
	_exit(0);
}

typedef struct {
	int fd;
	size_t piece; /* bytes per read */
	useconds_t rest;
	char *buf;
	size_t len, cap;
} fifo_drain;

static void *fifo_drain_run(void *arg) {
	fifo_drain *d = arg;
	ssize_t n;
	for (;;) {
		if (d->len + d->piece > d->cap)
			d->buf = realloc(d->buf, d->cap = (d->cap + d->piece) * 2);
		if ((n = read(d->fd, d->buf + d->len, d->piece)) <= 0)
			break;
		d->len += (size_t)n;
		usleep(d->rest);
	}
	return NULL;
}

/* Every line of the text, in order, once per stream, all F records. */
static void check_every_line(const recs *rs, const lf_stats *st) {
	size_t next[2] = {0, 0};
	char want[TEXT_LINE];
	for (size_t i = 0; i < rs->n; i++) {
		const rec *r = &rs->r[i];
		int k = !strcmp(r->stream, "stderr");
		CHECKF(k || !strcmp(r->stream, "stdout"), "record %zu: stream %s", i, r->stream);
		CHECKF(!strcmp(r->tag, "F"), "record %zu: tag %s", i, r->tag);
		CHECKF(next[k] < TEXT_LINES, "record %zu: a %s line too many", i, r->stream);
		text_line(want, (int)next[k]);
		CHECKF(r->len == TEXT_LINE - 1 && !memcmp(r->text, want, TEXT_LINE - 1),
		       "record %zu: %s has \"%.*s\", want line %zu", i, r->stream, (int)r->len,
		       r->text, next[k]);
		next[k]++;
	}
	fprintf(stderr, "log: %zu of %d stdout lines, %zu of %d stderr lines, %llu dropped\n",
	        next[0], TEXT_LINES, next[1], TEXT_LINES,
	        (unsigned long long)st->all.dropped_records);
	CHECKF(next[0] == TEXT_LINES && next[1] == TEXT_LINES,
	       "the log has %zu stdout and %zu stderr lines of %d each", next[0], next[1],
	       TEXT_LINES);
	CHECK(st->all.dropped_records == 0 && st->all.dropped_bytes == 0);
	CHECK(st->stream[0].lines == TEXT_LINES && st->stream[1].lines == TEXT_LINES);
	CHECK(st->write_error == 0 && st->lost_bytes == 0);
}

/* arg: a FIFO read slowly with a 1 MiB buffer; NULL: a regular file with
 * the smallest buffer (LF_BUFFER_MIN, less than one read of the pipe):
 * blocking mode loses nothing whatever the buffer. */
static int every_line_main(void *arg) {
	bool fifo = arg != NULL;
	char path[128];
	tmp_path(path, sizeof path, fifo ? "cat.fifo" : "cat.log");
	fifo_drain d = {.fd = -1, .piece = 64 * KiB, .rest = 1000}; /* ~50 MB/s */
	pthread_t th;
	if (fifo) {
		CHECK(mkfifo(path, 0600) == 0);
		/* non-blocking, so the log's open returns */
		d.fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		CHECK(d.fd >= 0);
	}
	lf_log *l = open_log(path, fifo ? 1 * MiB : 0);
	if (fifo) {
		CHECK(fcntl(d.fd, F_SETFL, 0) == 0);
		CHECK(pthread_create(&th, NULL, fifo_drain_run, &d) == 0);
	}
	int out[2], err[2];
	CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
	add_stream(l, out[0], "stdout");
	add_stream(l, err[0], "stderr");
	int64_t t0 = rt_now();
	pid_t pid = fork();
	if (pid == 0)
		cat_twice(out[1], err[1]);
	CHECK(pid > 0);
	close(out[1]);
	close(err[1]);
	CHECK(rt_blocking(wait_child, (void *)(intptr_t)pid) == 0);
	lf_stats st;
	lf_close(l, &st);
	fprintf(stderr, "%s: 2 x %d bytes logged in %.0f ms\n", fifo ? "slow FIFO" : "file",
	        TEXT_BYTES, (double)(rt_now() - t0) / MS);
	recs rs;
	if (fifo) {
		CHECK(pthread_join(th, NULL) == 0);
		close(d.fd);
		rs = parse_log(d.buf, d.len);
	} else {
		rs = read_log(path);
	}
	check_every_line(&rs, &st);
	free_recs(&rs);
	unlink(path);
	return 0;
}

TEST(logfile_blocking_keeps_every_line_in_a_file) {
	run_rt(2, every_line_main, NULL);
}

TEST(logfile_blocking_keeps_every_line_on_a_slow_fifo) {
	run_rt(2, every_line_main, "fifo");
}

/* ─── --log-mode ─────────────────────────────────────────────────────── */

TEST(logfile_mode_parsing) {
	lf_mode m = LF_NON_BLOCKING;
	size_t b = 7;
	ms_err e = {0};
	CHECK(lf_parse_mode("--log-mode", "blocking", &m, &b, &e) == 0 && m == LF_BLOCKING &&
	      b == 7);
	CHECK(lf_parse_mode("--log-mode", "non-blocking", &m, &b, &e) == 0 &&
	      m == LF_NON_BLOCKING && b == 7);
	CHECK(lf_parse_mode("--log-mode", "non-blocking,max-buffer-size=4m", &m, &b, &e) == 0 &&
	      b == 4 * MiB);
	CHECK(lf_parse_mode("--log-mode", "blocking,max-buffer-size=512KiB", &m, &b, &e) == 0 &&
	      m == LF_BLOCKING && b == 512 * KiB);
	CHECK(lf_parse_mode("--log-mode", "drop", &m, &b, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "--log-mode drop") && strstr(e.msg, "non-blocking"), "%s", e.msg);
	CHECK(lf_parse_mode("--log-mode", "non-blocking,max-buffer-size=", &m, &b, &e) == -EINVAL);
	CHECK(lf_parse_mode("--log-mode", "non-blocking,size=4m", &m, &b, &e) == -EINVAL);
	size_t z;
	CHECK(lf_parse_size("4096", &z) == 0 && z == 4096);
	CHECK(lf_parse_size("2g", &z) == 0 && z == 2ULL << 30);
	CHECK(lf_parse_size("3MB", &z) == 0 && z == 3 * MiB);
	CHECK(lf_parse_size("0", &z) == -EINVAL && lf_parse_size("4x", &z) == -EINVAL &&
	      lf_parse_size("", &z) == -EINVAL && lf_parse_size("-1k", &z) == -EINVAL &&
	      lf_parse_size("99999999999999999999k", &z) == -EINVAL);
}

/* ─── errors ─────────────────────────────────────────────────────────── */

static int errors_main(void *arg) {
	ms_err e = {0};
	CHECK(!lf_open("/nonexistent-dir/x.log", 0, LF_BLOCKING, &e));
	CHECKF(e.code == -ENOENT && strstr(e.msg, "/nonexistent-dir/x.log"), "%s", e.msg);
	char path[128];
	tmp_path(path, sizeof path, "err.log");
	lf_log *l = open_log(path, 0);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* epoll refuses it */
	CHECK(lf_add_stream(l, fd, "stdout", &e) < 0);
	CHECKF(strstr(e.msg, "stdout") && strstr(e.msg, path), "%s", e.msg);
	lf_close(l, NULL);
	unlink(path);
	return 0;
}

TEST(logfile_errors_named) {
	run_rt(2, errors_main, NULL);
}
