/* err.h — the shim's error value (prefix ms_): a negative errno and one
 * message that names what was wrong (the JSON path, the file, the syscall),
 * carried up to the CLI, which prints it once. */
#ifndef MOONSHIM_ERR_H
#define MOONSHIM_ERR_H

#include <stdbool.h>

typedef struct ms_err {
	int code; /* -errno, 0 when no error was recorded */
	char msg[1024];
} ms_err;

/* Record code (a negative errno) and a message; returns code, so a caller
 * can write `return ms_fail(err, -EINVAL, "...")`. A NULL err is allowed. */
int ms_fail(ms_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix the message already in err with "fmt: " (context from a caller). */
int ms_wrap(ms_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --debug: "moonshim: +12.345ms what" on stderr when on; the time is since
 * the process started, so a trace shows where a run spends it. */
void ms_trace(bool on, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
