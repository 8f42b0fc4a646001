/*
 * linefind.h — the lines of a byte stream that contain a marker (prefix
 * lnf_). The stream arrives in chunks of any size; a line may span chunks.
 * Each line that holds one of the markers is shown to a callback, whole
 * and without its newline; the others are skipped without being looked at
 * one by one: a vector scan over each chunk looks for the markers' first
 * two bytes, so a log that never mentions them costs a fraction of a copy
 * (the stderr tap runs this on every byte a workload writes).
 *
 * A marker that begins with '\n' matches at a line's start only ("\ngc "
 * is a line beginning "gc "); any other marker matches anywhere in a line
 * ("SCHED " also finds a SCHED line written after a fragment of another).
 * With no markers every line is shown.
 */
#ifndef MOONSHIM_LINEFIND_H
#define MOONSHIM_LINEFIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LNF_LINE_MAX    4096 /* longer lines are skipped, never shown cut */
#define LNF_MARKERS_MAX 4
#define LNF_MARKER_MAX  32

typedef void (*lnf_fn)(void *arg, const char *text, size_t len);

typedef struct lnf {
	int nmarkers;
	char marker[LNF_MARKERS_MAX][LNF_MARKER_MAX];
	size_t mlen[LNF_MARKERS_MAX];
	lnf_fn fn;
	void *arg;
	bool mid;   /* inside a line begun in an earlier chunk */
	bool lskip; /* ... which is longer than LNF_LINE_MAX */
	size_t llen;
	uint64_t shown; /* lines shown to fn */
	char lbuf[LNF_LINE_MAX];
} lnf;

/* markers: NULL-terminated, each 2..LNF_MARKER_MAX-1 bytes, at most
 * LNF_MARKERS_MAX; NULL for every line. -EINVAL on a bad marker list. */
int lnf_init(lnf *f, const char *const *markers, lnf_fn fn, void *arg);
/* The next n bytes of the stream. */
void lnf_feed(lnf *f, const char *p, size_t n);
/* The stream ended: a last line without its newline is shown too. */
void lnf_end(lnf *f);

#endif
