/* logfile.h — the CRI `k8s-file` container log (prefix lf_): the container's
 * stdout and stderr pipes written to one file, a record per line
 *
 *   2026-11-29T12:00:00.123456789Z stdout F hello
 *
 * as containerd's and cri-o's kubelet-facing logs are. Each pipe is read by
 * its own goroutine, records wait in a bounded buffer for one writer
 * goroutine. What a full buffer does is the operator's choice, as with
 * Docker's log drivers (mode=blocking|non-blocking, max-buffer-size):
 *
 *   LF_BLOCKING (the default) nothing is lost: the reader stops reading
 *             until the writer has made room, so the container waits in
 *             write(2) as on a plain pipe to the file — conmon's and
 *             Docker's json-file behaviour, and what `kubectl logs` needs.
 *   LF_NON_BLOCKING the container never waits for the file: a record that
 *             does not fit is dropped whole and counted. */
#ifndef MOONSHIM_LOGFILE_H
#define MOONSHIM_LOGFILE_H

#include "base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LF_STREAMS_MAX 2     /* CRI knows two streams: stdout and stderr */
#define LF_RECORD_MAX  16384 /* text bytes per record: containerd's max_container_log_line_size */
#define LF_TIME_MAX    36    /* "2006-01-02T15:04:05.999999999Z" and a NUL, with room to spare */
#define LF_BUFFER_MIN                                                                              \
	(1 << 16) /* smaller buffers are raised to this: it holds a few full records */

#define LF_BUFFER_DEFAULT (1 << 20) /* Docker's max-buffer-size default */

typedef struct lf_log lf_log;

typedef enum lf_mode {
	LF_BLOCKING = 0, /* a full buffer pauses the reading: nothing is lost */
	LF_NON_BLOCKING, /* a full buffer drops records, counted */
} lf_mode;

typedef struct lf_counts {
	uint64_t lines;           /* records accepted for the file (P and F) */
	uint64_t bytes;           /* text bytes in them (without header and newline) */
	uint64_t dropped_bytes;   /* text bytes dropped: the buffer was full (non-blocking) */
	uint64_t dropped_records; /* records dropped: the buffer was full (non-blocking) */
} lf_counts;

typedef struct lf_stats {
	lf_counts all;
	lf_counts stream[LF_STREAMS_MAX]; /* by the index lf_add_stream returned */
	uint64_t lost_bytes; /* accepted bytes a failed write threw away (headers included) */
	int write_error;     /* -errno of the first failed write, 0 if none */
} lf_stats;

/* Open (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0640) the log at `path` and
 * start its writer goroutine; buffer_bytes bounds the records waiting for
 * it (at least LF_BUFFER_MIN); mode says what a full buffer does. Call in a
 * goroutine. NULL on error. */
lf_log *lf_open(const char *path, size_t buffer_bytes, lf_mode mode, ms_err *err);

/* Log the read end `fd` of a pipe as `stream` ("stdout" or "stderr", a
 * string that outlives the log). Takes ownership of fd and starts its
 * reader goroutine. Returns the stream's index (0, 1) or -errno. */
int lf_add_stream(lf_log *l, int fd, const char *stream, ms_err *err);

/* In a goroutine: wait until every stream reached EOF, write what is
 * buffered, close the file and free l. Fills *out unless NULL. */
void lf_close(lf_log *l, lf_stats *out);

/* "blocking" or "non-blocking", optionally followed by ",max-buffer-size=SIZE"
 * (Docker's --log-opt names) into *mode and *buffer (left alone when not
 * given). `what` names the option in the message. 0 or -EINVAL. */
int lf_parse_mode(const char *what, const char *text, lf_mode *mode, size_t *buffer, ms_err *err);
/* A byte count: digits with an optional k, m or g suffix (powers of 1024,
 * as Docker's sizes), "b"/"ib" after it allowed, e.g. 4m, 512KiB. 0 or
 * -EINVAL (empty, 0, junk, overflow). */
int lf_parse_size(const char *text, size_t *out);

/* Format `ts` as Go's time.RFC3339Nano in UTC (fraction without trailing
 * zeros, none at all on a whole second) into buf; returns its length. */
size_t lf_format_time(const struct timespec *ts, char buf[LF_TIME_MAX]);

#endif
