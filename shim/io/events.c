/* events.c — the JSON-lines event stream and the shape of cgroup events. */
#define _GNU_SOURCE
#include "events.h"
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ev_log {
	int fd; /* -1: drop */
	char *id;
	char *path;  /* --events, for the one message a failed write gets */
	bool failed; /* a write failed (said once on stderr; the stream cannot) */
	rt_mutex mu;
	int nobs;
	struct {
		ev_observer fn;
		void *arg;
	} obs[EV_OBSERVERS];
};

ev_log *ev_open(const char *path, const char *id, ms_err *err) {
	ev_log *l = calloc(1, sizeof *l);
	if (!l || !(l->id = strdup(id)) || (path && !(l->path = strdup(path)))) {
		if (l)
			free(l->id);
		free(l);
		ms_fail(err, -ENOMEM, "out of memory");
		return NULL;
	}
	l->fd = -1;
	l->mu = (rt_mutex)RT_MUTEX_INIT;
	if (path && (l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		ms_fail(err, -errno, "--events %s: %s", path, strerror(errno));
		free(l->path);
		free(l->id);
		free(l);
		return NULL;
	}
	return l;
}

void ev_time(char *buf, size_t n) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char t[LF_TIME_MAX];
	lf_format_time(&ts, t);
	snprintf(buf, n, "%s", t);
}

/* 0, or -errno (a short write is -EIO); errno read before any park. */
__attribute__((noinline)) static int write_line(int fd, const char *s, size_t n) {
	ssize_t w = write(fd, s, n);
	return w == (ssize_t)n ? 0 : w < 0 ? -errno : -EIO;
}

int ev_observe(ev_log *l, ev_observer fn, void *arg) {
	if (l->nobs == EV_OBSERVERS)
		return -ENOSPC;
	l->obs[l->nobs].fn = fn;
	l->obs[l->nobs++].arg = arg;
	return 0;
}

void ev_emit(ev_log *l, const char *type, json_t *fields) {
	if (!ev_enabled(l)) {
		json_decref(fields);
		return;
	}
	char when[48];
	ev_time(when, sizeof when);
	json_t *j = json_pack("{s:s, s:s, s:s}", "time", when, "id", l->id, "type", type);
	if (fields)
		json_object_update(j, fields);
	json_decref(fields);
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!s) {
		json_decref(j);
		return;
	}
	size_t len = strlen(s);
	s[len] = '\n'; /* json_dumps' NUL becomes the line end */
	rt_mutex_lock(&l->mu);
	/* one write per line: O_APPEND keeps concurrent writers' lines whole */
	int e = l->fd >= 0 ? write_line(l->fd, s, len + 1) : 0;
	for (int i = 0; i < l->nobs; i++)
		l->obs[i].fn(l->obs[i].arg, type, j, s, len);
	json_decref(j);
	if (e && !l->failed) {
		l->failed = true;
		fprintf(stderr, "moonshim: --events %s: writing: %s (events are lost)\n", l->path,
		        strerror(-e));
	}
	rt_mutex_unlock(&l->mu);
	free(s);
}

bool ev_enabled(const ev_log *l) {
	return l && (l->fd >= 0 || l->nobs);
}

bool ev_written(const ev_log *l) {
	return l && l->fd >= 0;
}

void ev_close(ev_log *l) {
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->id);
	free(l);
}

json_t *ev_memory_events_json(const cg_memory_events *e) {
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "low", (json_int_t)e->low, "high",
	                 (json_int_t)e->high, "max", (json_int_t)e->max, "oom", (json_int_t)e->oom,
	                 "oom_kill", (json_int_t)e->oom_kill, "oom_group_kill",
	                 (json_int_t)e->oom_group_kill);
}

const char *ev_cgroup_type(const cg_event *e) {
	if (e->kind != CG_EV_MEMORY)
		return cg_event_name(e->kind);
	/* the most serious counter that moved names the event */
	const cg_memory_events *d = &e->mem.delta;
	return d->oom_kill || d->oom_group_kill ? "oom_kill"
	       : d->oom                         ? "oom"
	       : d->max                         ? "memory.max"
	       : d->high                        ? "memory.high"
	       : d->low                         ? "memory.low"
	                                        : "memory";
}

json_t *ev_cgroup_fields(const cg_event *e) {
	switch (e->kind) {
	case CG_EV_POPULATED:
	case CG_EV_FROZEN:
		return json_pack("{s:i}", "value", e->value);
	case CG_EV_MEMORY:
		return json_pack("{s:o, s:o}", "delta", ev_memory_events_json(&e->mem.delta),
		                 "total", ev_memory_events_json(&e->mem.total));
	case CG_EV_PRESSURE: {
		char rule[64];
		cg_psi_format(&e->psi.spec, rule, sizeof rule);
		json_t *j = json_pack(
		    "{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "rule", rule, "resource",
		    cg_resource_name(e->psi.spec.res), "kind", e->psi.spec.full ? "full" : "some",
		    "mode", e->psi.mode == CG_PSI_TRIGGER ? "trigger" : "poll", "stall_us",
		    (json_int_t)e->psi.stall_us, "window_us", (json_int_t)e->psi.window_us,
		    "threshold_us", (json_int_t)e->psi.spec.threshold_us);
		if (e->psi.mode == CG_PSI_TRIGGER)
			json_object_set_new(j, "trigger_window_us",
			                    json_integer(e->psi.used_window_us));
		return j;
	}
	default:
		return json_pack("{s:s}", "message", e->msg);
	}
}
