/*
 * tap.h — a child's output stream passed through us (prefix tap_): the
 * read end of the child's pipe is read by one goroutine, every byte goes
 * on unchanged and in order to the sink (our own stderr, a file, or a pipe
 * into the log) — without a copy when both are pipes (tee), straight from
 * the read buffer when the sink takes it, else through a bounded buffer
 * and a second goroutine — and each whole line that holds one of the
 * caller's markers is shown to a callback on the way (the Go watcher asks
 * for SCHED and gc lines; linefind.h).
 *
 * Two modes, as Docker's log drivers have (mode=blocking|non-blocking):
 *
 *   TAP_LOSSLESS (the default) nothing is lost. When the buffer is full
 *             the reader stops reading, so the child waits in write(2)
 *             exactly as it would on a plain pipe to that sink, and goes
 *             on as soon as the sink drains.
 *   TAP_DROP  the child never waits for the sink: what does not fit in the
 *             buffer is dropped and counted (bytes_dropped).
 *
 * Why lossless is safe for a Go child: Go's runtime writes SCHED lines
 * while it holds its scheduler lock, so a reader that stopped for its own
 * reasons would stall the whole program. This reader never does: it stops
 * only while the sink itself accepts no bytes — the same wait the child
 * would have on a plain pipe to that sink, no longer — and the buffer (and
 * the child's pipe, grown to 1 MiB) absorbs bursts before that. A sink
 * that takes bytes as fast as they come (a file, /dev/null, a drained
 * pipe) sees every byte and the child never waits. Only an operator who
 * would rather lose output than ever stall the child picks TAP_DROP.
 */
#ifndef MOONSHIM_TAP_H
#define MOONSHIM_TAP_H

#include "base.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tap tap;

typedef enum tap_mode {
	TAP_LOSSLESS = 0, /* a full buffer pauses the reading: the child waits, nothing is lost */
	TAP_DROP,         /* a full buffer drops the new bytes, counted: the child never waits */
} tap_mode;

typedef struct tap_stats {
	uint64_t bytes_in;      /* read from the child */
	uint64_t bytes_out;     /* written to the sink */
	uint64_t bytes_dropped; /* TAP_DROP's full buffer, or the sink failed or was given up */
	uint64_t lines;         /* lines shown to the callback */
} tap_stats;

/* In a goroutine. Takes ownership of read_fd (closed at EOF); sink_fd is
 * borrowed (left open; its file status flags are restored). buffer: bytes
 * waiting for the sink at most (at least 64 KiB); mode: what a full
 * buffer does (above). line(arg, text, len) is called on the
 * reader goroutine for each complete line (without the newline) that holds
 * one of markers (NULL: every line; linefind.h says how markers match and
 * which lines are too long to show); it must not block. NULL on error. */
tap *tap_start(int read_fd, int sink_fd, size_t buffer, tap_mode mode, const char *const *markers,
               void (*line)(void *arg, const char *text, size_t len), void *arg, ms_err *err);

/* In a goroutine, once the child is gone: wait until the child's side
 * reached EOF and the buffer is written, fill *out unless NULL, free t.
 * A pipe or socket sink that takes nothing for 5 s in a row is given up
 * on (the rest is dropped and counted), so we never hang on a reader that
 * stopped; a sink that still moves, however slowly, gets everything. */
void tap_wait(tap *t, tap_stats *out);

#endif
