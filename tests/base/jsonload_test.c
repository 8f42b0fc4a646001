/*
 * jsonload_test.c — the bounded JSON loader (shim/base/jsonload.c) on a
 * goroutine's own small stack, where jansson's recursive parser overflowed
 * at 800 levels: deep input is refused with one message naming the input
 * and the limit; brackets inside strings do not count; the limit itself
 * parses.
 */
#include "harness.h"

#include "../../shim/base/jsonload.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* n arrays inside each other, optionally inside a string */
static char *nested(int n, const char *pre, const char *post) {
	size_t lp = strlen(pre), lq = strlen(post);
	char *s = malloc(lp + 2 * (size_t)n + lq + 1);
	memcpy(s, pre, lp);
	memset(s + lp, '[', (size_t)n);
	memset(s + lp + n, ']', (size_t)n);
	memcpy(s + lp + 2 * (size_t)n, post, lq + 1);
	return s;
}

static int deep_main(void *arg) {
	ms_err err = {0};
	/* containerd's Exec with 800 levels in its process spec */
	char *s = nested(800, "{\"args\": [\"true\"], \"x\": ", "}");
	CHECK(jl_depth(s, strlen(s)) == JL_MAX_DEPTH + 1);
	CHECK(jl_loadb(s, strlen(s), 0, "process spec", &err) == NULL);
	CHECKF(!strcmp(err.msg, "process spec: JSON nested deeper than 64 levels"), "%s", err.msg);
	free(s);
	/* the 5,000 `[` of a hostile HTTP body, unclosed */
	char open[5000];
	memset(open, '[', sizeof open);
	memset(&err, 0, sizeof err);
	CHECK(jl_loadb(open, sizeof open, JSON_DECODE_ANY, "json.decode", &err) == NULL);
	CHECKF(strstr(err.msg, "nested deeper than 64") != NULL, "%s", err.msg);
	/* the limit parses; one more is refused */
	s = nested(JL_MAX_DEPTH, "", "");
	json_t *j = jl_loadb(s, strlen(s), 0, "at the limit", &err);
	CHECK(j != NULL);
	json_decref(j);
	free(s);
	s = nested(JL_MAX_DEPTH + 1, "", "");
	CHECK(jl_loadb(s, strlen(s), 0, "past it", &err) == NULL);
	free(s);
	/* brackets in strings, with an escaped quote before them, are text */
	s = nested(1000, "[\"\\\"", "\"]");
	memset(&err, 0, sizeof err);
	j = jl_loadb(s, strlen(s), 0, "in a string", &err);
	CHECKF(j && json_string_length(json_array_get(j, 0)) == 2001, "%s", err.msg);
	json_decref(j);
	free(s);
	/* a malformed one still says where */
	CHECK(jl_loadb("{\"a\":", 5, 0, "short", &err) == NULL);
	CHECKF(!strncmp(err.msg, "short: line 1, column", 21), "%s", err.msg);
	/* a file: the message names it */
	char path[] = "/tmp/jsonload-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	s = nested(800, "{\"process\": ", "}");
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
	close(fd);
	free(s);
	CHECK(jl_load_file(path, 0, &err) == NULL);
	CHECKF(strstr(err.msg, path) && strstr(err.msg, "JSON nested deeper than 64 levels"), "%s",
	       err.msg);
	unlink(path);
	return 0;
}

TEST(jsonload_refuses_deep_nesting_on_a_goroutine_stack) {
	run_rt(1, deep_main, NULL);
}
