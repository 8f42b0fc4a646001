/*
 * parse.c — the kernel's cgroup text formats: pressure files and
 * "key value" files. Every rejection names the line that was wrong.
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parse "avg10=0.12 avg60=0.00 avg300=0.00 total=1234". */
static bool parse_pressure_fields(const char *s, cg_pressure_line *l) {
	char *end;
	if (strncmp(s, "avg10=", 6))
		return false;
	l->avg10 = strtod(s + 6, &end);
	if (strncmp(end, " avg60=", 7))
		return false;
	l->avg60 = strtod(end + 7, &end);
	if (strncmp(end, " avg300=", 8))
		return false;
	l->avg300 = strtod(end + 8, &end);
	if (strncmp(end, " total=", 7))
		return false;
	const char *t = end + 7;
	if (*t < '0' || *t > '9')
		return false;
	l->total = strtoull(t, &end, 10);
	l->present = true;
	return *end == 0 || *end == '\n';
}

int cg_parse_pressure(const char *text, cg_pressure *out, cg_err *err) {
	memset(out, 0, sizeof *out);
	const char *line = text;
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[256];
		if (len >= sizeof buf) {
			cg__err(err, -EINVAL, "pressure line too long: %.40s...", line);
			return -EINVAL;
		}
		memcpy(buf, line, len);
		buf[len] = 0;
		cg_pressure_line *l = !strncmp(buf, "some ", 5)   ? &out->some
		                      : !strncmp(buf, "full ", 5) ? &out->full
		                                                  : NULL;
		if (len && (!l || !parse_pressure_fields(buf + 5, l))) {
			cg__err(err, -EINVAL, "malformed pressure line: \"%s\"", buf);
			return -EINVAL;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (!out->some.present) {
		cg__err(err, -EINVAL, "pressure text has no \"some\" line");
		return -EINVAL;
	}
	return 0;
}

int cg_parse_kv(const char *text, const char *key, int64_t *value, cg_err *err) {
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		const char *sp = strchr(line, ' ');
		if (!sp || (nl && sp > nl)) {
			cg__err(err, -EINVAL, "malformed \"key value\" line: \"%.*s\"",
			        (int)(nl ? nl - line : (long)strlen(line)), line);
			return -EINVAL;
		}
		if ((size_t)(sp - line) == klen && !strncmp(line, key, klen)) {
			char *end;
			errno = 0;
			long long v = strtoll(sp + 1, &end, 10);
			if (end == sp + 1 || errno || (*end && *end != '\n')) {
				cg__err(err, -EINVAL, "bad value for %s: \"%.*s\"", key,
				        (int)strcspn(sp + 1, "\n"), sp + 1);
				return -EINVAL;
			}
			*value = v;
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	cg__err(err, -ENOENT, "no \"%s\" line", key);
	return -ENOENT;
}
