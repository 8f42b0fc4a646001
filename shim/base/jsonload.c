/*
 * jsonload.c — JSON from outside, parsed only after a linear scan proved
 * it nests at most JL_MAX_DEPTH deep (see jsonload.h for why).
 *
 * Invariant: nothing here recurses, and jansson is handed only input whose
 * nesting, and so its parser's recursion, is bounded.
 */
#define _GNU_SOURCE
#include "jsonload.h"

#include "fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JL_FILE_MAX (64u << 20) /* a config or process file larger than this is a mistake */

int jl_depth(const char *buf, size_t len) {
	int depth = 0, max = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (in_str) {
			if (c == '\\')
				i++; /* the escaped character, whatever it is */
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max && (max = depth) > JL_MAX_DEPTH)
				return JL_MAX_DEPTH + 1;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

json_t *jl_loadb(const char *buf, size_t len, size_t flags, const char *what, ms_err *err) {
	if (jl_depth(buf, len) > JL_MAX_DEPTH) {
		ms_fail(err, -EINVAL, "%s: JSON nested deeper than %d levels", what, JL_MAX_DEPTH);
		return NULL;
	}
	json_error_t je;
	json_t *j = json_loadb(buf, len, flags, &je);
	if (!j)
		ms_fail(err, -EINVAL, "%s: line %d, column %d: %s", what, je.line, je.column,
		        je.text);
	return j;
}

json_t *jl_load_file(const char *path, size_t flags, ms_err *err) {
	size_t len;
	char *buf = fs_read_file(path, JL_FILE_MAX, &len, err);
	if (!buf)
		return NULL;
	json_t *j = jl_loadb(buf, len, flags, path, err);
	free(buf);
	return j;
}
