/*
 * linefind.h — the lines of a byte stream that contain a marker (prefix
 * lf_). The stream arrives in chunks of any size; a line may span chunks.
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

#define LF_LINE_MAX    4096 /* longer lines are skipped, never shown cut */
#define LF_MARKERS_MAX 4
#define LF_MARKER_MAX  32

typedef void (*lf_fn)(void *arg, const char *text, size_t len);

typedef struct lf {
	int nmarkers;
	char marker[LF_MARKERS_MAX][LF_MARKER_MAX];
	size_t mlen[LF_MARKERS_MAX];
	lf_fn fn;
	void *arg;
	bool mid;   /* inside a line begun in an earlier chunk */
	bool lskip; /* ... which is longer than LF_LINE_MAX */
	size_t llen;
	uint64_t shown; /* lines shown to fn */
	char lbuf[LF_LINE_MAX];
} lf;

/* markers: NULL-terminated, each 2..LF_MARKER_MAX-1 bytes, at most
 * LF_MARKERS_MAX; NULL for every line. -EINVAL on a bad marker list. */
int lf_init(lf *f, const char *const *markers, lf_fn fn, void *arg);
/* The next n bytes of the stream. */
void lf_feed(lf *f, const char *p, size_t n);
/* The stream ended: a last line without its newline is shown too. */
void lf_end(lf *f);

#endif
