/* err.c — ms_err: recording and prefixing error messages. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int ms_fail(ms_err *err, int code, const char *fmt, ...) {
	if (!err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	err->code = code;
	return code;
}

int ms_wrap(ms_err *err, const char *fmt, ...) {
	if (!err)
		return 0;
	char prefix[sizeof err->msg], old[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	size_t n = strlen(prefix);
	if (n + 2 < sizeof err->msg) {
		memcpy(err->msg, prefix, n);
		memcpy(err->msg + n, ": ", 2);
		n += 2;
		size_t rest = strnlen(old, sizeof old - 1);
		if (rest > sizeof err->msg - 1 - n)
			rest = sizeof err->msg - 1 - n;
		memcpy(err->msg + n, old, rest);
		err->msg[n + rest] = 0;
	}
	return err->code;
}

void ms_trace(bool on, const char *fmt, ...) {
	if (!on)
		return;
	static struct timespec t0;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!t0.tv_sec && !t0.tv_nsec)
		t0 = now;
	double ms =
	    (double)(now.tv_sec - t0.tv_sec) * 1e3 + (double)(now.tv_nsec - t0.tv_nsec) / 1e6;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "moonshim: +%.3fms %s\n", ms, msg);
}
