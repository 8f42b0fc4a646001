/*
 * tap.h — a child's output stream passed through us (prefix tap_): the
 * read end of the child's pipe is drained without pause by one goroutine,
 * every byte goes on unchanged to the sink (our own stderr, or a pipe into
 * the log) through a bounded buffer and a second goroutine, and each whole
 * line is shown to a callback on the way (the Go watcher picks SCHED and
 * gc lines out of it).
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

#define TAP_LINE_MAX 4096 /* longer lines pass through but are not shown to the callback */

typedef struct tap tap;

typedef struct tap_stats {
	uint64_t bytes_in;      /* read from the child */
	uint64_t bytes_out;     /* written to the sink */
	uint64_t bytes_dropped; /* the buffer was full, or the sink failed */
	uint64_t lines;         /* whole lines shown to the callback */
} tap_stats;

/* In a goroutine. Takes ownership of read_fd (closed at EOF); sink_fd is
 * borrowed (left open; its file status flags are restored). buffer: bytes
 * waiting for the sink at most. line(arg, text, len) is called on the
 * reader goroutine for each complete line (without the newline); it must
 * not block. NULL on error. */
tap *tap_start(int read_fd, int sink_fd, size_t buffer,
               void (*line)(void *arg, const char *text, size_t len), void *arg, ms_err *err);

/* In a goroutine: wait until the child's side reached EOF and the buffer
 * is written (or dropped, if the sink failed), fill *out unless NULL, free
 * t. */
void tap_wait(tap *t, tap_stats *out);

#endif
