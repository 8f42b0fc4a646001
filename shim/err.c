/* err.c — ms_err: recording and prefixing error messages. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
	snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
	return err->code;
}
