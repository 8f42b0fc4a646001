/* events_test.c — the event stream's observers (shim/io/events.c): each
 * sees every event after it was written, whole (time, id, type, fields)
 * and as the very line the file got, in the stream's order, also when no
 * file is given; at most EV_OBSERVERS. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES_MAX 8

typedef struct {
	int n;
	char types[LINES_MAX][32];
	char *lines[LINES_MAX];
	json_int_t values[LINES_MAX]; /* the event's "n" field */
	char ids[LINES_MAX][32];
} seen;

static void observe(void *arg, const char *type, json_t *event, const char *line, size_t len) {
	seen *s = arg;
	if (s->n == LINES_MAX)
		return;
	snprintf(s->types[s->n], sizeof s->types[s->n], "%s", type);
	s->lines[s->n] = strndup(line, len);
	s->values[s->n] = json_integer_value(json_object_get(event, "n"));
	snprintf(s->ids[s->n], sizeof s->ids[s->n], "%s",
	         json_string_value(json_object_get(event, "id")));
	s->n++;
}

static void seen_free(seen *s) {
	for (int i = 0; i < s->n; i++)
		free(s->lines[i]);
}

static int observers_main(void *arg) {
	char path[] = "/tmp/moonshim-events-test.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	ms_err err = {0};
	ev_log *l = ev_open(path, "ctr1", &err);
	CHECKF(l, "%s", err.msg);
	seen a = {0}, b = {0};
	CHECK(ev_observe(l, observe, &a) == 0 && ev_observe(l, observe, &b) == 0);
	ev_emit(l, "health", json_pack("{s:i, s:s}", "n", 1, "to", "unhealthy"));
	ev_emit(l, "error", json_pack("{s:i}", "n", 2));
	ev_emit(l, "exit", NULL);
	ev_close(l);
	CHECK(a.n == 3 && b.n == 3);
	CHECK(!strcmp(a.types[0], "health") && !strcmp(a.types[1], "error") &&
	      !strcmp(a.types[2], "exit"));
	CHECK(a.values[0] == 1 && a.values[1] == 2 && !strcmp(a.ids[0], "ctr1"));
	/* each observer saw the file's lines, byte for byte */
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	CHECK(n > 0);
	buf[n] = 0;
	char *save, *line = strtok_r(buf, "\n", &save);
	for (int i = 0; i < 3; i++, line = strtok_r(NULL, "\n", &save)) {
		CHECKF(line && !strcmp(line, a.lines[i]) && !strcmp(line, b.lines[i]),
		       "line %d: file %s, observer %s", i, line ? line : "(none)", a.lines[i]);
		CHECK(strstr(line, "\"id\":\"ctr1\"") && strstr(line, "\"time\":\""));
	}
	CHECK(!line);
	close(fd);
	unlink(path);
	seen_free(&a);
	seen_free(&b);
	return 0;
}

TEST(events_observers_see_every_line_in_order) {
	run_rt(1, observers_main, NULL);
}

/* No --events file: a log with an observer is enabled and the observer
 * sees its events; one without drops them. EV_OBSERVERS is the limit. */
static int sink_main(void *arg) {
	ms_err err = {0};
	ev_log *l = ev_open(NULL, "ctr2", &err);
	CHECK(l && !ev_enabled(l));
	seen s = {0};
	ev_emit(l, "dropped", json_pack("{s:i}", "n", 0));
	for (int i = 0; i < EV_OBSERVERS; i++)
		CHECK(ev_observe(l, observe, &s) == 0);
	CHECK(ev_observe(l, observe, &s) == -ENOSPC);
	CHECK(ev_enabled(l));
	ev_emit(l, "go.goroutine_leak", json_pack("{s:i}", "n", 7));
	CHECK(s.n == EV_OBSERVERS);
	for (int i = 0; i < s.n; i++)
		CHECK(!strcmp(s.types[i], "go.goroutine_leak") && s.values[i] == 7 &&
		      strstr(s.lines[i], "\"type\":\"go.goroutine_leak\""));
	ev_close(l);
	seen_free(&s);
	return 0;
}

TEST(events_observed_without_a_file) {
	run_rt(1, sink_main, NULL);
}
