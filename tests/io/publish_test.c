/* publish_test.c — what a supervisor publishes (publish.h): events counted
 * by type, policy actions and the ladder's step, workload Go findings
 * (not the watch's summary, not moonshim's own), errors by script, the last
 * five of each; a computed section merged beside the counted one and its
 * last value kept once withdrawn; a change written within the period, a
 * whole document on disk at every moment; the journal rotated at its cap;
 * the readers' scan at both depths, live only with the right start time,
 * a torn or hostile status.json skipped. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/events.h"
#include "../../shim/io/publish.h"
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void tmp_dir(char *buf, size_t n, const char *name) {
	snprintf(buf, n, "/tmp/moonshim-pb-%d-%s", getpid(), name);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
	CHECK(system(cmd) == 0);
}

static json_t *load_status(const char *dir) {
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, PB_STATUS);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	CHECKF(j, "%s: %s", path, je.text);
	return j;
}

static json_int_t at(json_t *j, const char *path) {
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *save, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
		j = json_object_get(j, k);
	return json_integer_value(j);
}

typedef struct {
	int calls;
	json_int_t value;
} provider;

static json_t *provide_go(void *arg) {
	provider *p = arg;
	p->calls++;
	return json_pack("{s:{s:I}}", "sched", "gomaxprocs", p->value);
}

static int counting_main(void *arg) {
	char dir[PATH_MAX];
	tmp_dir(dir, sizeof dir, "count");
	ms_err err = {0};
	pb *p = pb_open(dir, json_pack("{s:s, s:s}", "id", "c1", "mode", "run"), &err);
	CHECKF(p, "%s", err.msg);
	ev_log *l = ev_open(NULL, "c1", &err);
	CHECK(l && !ev_enabled(l));
	pb_observe(p, l);
	CHECK(ev_enabled(l) && !ev_written(l));
	provider pv = {.value = 4};
	pb_provide(p, "go", provide_go, &pv);
	pb_start(p);
	for (int i = 1; i <= 7; i++)
		ev_emit(l, "policy.action",
		        json_pack("{s:s, s:i}", "action", i < 7 ? "reclaim" : "kill", "step", i));
	ev_emit(l, "go.goroutine_leak", json_pack("{s:s}", "site", "main.leak"));
	ev_emit(l, "go.sched_anomaly", json_pack("{s:s}", "subject", "moonshim")); /* ours */
	ev_emit(l, "go.watch", json_pack("{s:i}", "scrapes", 3));                  /* a summary */
	for (int i = 0; i < 8; i++)
		ev_emit(l, "error",
		        json_pack("{s:s, s:i}", "script", i % 2 ? "a.lua" : "b.lua", "n", i));
	ev_emit(l, "error", json_pack("{s:s}", "message", "no script"));
	ev_emit(l, "error", json_pack("{s:s, s:i}", "script", "c.lua", "suppressed", 5));
	for (int i = 0; i < 100; i++) { /* invented types: the count table stays bounded */
		char type[32];
		snprintf(type, sizeof type, "made.up.%d", i);
		ev_emit(l, type, NULL);
	}
	/* the change is written within a period (1 s), not at the 10 s refresh */
	int64_t t0 = rt_now();
	json_t *j = NULL;
	while (rt_now() - t0 < 3 * RT_SECOND) {
		rt_sleep(100 * RT_MILLISECOND);
		json_decref(j);
		j = load_status(dir);
		if (at(j, "errors.count") == 15)
			break;
	}
	CHECKF(at(j, "errors.count") == 15, "errors.count %lld after %lld ms",
	       (long long)at(j, "errors.count"), (long long)((rt_now() - t0) / RT_MILLISECOND));
	CHECK(at(j, "version") == PB_VERSION);
	CHECK(json_integer_value(json_object_get(json_object_get(j, "events"), "policy.action")) ==
	      7);
	CHECK(at(j, "policy.actions.reclaim") == 6 && at(j, "policy.actions.kill") == 1);
	CHECK(at(j, "policy.step") == 7);
	CHECK(at(j, "go.findings.go.goroutine_leak") == 0); /* a dotted key: look it up whole */
	json_t *findings = json_object_get(json_object_get(j, "go"), "findings");
	CHECK(json_integer_value(json_object_get(findings, "go.goroutine_leak")) == 1);
	CHECKF(json_object_size(findings) == 1, "moonshim's own and go.watch are not findings");
	CHECK(at(j, "go.sched.gomaxprocs") == 4); /* the provider's keys beside the counted ones */
	CHECK(at(j, "errors.by_script.a.lua") == 0);
	json_t *by = json_object_get(json_object_get(j, "errors"), "by_script");
	CHECK(json_integer_value(json_object_get(by, "a.lua")) == 4);
	CHECK(json_integer_value(json_object_get(by, "b.lua")) == 4);
	CHECK(json_integer_value(json_object_get(by, "moonshim")) == 1);
	CHECK(json_integer_value(json_object_get(by, "c.lua")) == 6); /* 1 + 5 held back */
	json_t *last = json_object_get(json_object_get(j, "errors"), "last");
	CHECK(json_array_size(last) == PB_LAST_MAX);
	CHECK(json_integer_value(
	          json_object_get(json_array_get(last, PB_LAST_MAX - 1), "suppressed")) == 5);
	CHECKF(json_object_size(json_object_get(j, "events")) <= 64, "%zu event types",
	       json_object_size(json_object_get(j, "events")));
	CHECK(at(j, "runtime.rss_bytes") > 0 && at(j, "runtime.threads") >= 1);
	CHECK(json_is_string(json_object_get(j, "updated")));
	json_decref(j);
	/* withdrawn: its last value stays, and it is not called again */
	pv.value = 8;
	pb_withdraw(p, &pv);
	int calls = pv.calls;
	pv.value = 16;
	pb_set(p, "process", json_pack("{s:s}", "status", "stopped"));
	pb_stop(p);
	CHECK(pv.calls == calls);
	j = load_status(dir);
	CHECK(at(j, "go.sched.gomaxprocs") == 8);
	CHECK(!strcmp(json_string_value(json_object_get(json_object_get(j, "process"), "status")),
	              "stopped"));
	json_decref(j);
	ev_close(l);
	/* the journal holds every event, one line each */
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/%s", dir, PB_JOURNAL);
	FILE *f = fopen(path, "r");
	CHECK(f);
	int lines = 0;
	char line[4096];
	while (fgets(line, sizeof line, f)) {
		json_t *e = json_loads(line, 0, NULL);
		CHECKF(e && json_is_string(json_object_get(e, "type")), "line %d: %s", lines, line);
		json_decref(e);
		lines++;
	}
	fclose(f);
	CHECKF(lines == 7 + 3 + 10 + 100, "%d lines", lines);
	pb_close(p, true);
	struct stat st;
	CHECKF(stat(dir, &st) < 0 && errno == ENOENT, "%s is left", dir);
	return 0;
}

TEST(publish_counts_events_merges_sections_and_keeps_the_last) {
	run_rt(2, counting_main, NULL);
}

static int journal_main(void *arg) {
	char dir[PATH_MAX];
	tmp_dir(dir, sizeof dir, "journal");
	ms_err err = {0};
	pb *p = pb_open(dir, json_pack("{s:s}", "id", "j"), &err);
	CHECKF(p, "%s", err.msg);
	ev_log *l = ev_open(NULL, "j", &err);
	pb_observe(p, l);
	char big[2000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	for (int i = 0; i < 3 * PB_JOURNAL_MAX / (int)sizeof big; i++)
		ev_emit(l, "line", json_pack("{s:i, s:s}", "n", i, "pad", big));
	ev_close(l);
	char cur[PATH_MAX + 32], old[PATH_MAX + 32];
	snprintf(cur, sizeof cur, "%s/%s", dir, PB_JOURNAL);
	snprintf(old, sizeof old, "%s/%s", dir, PB_JOURNAL_OLD);
	struct stat a, b;
	CHECK(stat(cur, &a) == 0 && stat(old, &b) == 0);
	CHECKF(a.st_size <= PB_JOURNAL_MAX && b.st_size <= PB_JOURNAL_MAX, "%lld %lld",
	       (long long)a.st_size, (long long)b.st_size);
	CHECK(b.st_size > PB_JOURNAL_MAX / 2);
	pb_close(p, true);
	return 0;
}

TEST(publish_journal_rotates_at_its_cap) {
	run_rt(1, journal_main, NULL);
}

typedef struct {
	int n, live;
	char keys[8][512];
} seen;

static void on_entry(const pb_entry *e, void *arg) {
	seen *s = arg;
	if (s->n < 8)
		snprintf(s->keys[s->n], sizeof s->keys[0], "%s", e->key);
	s->n++;
	s->live += e->live;
}

static void put(const char *root, const char *rel, const char *text) {
	char path[PATH_MAX], cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/%s'", root, rel);
	CHECK(system(cmd) == 0);
	snprintf(path, sizeof path, "%s/%s/%s", root, rel, PB_STATUS);
	FILE *f = fopen(path, "w");
	CHECK(f);
	fputs(text, f);
	fclose(f);
}

TEST(publish_scan_finds_both_layouts_and_trusts_only_live_supervisors) {
	char root[PATH_MAX];
	tmp_dir(root, sizeof root, "scan");
	char state;
	unsigned long long start;
	CHECK(fs_proc_stat(getpid(), &state, &start));
	char live[256], dead[256];
	snprintf(live, sizeof live,
	         "{\"id\":\"x\",\"supervisor\":{\"pid\":%d,\"start_time\":%llu}}", getpid(), start);
	snprintf(dead, sizeof dead,
	         "{\"id\":\"x\",\"supervisor\":{\"pid\":%d,\"start_time\":%llu}}", getpid(),
	         start + 1); /* pid reuse: another process */
	put(root, "run/a", live);
	put(root, "run/b", dead);
	put(root, "run/c", "{\"id\": "); /* torn: a writer that did not rename */
	char deep[300];
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = 0;
	put(root, "run/d", deep);       /* hostile nesting */
	put(root, "run/e", "[1, 2]");   /* not an object */
	put(root, "run/.hidden", live); /* not a container */
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/run/f'", root); /* state.json only: not yet */
	CHECK(system(cmd) == 0);
	put(root, "cd/k8s.io/p1", live);
	put(root, "cd/default/p2", dead);
	ms_err err = {0};
	char sub[PATH_MAX + 8];
	seen s = {0};
	snprintf(sub, sizeof sub, "%s/run", root);
	CHECKF(pb_scan(sub, 1, on_entry, &s, &err) == 0, "%s", err.msg);
	CHECKF(s.n == 2 && s.live == 1, "%d entries, %d live", s.n, s.live);
	seen c = {0};
	snprintf(sub, sizeof sub, "%s/cd", root);
	CHECK(pb_scan(sub, 2, on_entry, &c, &err) == 0);
	CHECKF(c.n == 2 && c.live == 1, "%d entries, %d live", c.n, c.live);
	bool ns_key = false;
	for (int i = 0; i < c.n; i++)
		ns_key |= !strcmp(c.keys[i], "k8s.io/p1");
	CHECK(ns_key);
	seen none = {0};
	snprintf(sub, sizeof sub, "%s/missing", root);
	CHECK(pb_scan(sub, 1, on_entry, &none, &err) == 0 && none.n == 0);
	CHECK(!pb_alive(0, 0) && !pb_alive(getpid(), start + 1) && pb_alive(getpid(), start));
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	CHECK(system(cmd) == 0);
}
