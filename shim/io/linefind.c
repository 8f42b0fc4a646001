/*
 * linefind.c — whole lines are never walked one by one: a chunk's complete
 * lines are searched as one block for the markers' first two bytes (32
 * bytes a step, compared as vectors), and only where a pair turns up is a
 * marker compared and its line found. The line begun at a chunk's end is
 * carried in lbuf and checked whole once its newline arrives.
 *
 * What must stay true: markers hold no '\n' past their first byte, so an
 * anywhere-marker lies inside one line and a line-start marker's text in
 * the line after its '\n'; a block handed to whole_lines starts at a line
 * start and ends with '\n'.
 */
#define _GNU_SOURCE
#include "linefind.h"

#include <errno.h>
#include <string.h>

/* On x86_64 the scan has an AVX2 version picked at load time (glibc's
 * ifunc); elsewhere, and under clang's sanitizers, the compiler's own
 * lowering of the 32-byte vectors (two SSE2 or NEON registers). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LF_CLONES
#endif

typedef unsigned char lnf_v32 __attribute__((vector_size(32)));

int lnf_init(lnf *f, const char *const *markers, lnf_fn fn, void *arg) {
	f->nmarkers = 0;
	f->fn = fn;
	f->arg = arg;
	f->mid = f->lskip = false;
	f->llen = 0;
	f->shown = 0;
	for (int i = 0; markers && markers[i]; i++) {
		size_t n = strlen(markers[i]);
		if (i >= LNF_MARKERS_MAX || n < 2 || n >= LNF_MARKER_MAX ||
		    memchr(markers[i] + 1, '\n', n - 1))
			return -EINVAL;
		memcpy(f->marker[i], markers[i], n + 1);
		f->mlen[i] = n;
		f->nmarkers = i + 1;
	}
	return 0;
}

static void show(lnf *f, const char *s, size_t n) {
	if (n > LNF_LINE_MAX || !f->fn)
		return;
	f->fn(f->arg, s, n);
	f->shown++;
}

/* Does the whole line [s, s+n) hold a marker? */
static bool line_has(const lnf *f, const char *s, size_t n) {
	if (!f->nmarkers)
		return true;
	for (int i = 0; i < f->nmarkers; i++) {
		const char *m = f->marker[i];
		size_t ml = f->mlen[i];
		if (m[0] == '\n' ? n >= ml - 1 && !memcmp(s, m + 1, ml - 1)
		                 : n >= ml && memmem(s, n, m, ml))
			return true;
	}
	return false;
}

/* A line-start marker at s, a line's start whose '\n' is not in the block? */
static bool starts_marked(const lnf *f, const char *s, const char *end) {
	for (int i = 0; i < f->nmarkers; i++) {
		size_t ml = f->mlen[i];
		if (f->marker[i][0] == '\n' && (size_t)(end - s) >= ml - 1 &&
		    !memcmp(s, f->marker[i] + 1, ml - 1))
			return true;
	}
	return false;
}

/* Does a marker begin at q and end before `end`? */
static inline bool marked_at(const lnf *f, const char *q, const char *end) {
	for (int i = 0; i < f->nmarkers; i++)
		if (q[0] == f->marker[i][0] && (size_t)(end - q) >= f->mlen[i] &&
		    !memcmp(q, f->marker[i], f->mlen[i]))
			return true;
	return false;
}

/* The first q in [from, end) where a marker begins and ends before end. */
LF_CLONES static const char *next_mark(const lnf *f, const char *from, const char *end) {
	const char *s = from;
	if (end - s > 32) {
		lnf_v32 a[LNF_MARKERS_MAX], b[LNF_MARKERS_MAX];
		for (int i = 0; i < f->nmarkers; i++) {
			a[i] = (lnf_v32){0} + (unsigned char)f->marker[i][0];
			b[i] = (lnf_v32){0} + (unsigned char)f->marker[i][1];
		}
		for (; end - s > 32; s += 32) { /* bytes s[0..32]: s+1's load ends at s+33 <= end */
			lnf_v32 x, y;
			memcpy(&x, s, sizeof x);
			memcpy(&y, s + 1, sizeof y);
			lnf_v32 hit = (lnf_v32)((x == a[0]) & (y == b[0]));
			for (int i = 1; i < f->nmarkers; i++)
				hit |= (lnf_v32)((x == a[i]) & (y == b[i]));
			uint64_t w[4];
			memcpy(w, &hit, sizeof w);
			if (w[0] | w[1] | w[2] | w[3])
				for (int j = 0; j < 32; j++)
					if (marked_at(f, s + j, end))
						return s + j;
		}
	}
	for (; s < end; s++)
		if (marked_at(f, s, end))
			return s;
	return NULL;
}

/* [s, end): whole lines, s at a line's start, end[-1] == '\n'. */
static void whole_lines(lnf *f, const char *s, const char *end) {
	const char *nl;
	if (!f->nmarkers) {
		for (; s < end; s = nl + 1) {
			nl = memchr(s, '\n', (size_t)(end - s));
			show(f, s, (size_t)(nl - s));
		}
		return;
	}
	const char *block = s; /* the one line start with no '\n' before it */
	if (starts_marked(f, s, end)) {
		nl = memchr(s, '\n', (size_t)(end - s));
		show(f, s, (size_t)(nl - s));
		s = nl + 1;
	}
	while (s < end) {
		/* from the '\n' before s, so a line-start marker sees s's line */
		const char *q = next_mark(f, s > block ? s - 1 : s, end);
		if (!q)
			return;
		const char *ls;
		if (*q == '\n') {
			ls = q + 1;
		} else {
			ls = q > s ? memrchr(s, '\n', (size_t)(q - s)) : NULL;
			ls = ls ? ls + 1 : s;
		}
		nl = memchr(ls, '\n', (size_t)(end - ls));
		show(f, ls, (size_t)(nl - ls));
		s = nl + 1;
	}
}

static void carry(lnf *f, const char *p, size_t n) {
	if (!f->lskip && f->llen + n <= LNF_LINE_MAX) {
		memcpy(f->lbuf + f->llen, p, n);
		f->llen += n;
	} else {
		f->lskip = true;
	}
	f->mid = true;
}

static void finish_carried(lnf *f) {
	if (f->mid && !f->lskip && line_has(f, f->lbuf, f->llen))
		show(f, f->lbuf, f->llen);
	f->mid = f->lskip = false;
	f->llen = 0;
}

void lnf_feed(lnf *f, const char *p, size_t n) {
	const char *end = p + n;
	if (f->mid && n) {
		const char *nl = memchr(p, '\n', n);
		carry(f, p, (size_t)((nl ? nl : end) - p));
		if (!nl)
			return;
		finish_carried(f);
		p = nl + 1;
	}
	if (p == end)
		return;
	const char *last = memrchr(p, '\n', (size_t)(end - p));
	if (last) {
		whole_lines(f, p, last + 1);
		p = last + 1;
	}
	if (p < end)
		carry(f, p, (size_t)(end - p));
}

void lnf_end(lnf *f) {
	if (f->llen || f->lskip)
		finish_carried(f);
	f->mid = f->lskip = false;
	f->llen = 0;
}
