/* linefind_test.c — the marked lines of a stream (shim/io/linefind.c): random
 * streams cut into random chunks (single bytes to whole megabytes) must
 * show exactly the lines a plain line-by-line reading picks: markers at a
 * line's start, in its middle, at its end, split across chunks, in lines
 * too long to show, a line-start marker in mid-line (not a match), and
 * the last line without its newline. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/linefind.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char *buf; /* the shown lines, each followed by '\n' */
	size_t len, cap;
	int n;
} shown;

static void keep(void *arg, const char *text, size_t len) {
	shown *s = arg;
	if (s->len + len + 1 > s->cap) {
		s->cap = (s->len + len + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, text, len);
	s->len += len;
	s->buf[s->len++] = '\n';
	s->n++;
}

/* The reference: one line at a time, as the header says lines match. */
static bool ref_matches(const char *const *markers, const char *l, size_t n) {
	if (!markers)
		return true;
	for (int i = 0; markers[i]; i++) {
		size_t ml = strlen(markers[i]);
		if (markers[i][0] == '\n') {
			if (n >= ml - 1 && !memcmp(l, markers[i] + 1, ml - 1))
				return true;
		} else if (memmem(l, n, markers[i], ml)) {
			return true;
		}
	}
	return false;
}

static void reference(const char *const *markers, const char *data, size_t len, shown *out) {
	const char *p = data, *end = data + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		if (n <= LNF_LINE_MAX && ref_matches(markers, p, n))
			keep(out, p, n);
		p += n + 1;
	}
}

static const char *const pieces[] = {
    "SCHED 1004ms: gomaxprocs=2 idleprocs=1 threads=5 spinningthreads=0 runqueue=0 [0 0]",
    "gc 12 @1.503s 2%: 0.021+1.2+0.004 ms clock, 4->4->1 MB, 5 MB goal, 2 P",
    "INFO GET /api/v1/items/12 200 req=deadbeef",
    "a log line that mentions gc 3 in its middle",
    "torn fragment without its newline SCHED 2008ms: gomaxprocs=2 idleprocs=0",
    "SCHE",
    "D 3000ms: gomaxprocs=2",
    "g",
    "c 5 @2s 1%: x",
    "S",
    "SC",
    "SCHED",
    "SCHED ",
    "",
    "lowercase sched 1ms and gcc 1 and Gc 2",
    "\tP0: status=1 schedtick=10 syscalltick=2 m=0 runqsize=0 gfreecnt=0",
};

static size_t gen(char *buf, size_t cap, unsigned *seed) {
	size_t len = 0;
	while (len + 8192 < cap) {
		int r = rand_r(seed) % 100;
		if (r < 3) { /* a line too long to show, marked at both ends */
			memcpy(buf + len, "SCHED ", 6);
			len += 6;
			size_t n = LNF_LINE_MAX - 4 + (size_t)(rand_r(seed) % 8);
			memset(buf + len, 'x', n);
			len += n;
			memcpy(buf + len, " SCHED \n", 8);
			len += 8;
			continue;
		}
		const char *p = pieces[(size_t)rand_r(seed) % (sizeof pieces / sizeof *pieces)];
		size_t n = strlen(p);
		memcpy(buf + len, p, n);
		len += n;
		if (rand_r(seed) % 4) /* else the next piece continues this line */
			buf[len++] = '\n';
	}
	return len;
}

static void feed_in_chunks(lnf *f, const char *data, size_t len, unsigned *seed) {
	for (size_t off = 0; off < len;) {
		int r = rand_r(seed) % 10;
		size_t n = r < 3   ? 1 + (size_t)(rand_r(seed) % 8)
		           : r < 8 ? 1 + (size_t)(rand_r(seed) % 5000)
		                   : 1 + (size_t)(rand_r(seed) % (1 << 20));
		if (n > len - off)
			n = len - off;
		lnf_feed(f, data + off, n);
		off += n;
	}
	lnf_end(f);
}

static int compare_runs(const char *const *markers, int rounds) {
	size_t cap = 4 << 20;
	char *data = malloc(cap);
	static lnf f;
	for (int round = 0; round < rounds; round++) {
		unsigned seed = 1000u + (unsigned)round;
		size_t len = gen(data, cap >> (round % 4), &seed);
		if (round % 3 == 0) /* a last line without its newline */
			len +=
			    (size_t)snprintf(data + len, cap - len, "SCHED 9ms: gomaxprocs=1 tail");
		shown want = {0}, got = {0};
		reference(markers, data, len, &want);
		CHECK(lnf_init(&f, markers, keep, &got) == 0);
		feed_in_chunks(&f, data, len, &seed);
		CHECKF(got.n == want.n && got.len == want.len &&
		           !memcmp(got.buf, want.buf, got.len),
		       "round %d (%zu bytes): %d lines shown, the reference %d", round, len, got.n,
		       want.n);
		CHECK(f.shown == (uint64_t)got.n);
		free(want.buf);
		free(got.buf);
	}
	free(data);
	return 0;
}

TEST(linefind_shows_the_lines_a_line_by_line_reading_picks) {
	static const char *const go[] = {"SCHED ", "\ngc ", NULL};
	compare_runs(go, 40);
}

TEST(linefind_with_other_markers_and_every_line) {
	static const char *const other[] = {"\n\tP", "mentions", "status=1", "1ms", NULL};
	compare_runs(other, 12);
	compare_runs(NULL, 12);
}

TEST(linefind_counts_a_marker_split_byte_by_byte) {
	static const char *const go[] = {"SCHED ", "\ngc ", NULL};
	const char *s = "app\nSCHED 1ms: x\ngc 1 @0s: y\nzz gc 2\nend SCHED 2ms";
	shown got = {0};
	static lnf f;
	CHECK(lnf_init(&f, go, keep, &got) == 0);
	for (size_t i = 0; s[i]; i++)
		lnf_feed(&f, s + i, 1);
	lnf_end(&f);
	CHECKF(got.n == 3 && got.len == strlen("SCHED 1ms: x\ngc 1 @0s: y\nend SCHED 2ms\n") &&
	           !memcmp(got.buf, "SCHED 1ms: x\ngc 1 @0s: y\nend SCHED 2ms\n", got.len),
	       "%d lines: %.*s", got.n, (int)got.len, got.buf);
	free(got.buf);
}

TEST(linefind_refuses_bad_markers) {
	static lnf f;
	static const char *const short_one[] = {"S", NULL};
	static const char *const inner_nl[] = {"ab\ncd", NULL};
	static const char *const five[] = {"aa", "bb", "cc", "dd", "ee", NULL};
	CHECK(lnf_init(&f, short_one, keep, NULL) == -EINVAL);
	CHECK(lnf_init(&f, inner_nl, keep, NULL) == -EINVAL);
	CHECK(lnf_init(&f, five, keep, NULL) == -EINVAL);
}
