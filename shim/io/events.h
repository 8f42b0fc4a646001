/*
 * events.h — the container event stream (prefix ev_): one JSON object per
 * line, {"time": RFC3339 with nanoseconds, "id": container, "type": ...,
 * fields...}, appended to the --events file. Types so far: "start",
 * "restart", "exit", the cgroup watcher's ("populated", "frozen", "memory.high",
 * "memory.max", "oom", "oom_kill", "pressure", "notice", "error", "gone"),
 * "warning". Writers may be several goroutines; lines never interleave.
 */
#ifndef MOONSHIM_EVENTS_H
#define MOONSHIM_EVENTS_H

#include <jansson.h>
#include <stdbool.h>

#include "cgroup.h"
#include "base.h"

typedef struct ev_log ev_log;

/* path NULL: a sink that drops everything (no --events given). */
ev_log *ev_open(const char *path, const char *id, ms_err *err);
/* Write one event; fields (may be NULL) is consumed. */
void ev_emit(ev_log *l, const char *type, json_t *fields);
void ev_close(ev_log *l);
/* Whether events go anywhere (a file was given, or someone observes). */
bool ev_enabled(const ev_log *l);
/* Whether they go to a file or stream someone reads as it comes (not only
 * to observers). */
bool ev_written(const ev_log *l);

/* An observer sees every event after it was written: its type, the whole
 * event object (borrowed: time, id, type, fields) and its line: len
 * bytes, then its newline (line[len] == '\n': a writer takes len + 1). It runs on the emitter's
 * goroutine, under the log's lock (events reach it in order): it must be quick and must not emit.
 * At most EV_OBSERVERS; add them before the log is shared. */
#define EV_OBSERVERS 4
typedef void (*ev_observer)(void *arg, const char *type, json_t *event, const char *line,
                            size_t len);
int ev_observe(ev_log *l, ev_observer fn, void *arg);

/* The type of a cgroup event and its fields, as the stream and `moonshim
 * watch` print them. */
const char *ev_cgroup_type(const cg_event *e);
json_t *ev_cgroup_fields(const cg_event *e);
json_t *ev_memory_events_json(const cg_memory_events *e);

/* RFC 3339 UTC with nanoseconds, trailing zeros trimmed (Go's
 * time.RFC3339Nano), e.g. "2026-11-29T12:00:00.5Z". */
void ev_time(char *buf, size_t n);

#endif
