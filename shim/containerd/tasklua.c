/* tasklua.c — checks and policies for a containerd task, from annotations. */
#define _GNU_SOURCE
#include "tasklua.h"

#include "luaengine.h"
#include "io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tl_lua {
	lw_world *w;
	hk_checks *checks;
	pl_engine *policies;
	ev_log *log;
	int netns_fd;
	la_container ct; /* exec.container's target */
};

static void to_log(void *arg, const char *type, json_t *fields) {
	ev_emit(((tl_lua *)arg)->log, type, fields);
}

static void health_event(void *arg, const char *type, json_t *fields) {
	tl_lua *l = arg;
	pl_dispatch(l->policies, type, fields);
	ev_emit(l->log, type, fields);
}

/* The annotation's script: a path to a file, or Lua text. */
static int load_script(tl_lua *l, const spec *s, const char *annotation, const char *fallback) {
	const char *v = json_string_value(json_object_get(s->annotations, annotation));
	struct stat st;
	ms_err err = {0};
	int rc;
	if (v && v[0] == '/' && !strchr(v, '\n') && stat(v, &st) == 0)
		rc = lw_load_file(l->w, v, &err);
	else if (v)
		rc = lw_load(l->w, annotation, v, strlen(v), &err);
	else if (stat(fallback, &st) == 0)
		rc = lw_load_file(l->w, fallback, &err);
	else
		return 0;
	if (rc)
		ev_emit(l->log, "error",
		        json_pack("{s:s, s:s}", "script", v ? annotation : fallback, "message",
		                  err.msg));
	return 1;
}

static bool wanted(const spec *s, const char *annotation, const char *fallback) {
	struct stat st;
	return json_object_get(s->annotations, annotation) || stat(fallback, &st) == 0;
}

tl_lua *tl_start(const la_container *ct, const char *id, cg *cgroup, int pidfd) {
	const spec *s = ct->s;
	pid_t pid = ct->init_pid;
	const char *checks_file = TL_DEFAULT_DIR "/checks.lua",
	           *policy_file = TL_DEFAULT_DIR "/policy.lua";
	if (!wanted(s, TL_CHECKS_ANNOTATION, checks_file) &&
	    !wanted(s, TL_POLICY_ANNOTATION, policy_file))
		return NULL;
	tl_lua *l = calloc(1, sizeof *l);
	ms_err err = {0};
	lw_config lc = {.name = id};
	if (!l || !(l->w = lw_new(&lc, &err))) {
		free(l);
		return NULL;
	}
	l->log = ev_open("/proc/self/fd/2", id, &err);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
	l->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
	la_set_netns(l->w, l->netns_fd);
	l->ct = *ct;
	la_set_container(l->w, &l->ct);
	la_open(l->w);
	pl_env env = {.cgroup = cgroup, .pid = pid, .pidfd = pidfd, .emit = to_log, .emit_arg = l};
	l->policies = pl_new(l->w, &env);
	l->checks = hk_new(l->w, health_event, l);
	load_script(l, s, TL_POLICY_ANNOTATION, policy_file);
	load_script(l, s, TL_CHECKS_ANNOTATION, checks_file);
	if (hk_start(l->checks, &err))
		ev_emit(l->log, "error", json_pack("{s:s}", "message", err.msg));
	return l;
}

int tl_psi_rules(tl_lua *l, cg_psi_spec *out, int max) {
	return l ? pl_psi_rules(l->policies, out, max) : 0;
}

void tl_emit(tl_lua *l, const char *id, const char *type, json_t *fields) {
	if (l) {
		pl_dispatch(l->policies, type, fields);
		ev_emit(l->log, type, fields);
		return;
	}
	/* no Lua here: the shim's log (stderr) alone, one JSON line */
	json_object_set_new(fields, "id", json_string(id));
	json_object_set_new(fields, "type", json_string(type));
	char *line = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
	if (line)
		fprintf(stderr, "%s\n", line);
	free(line);
	json_decref(fields);
}

void tl_dispatch(tl_lua *l, const char *type, json_t *fields) {
	if (l)
		pl_dispatch(l->policies, type, fields);
}

void tl_stop(tl_lua *l, int exit_status) {
	if (!l)
		return;
	lw_stop_tasks(l->w); /* go() tasks and waits on sleep or channels end */
	hk_stop(l->checks);
	json_t *f = json_pack("{s:i}", "exit_status", exit_status);
	pl_dispatch(l->policies, "exit", f);
	json_decref(f);
	pl_stop(l->policies);
	lw_free(l->w);
	ev_close(l->log);
	if (l->netns_fd >= 0)
		close(l->netns_fd);
	free(l);
}
