/*
 * tap.h — a child's output stream passed through us (prefix tap_): the
 * read end of the child's pipe is drained without pause by one goroutine,
 * every byte goes on unchanged to the sink (our own stderr, or a pipe into
 * the log) — without a copy when both are pipes, else through a bounded
 * buffer and a second goroutine — and each whole line that holds one of
 * the caller's markers is shown to a callback on the way (the Go watcher
 * asks for SCHED and gc lines; linefind.h).
 *
 * The child never waits for us: Go's runtime writes SCHED lines while it
 * holds its scheduler lock, so a stalled reader would stall the whole
 * program. When the sink is slower than the child (a blocked terminal, a
 * full pipe), what does not fit in the buffer is dropped and counted —
 * never back-pressure.
 */
#ifndef MOONSHIM_TAP_H
#define MOONSHIM_TAP_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tap tap;

typedef struct tap_stats {
	uint64_t bytes_in;      /* read from the child */
	uint64_t bytes_out;     /* written to the sink */
	uint64_t bytes_dropped; /* the buffer was full, or the sink failed */
	uint64_t lines;         /* lines shown to the callback */
} tap_stats;

/* In a goroutine. Takes ownership of read_fd (closed at EOF); sink_fd is
 * borrowed (left open; its file status flags are restored). buffer: bytes
 * waiting for the sink at most. line(arg, text, len) is called on the
 * reader goroutine for each complete line (without the newline) that holds
 * one of markers (NULL: every line; linefind.h says how markers match and
 * which lines are too long to show); it must not block. NULL on error. */
tap *tap_start(int read_fd, int sink_fd, size_t buffer, const char *const *markers,
               void (*line)(void *arg, const char *text, size_t len), void *arg, ms_err *err);

/* In a goroutine: wait until the child's side reached EOF and the buffer
 * is written (or dropped, if the sink failed), fill *out unless NULL, free
 * t. */
void tap_wait(tap *t, tap_stats *out);

#endif
