/* health_test.c — the health-check state machine on a fake clock: what a
 * user of `docker inspect` or a kubelet would notice. Retries, the start
 * period and start interval, recovery thresholds, startup gating, readiness
 * kept apart from health, timeouts, the 5-entry log with 4096-byte outputs,
 * sub-second periods, config errors that name the field, and the JSON. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/lua/health.h"

#include <errno.h>
#include <string.h>

#define MS  1000000LL
#define SEC 1000000000LL
#define T0  (100 * SEC) /* the container's start on the fake clock */
#define RUN (10 * MS)   /* how long a probe takes unless said otherwise */

/* ─── helpers ────────────────────────────────────────────────────────── */

static hc_result result(int64_t start, int64_t dur, hc_outcome o, int code, const char *out) {
	return (hc_result){.start_ns = start,
	                   .end_ns = start + dur,
	                   .outcome = o,
	                   .exit_code = code,
	                   .output = out,
	                   .output_len = out ? strlen(out) : 0};
}

/* Run one probe of h when it is due, taking RUN; true if the status changed. */
static bool probe(hc_check *h, hc_outcome o, hc_transition *t) {
	int64_t due = hc_next_due(h);
	CHECK(due != HC_NEVER);
	hc_result r = result(due, RUN, o, o == HC_PASS ? 0 : 1, o == HC_PASS ? "ok" : "down");
	return hc_record(h, &r, t);
}

static hc_check *check_of(hc_config c) {
	ms_err err = {0};
	hc_check *h = hc_new(&c, T0, &err);
	CHECKF(h, "%s", err.msg);
	return h;
}

/* Run one probe of check i of s when due; returns the transitions. */
static int set_probe(hc_set *s, int i, hc_outcome o, hc_transition t[HC_TRANSITIONS_MAX]) {
	int64_t due = hc_next_due(hc_set_at(s, i));
	CHECKF(due != HC_NEVER, "check %d is not running", i);
	hc_result r = result(due, RUN, o, o == HC_PASS ? 0 : 1, NULL);
	return hc_set_record(s, i, &r, t);
}

/* ─── one check ──────────────────────────────────────────────────────── */

TEST(health_defaults_are_dockers) {
	hc_check *h = check_of((hc_config){.name = "web"});
	const hc_config *c = hc_config_of(h);
	CHECK(c->interval_ns == 30 * SEC && c->timeout_ns == 30 * SEC);
	CHECK(c->start_interval_ns == 5 * SEC && c->start_period_ns == 0);
	CHECK(c->failure_threshold == 3 && c->success_threshold == 1);
	CHECK(!strcmp(c->name, "web") && c->role == HC_ROLE_LIVENESS);
	CHECK(hc_status_of(h) == HC_STARTING);
	CHECK(hc_next_due(h) == T0 + 30 * SEC); /* Docker: first probe one interval after start */
	hc_free(h);
}

TEST(health_pass_then_three_failures_then_recovery) {
	hc_check *h = check_of((hc_config){.name = "web", .interval_ns = 10 * SEC});
	hc_transition t;
	CHECK(probe(h, HC_PASS, &t));
	CHECK(t.subject == HC_OF_CHECK && !strcmp(t.check, "web"));
	CHECK(t.from == HC_STARTING && t.to == HC_HEALTHY);
	CHECKF(!strcmp(t.reason, "1 consecutive pass"), "%s", t.reason);
	int64_t end = hc_log_at(h, 0)->end_ns;
	CHECK(hc_next_due(h) == end + 10 * SEC); /* measured from the end of the probe */

	CHECK(!probe(h, HC_FAIL, &t) && hc_failing_streak(h) == 1);
	CHECK(!probe(h, HC_FAIL, &t) && hc_failing_streak(h) == 2);
	CHECK(hc_status_of(h) == HC_HEALTHY); /* retries=3: two are not enough */
	CHECK(probe(h, HC_FAIL, &t));
	CHECK(t.from == HC_HEALTHY && t.to == HC_UNHEALTHY && hc_failing_streak(h) == 3);
	CHECKF(strstr(t.reason, "3 consecutive failures") && strstr(t.reason, "exit code 1"), "%s",
	       t.reason);
	CHECK(!probe(h, HC_FAIL, &t) &&
	      hc_failing_streak(h) == 4); /* still probed, still counted */

	CHECK(probe(h, HC_PASS, &t));
	CHECK(t.from == HC_UNHEALTHY && t.to == HC_HEALTHY && hc_failing_streak(h) == 0);
	hc_free(h);
}

TEST(health_a_pass_resets_the_failing_streak) {
	hc_check *h = check_of((hc_config){.name = "web"});
	hc_outcome seq[] = {HC_PASS, HC_FAIL, HC_FAIL, HC_PASS, HC_FAIL, HC_FAIL, HC_PASS};
	for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
		probe(h, seq[i], NULL);
	CHECK(hc_status_of(h) == HC_HEALTHY && hc_failing_streak(h) == 0);
	hc_free(h);
}

TEST(health_starting_becomes_unhealthy_after_retries) {
	hc_check *h = check_of((hc_config){.name = "web", .failure_threshold = 2});
	hc_transition t;
	CHECK(!probe(h, HC_FAIL, &t) && hc_status_of(h) == HC_STARTING);
	CHECK(probe(h, HC_ERROR, &t) && t.from == HC_STARTING && t.to == HC_UNHEALTHY);
	CHECKF(strstr(t.reason, "probe error"), "%s", t.reason);
	CHECK(hc_log_at(h, 1)->exit_code == -1);
	hc_free(h);
}

TEST(health_timeout_is_a_failure_of_its_own_kind) {
	hc_check *h =
	    check_of((hc_config){.name = "web", .timeout_ns = 1 * SEC, .failure_threshold = 2});
	hc_result r = result(hc_next_due(h), 1 * SEC, HC_TIMEOUT, 137, NULL);
	hc_transition t;
	CHECK(!hc_record(h, &r, &t) && hc_failing_streak(h) == 1);
	const hc_entry *e = hc_log_at(h, 0);
	CHECK(e->outcome == HC_TIMEOUT && e->exit_code == -1);
	CHECKF(!strcmp(e->output, "Health check exceeded timeout (1s)"), "%s", e->output);

	/* a "pass" that took longer than the timeout is a timeout */
	r = result(hc_next_due(h), 1 * SEC + 1, HC_PASS, 0, "slow but fine");
	CHECK(hc_record(h, &r, &t) && t.to == HC_UNHEALTHY);
	CHECK(hc_log_at(h, 1)->outcome == HC_TIMEOUT && hc_log_at(h, 1)->exit_code == -1);
	CHECK(!strcmp(hc_log_at(h, 1)->output, "slow but fine")); /* the caller's output is kept */
	CHECKF(strstr(t.reason, "timed out after 1.000000001s"), "%s", t.reason);
	hc_free(h);
}

TEST(health_start_period_ignores_failures_and_a_pass_ends_it) {
	hc_check *h = check_of((hc_config){.name = "web",
	                                   .interval_ns = 30 * SEC,
	                                   .start_period_ns = 60 * SEC,
	                                   .start_interval_ns = 5 * SEC,
	                                   .failure_threshold = 1});
	CHECK(hc_next_due(h) == T0 + 5 * SEC); /* start_interval inside the start period */
	for (int i = 0; i < 5; i++) {
		int64_t due = hc_next_due(h);
		CHECK(!probe(h, HC_FAIL, NULL));
		CHECK(hc_status_of(h) == HC_STARTING && hc_failing_streak(h) == 0);
		CHECK(hc_next_due(h) == due + RUN + 5 * SEC);
	}
	CHECK(hc_log_len(h) == 5); /* logged even when not counted */
	hc_transition t;
	int64_t due = hc_next_due(h);
	CHECK(probe(h, HC_PASS, &t) && t.to == HC_HEALTHY);
	CHECK(hc_next_due(h) == due + RUN + 30 * SEC); /* interval from now on */
	CHECK(hc_next_due(h) < T0 + 60 * SEC + 30 * SEC);
	/* still inside the 60 s, but the start period is over: failures count */
	hc_result r = result(T0 + 40 * SEC, RUN, HC_FAIL, 1, NULL);
	CHECK(hc_record(h, &r, &t) && t.to == HC_UNHEALTHY);
	hc_free(h);
}

TEST(health_start_period_end_runs_a_probe_and_then_failures_count) {
	hc_check *h = check_of((hc_config){.name = "web",
	                                   .interval_ns = 30 * SEC,
	                                   .start_period_ns = 12 * SEC,
	                                   .start_interval_ns = 5 * SEC,
	                                   .failure_threshold = 2});
	CHECK(!probe(h, HC_FAIL, NULL)); /* at 5 s */
	CHECK(hc_next_due(h) == T0 + 10 * SEC + RUN);
	CHECK(!probe(h, HC_FAIL, NULL)); /* at 10.01 s; the next would be 15.02 s */
	CHECK(hc_failing_streak(h) == 0);
	CHECK(hc_next_due(h) == T0 + 12 * SEC); /* the start period ends first: probe then */
	CHECK(!probe(h, HC_FAIL, NULL) && hc_failing_streak(h) == 1);
	CHECK(hc_next_due(h) == T0 + 12 * SEC + RUN + 30 * SEC);
	hc_transition t;
	CHECK(probe(h, HC_FAIL, &t) && t.from == HC_STARTING && t.to == HC_UNHEALTHY);
	hc_free(h);
}

TEST(health_success_threshold_for_recovery) {
	hc_check *h = check_of((hc_config){.name = "ready",
	                                   .role = HC_ROLE_READINESS,
	                                   .success_threshold = 2,
	                                   .failure_threshold = 1});
	hc_transition t;
	CHECK(!probe(h, HC_PASS, &t) && hc_status_of(h) == HC_STARTING);
	CHECK(probe(h, HC_PASS, &t) && t.to == HC_HEALTHY);
	CHECKF(!strcmp(t.reason, "2 consecutive passes"), "%s", t.reason);
	CHECK(probe(h, HC_FAIL, &t) && t.to == HC_UNHEALTHY);
	CHECK(!probe(h, HC_PASS, &t) && hc_status_of(h) == HC_UNHEALTHY);
	CHECK(!probe(h, HC_FAIL, &t)); /* breaks the passing streak */
	CHECK(!probe(h, HC_PASS, &t));
	CHECK(probe(h, HC_PASS, &t) && t.from == HC_UNHEALTHY && t.to == HC_HEALTHY);
	hc_free(h);
}

TEST(health_initial_delay_sets_the_first_probe) {
	hc_check *h = check_of(
	    (hc_config){.name = "web", .interval_ns = 10 * SEC, .initial_delay_ns = 2 * SEC});
	CHECK(hc_next_due(h) == T0 + 2 * SEC);
	probe(h, HC_PASS, NULL);
	CHECK(hc_next_due(h) == T0 + 2 * SEC + RUN + 10 * SEC);
	hc_free(h);
}

TEST(health_sub_second_periods) {
	hc_check *h = check_of((hc_config){.name = "fast",
	                                   .interval_ns = 100 * MS,
	                                   .timeout_ns = 50 * MS,
	                                   .start_period_ns = 200 * MS,
	                                   .start_interval_ns = 20 * MS,
	                                   .failure_threshold = 1});
	CHECK(hc_next_due(h) == T0 + 20 * MS);
	probe(h, HC_FAIL, NULL); /* 20..30 ms: ignored */
	CHECK(hc_next_due(h) == T0 + 50 * MS);
	probe(h, HC_PASS, NULL);
	CHECK(hc_next_due(h) == T0 + 60 * MS + 100 * MS);
	hc_result r = result(hc_next_due(h), 60 * MS, HC_PASS, 0, NULL);
	hc_transition t;
	CHECK(hc_record(h, &r, &t) && t.to == HC_UNHEALTHY);
	CHECKF(strstr(t.reason, "timed out after 60ms"), "%s", t.reason);
	CHECK(!strcmp(hc_log_at(h, 2)->output, "Health check exceeded timeout (50ms)"));
	CHECK(hc_next_due(h) == r.end_ns + 100 * MS);
	hc_free(h);
}

TEST(health_log_keeps_the_last_five) {
	hc_check *h = check_of((hc_config){.name = "web"});
	for (int i = 0; i < 7; i++) {
		char out[16];
		snprintf(out, sizeof out, "run %d", i);
		hc_result r = result(T0 + i * SEC, RUN, HC_FAIL, 10 + i, out);
		hc_record(h, &r, NULL);
	}
	CHECK(hc_log_len(h) == HC_LOG_MAX && HC_LOG_MAX == 5);
	for (int i = 0; i < 5; i++) {
		const hc_entry *e = hc_log_at(h, i);
		char out[16];
		snprintf(out, sizeof out, "run %d", i + 2);
		CHECK(e->exit_code == 12 + i && !strcmp(e->output, out));
		CHECK(e->start_ns == T0 + (i + 2) * SEC && e->end_ns == e->start_ns + RUN);
	}
	CHECK(hc_log_at(h, 5) == NULL && hc_log_at(h, -1) == NULL);
	hc_free(h);
}

TEST(health_output_is_cut_at_4096_bytes) {
	hc_check *h = check_of((hc_config){.name = "web"});
	static char big[6000];
	memset(big, 'a', sizeof big - 1);
	hc_result r = result(T0, RUN, HC_PASS, 0, big);
	hc_record(h, &r, NULL);
	const hc_entry *e = hc_log_at(h, 0);
	CHECK(e->output_len == 4096 + 3 && strlen(e->output) == e->output_len);
	CHECK(!strcmp(e->output + 4096, "..."));

	/* a character across the cut is dropped whole, never split */
	memcpy(big + 4095, "\xC3\xA9", 2); /* é at bytes 4095..4096 */
	r = result(T0 + SEC, RUN, HC_PASS, 0, big);
	hc_record(h, &r, NULL);
	e = hc_log_at(h, 1);
	CHECK(e->output_len == 4095 + 3 && !strcmp(e->output + 4095, "..."));

	/* exactly 4096 bytes are kept as they are */
	r = (hc_result){.start_ns = T0 + 2 * SEC,
	                .end_ns = T0 + 2 * SEC + RUN,
	                .output = big,
	                .output_len = 4096};
	memset(big, 'b', 4096);
	hc_record(h, &r, NULL);
	CHECK(hc_log_at(h, 2)->output_len == 4096 && hc_log_at(h, 2)->output[4096] == 0);
	hc_free(h);
}

/* ─── configuration errors ───────────────────────────────────────────── */

static void rejects(hc_config c, const char *field, const char *detail) {
	ms_err err = {0};
	CHECK(hc_config_check(&c, &err) == -EINVAL && err.code == -EINVAL);
	CHECKF(strstr(err.msg, field) && strstr(err.msg, detail), "%s", err.msg);
	err = (ms_err){0};
	CHECK(hc_new(&c, T0, &err) == NULL && err.code == -EINVAL);
	fprintf(stderr, "%s\n", err.msg);
}

TEST(health_invalid_configs_name_the_field) {
	char long_name[100];
	memset(long_name, 'n', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = 0;
	rejects((hc_config){.name = ""}, "name", "empty");
	rejects((hc_config){.name = NULL}, "name", "empty");
	rejects((hc_config){.name = long_name}, "name", "longer than 63");
	rejects((hc_config){.name = "w", .role = 7}, "role", "got 7");
	rejects((hc_config){.name = "w", .interval_ns = 500000}, "\"w\": interval", "got 500us");
	rejects((hc_config){.name = "w", .timeout_ns = -SEC}, "timeout", "got -1s");
	rejects((hc_config){.name = "w", .start_interval_ns = 1}, "start_interval", "at least 1ms");
	rejects((hc_config){.name = "w", .start_period_ns = -1}, "start_period", "negative");
	rejects((hc_config){.name = "w", .initial_delay_ns = -MS}, "initial_delay", "got -1ms");
	rejects((hc_config){.name = "w", .failure_threshold = -1}, "failure_threshold", "got -1");
	rejects((hc_config){.name = "w", .success_threshold = -2}, "success_threshold", "got -2");
	rejects((hc_config){.name = "boot", .role = HC_ROLE_STARTUP, .success_threshold = 2},
	        "success_threshold", "must be 0 or 1 for a startup check");
	ms_err err = {0};
	CHECK(hc_config_check(&(hc_config){.name = "w", .interval_ns = MS}, &err) == 0);

	hc_config two[] = {{.name = "w"}, {.name = "w", .role = HC_ROLE_READINESS}};
	CHECK(hc_set_new(two, 2, T0, &err) == NULL && err.code == -EINVAL);
	CHECKF(strstr(err.msg, "\"w\": name used twice"), "%s", err.msg);
	hc_config bad[] = {{.name = "ok"}, {.name = "late", .timeout_ns = -1}};
	CHECK(hc_set_new(bad, 2, T0, &err) == NULL && strstr(err.msg, "\"late\": timeout"));
}

/* ─── sets: gating and aggregates ────────────────────────────────────── */

enum { BOOT, LIVE, READY };
static const hc_config pod[] = {
    [BOOT] = {.name = "boot", .role = HC_ROLE_STARTUP, .interval_ns = SEC},
    [LIVE] = {.name = "live", .role = HC_ROLE_LIVENESS, .interval_ns = 10 * SEC},
    [READY] = {.name = "ready",
               .role = HC_ROLE_READINESS,
               .interval_ns = 5 * SEC,
               .failure_threshold = 1},
};

static hc_set *set_of(const hc_config *c, int n) {
	ms_err err = {0};
	hc_set *s = hc_set_new(c, n, T0, &err);
	CHECKF(s, "%s", err.msg);
	return s;
}

TEST(health_startup_gates_liveness_and_readiness) {
	hc_set *s = set_of(pod, 3);
	hc_transition t[HC_TRANSITIONS_MAX];
	int which;
	CHECK(hc_next_due(hc_set_at(s, LIVE)) == HC_NEVER);
	CHECK(hc_next_due(hc_set_at(s, READY)) == HC_NEVER);
	CHECK(hc_set_next_due(s, &which) == T0 + SEC && which == BOOT);
	CHECK(hc_set_health(s) == HC_STARTING && hc_set_readiness(s) == HC_STARTING);
	hc_result early = result(T0, RUN, HC_FAIL, 1, NULL); /* a result nobody asked for */
	CHECK(hc_set_record(s, LIVE, &early, t) == 0 && hc_log_len(hc_set_at(s, LIVE)) == 0);

	CHECK(set_probe(s, BOOT, HC_FAIL, t) == 0);
	CHECK(set_probe(s, BOOT, HC_FAIL, t) == 0);
	int64_t passed = hc_next_due(hc_set_at(s, BOOT)) + RUN;
	CHECK(set_probe(s, BOOT, HC_PASS, t) == 1); /* live and ready have not decided */
	CHECK(t[0].subject == HC_OF_CHECK && !strcmp(t[0].check, "boot") && t[0].to == HC_HEALTHY);
	CHECK(hc_next_due(hc_set_at(s, BOOT)) ==
	      HC_NEVER); /* a startup check runs until it passes */
	CHECK(hc_next_due(hc_set_at(s, LIVE)) == passed + 10 * SEC); /* their clocks start now */
	CHECK(hc_next_due(hc_set_at(s, READY)) == passed + 5 * SEC);
	CHECK(hc_set_next_due(s, &which) == passed + 5 * SEC && which == READY);

	CHECK(set_probe(s, READY, HC_PASS, t) == 2);
	CHECK(t[1].subject == HC_OF_READINESS && t[1].from == HC_STARTING && t[1].to == HC_HEALTHY);
	CHECKF(!strcmp(t[1].reason, "readiness check \"ready\" is healthy"), "%s", t[1].reason);
	CHECK(hc_set_health(s) == HC_STARTING); /* readiness says nothing about health */
	CHECK(set_probe(s, LIVE, HC_PASS, t) == 2);
	CHECK(t[1].subject == HC_OF_HEALTH && t[1].to == HC_HEALTHY && !strcmp(t[1].check, "live"));
	hc_set_free(s);
}

TEST(health_failed_startup_fails_the_container) {
	hc_set *s = set_of(pod, 3);
	hc_transition t[HC_TRANSITIONS_MAX];
	set_probe(s, BOOT, HC_FAIL, t);
	set_probe(s, BOOT, HC_TIMEOUT, t);
	CHECK(set_probe(s, BOOT, HC_FAIL, t) == 3);
	CHECK(t[0].subject == HC_OF_CHECK && t[0].to == HC_UNHEALTHY);
	CHECK(t[1].subject == HC_OF_HEALTH && t[1].to == HC_UNHEALTHY);
	CHECKF(!strcmp(t[1].reason, "startup check \"boot\" is unhealthy"), "%s", t[1].reason);
	CHECK(t[2].subject == HC_OF_READINESS && t[2].to == HC_UNHEALTHY);
	CHECK(hc_set_next_due(s, NULL) == HC_NEVER); /* nothing runs: the caller restarts it */
	hc_set_free(s);
}

TEST(health_startup_pass_makes_a_set_without_readiness_ready) {
	hc_set *s = set_of(pod, 2); /* boot and live */
	hc_transition t[HC_TRANSITIONS_MAX];
	CHECK(set_probe(s, BOOT, HC_PASS, t) == 2);
	CHECK(t[1].subject == HC_OF_READINESS && t[1].to == HC_HEALTHY);
	CHECK(hc_set_health(s) == HC_STARTING);
	hc_set_free(s);
}

TEST(health_readiness_and_liveness_stay_apart) {
	hc_set *s = set_of(pod + LIVE, 2); /* live = 0, ready = 1 */
	hc_transition t[HC_TRANSITIONS_MAX];
	CHECK(hc_next_due(hc_set_at(s, 0)) == T0 + 10 * SEC); /* no startup check: no gate */
	set_probe(s, 0, HC_PASS, t);
	set_probe(s, 1, HC_PASS, t);
	CHECK(hc_set_health(s) == HC_HEALTHY && hc_set_readiness(s) == HC_HEALTHY);

	CHECK(set_probe(s, 1, HC_FAIL, t) == 2); /* ready's threshold is 1 */
	CHECK(t[1].subject == HC_OF_READINESS && t[1].to == HC_UNHEALTHY);
	CHECK(hc_set_health(s) == HC_HEALTHY);

	set_probe(s, 1, HC_PASS, t);
	for (int i = 0; i < 3; i++)
		set_probe(s, 0, HC_FAIL, t);
	CHECK(hc_set_health(s) == HC_UNHEALTHY && t[1].subject == HC_OF_HEALTH);
	CHECK(hc_set_readiness(s) == HC_HEALTHY); /* Kubernetes: liveness restarts, not unready */
	hc_set_free(s);
}

TEST(health_empty_set_is_healthy_and_ready) {
	hc_set *s = set_of(NULL, 0);
	CHECK(hc_set_health(s) == HC_HEALTHY && hc_set_readiness(s) == HC_HEALTHY);
	CHECK(hc_set_next_due(s, NULL) == HC_NEVER);
	hc_set_free(s);
}

/* ─── JSON ───────────────────────────────────────────────────────────── */

/* wall = mono + OFFSET puts T0 at 2024-01-02T03:04:05Z */
#define WALL_T0 1704164645LL
#define OFFSET  (WALL_T0 * SEC - T0)

TEST(health_json_is_docker_inspects) {
	hc_check *h = check_of((hc_config){.name = "web"});
	hc_result r = result(T0 + 500 * MS, 1500 * MS, HC_FAIL, 1, "conn\xff refused");
	hc_record(h, &r, NULL);
	json_t *j = hc_to_json(h, OFFSET);
	CHECK(j);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	CHECKF(!strcmp(s, "{\"FailingStreak\":1,\"Log\":[{\"End\":\"2024-01-02T03:04:07Z\","
	                  "\"ExitCode\":1,\"Output\":\"conn\\uFFFD refused\","
	                  "\"Start\":\"2024-01-02T03:04:05.5Z\"}],\"Status\":\"starting\"}"),
	       "%s", s);
	free(s);
	json_decref(j);

	r = result(T0 + 3 * SEC + 1, RUN, HC_PASS, 0, "");
	hc_record(h, &r, NULL);
	j = hc_to_json(h, OFFSET);
	CHECK(!strcmp(json_string_value(json_object_get(j, "Status")), "healthy"));
	json_t *e = json_array_get(json_object_get(j, "Log"), 1);
	CHECK(!strcmp(json_string_value(json_object_get(e, "Start")),
	              "2024-01-02T03:04:08.000000001Z"));
	CHECK(json_integer_value(json_object_get(j, "FailingStreak")) == 0);
	json_decref(j);
	hc_free(h);
}

TEST(health_set_json_adds_ready_and_checks) {
	hc_set *s = set_of(pod, 3);
	hc_transition t[HC_TRANSITIONS_MAX];
	set_probe(s, BOOT, HC_PASS, t);
	set_probe(s, LIVE, HC_FAIL, t);
	json_t *j = hc_set_to_json(s, OFFSET);
	CHECK(j);
	CHECK(!strcmp(json_string_value(json_object_get(j, "Status")), "starting"));
	CHECK(json_integer_value(json_object_get(j, "FailingStreak")) == 1); /* from "live" */
	CHECK(json_array_size(json_object_get(j, "Log")) == 1);
	CHECK(json_is_false(json_object_get(j, "Ready")));
	json_t *checks = json_object_get(j, "Checks");
	CHECK(json_array_size(checks) == 3);
	const char *names[] = {"boot", "live", "ready"},
	           *roles[] = {"startup", "liveness", "readiness"};
	const char *status[] = {"healthy", "starting", "starting"};
	for (int i = 0; i < 3; i++) {
		json_t *c = json_array_get(checks, i);
		CHECK(!strcmp(json_string_value(json_object_get(c, "Name")), names[i]));
		CHECK(!strcmp(json_string_value(json_object_get(c, "Role")), roles[i]));
		CHECK(!strcmp(json_string_value(json_object_get(c, "Status")), status[i]));
		CHECK(json_is_array(json_object_get(c, "Log")));
	}
	json_decref(j);
	hc_set_free(s);
}

/* ─── probe counters ─────────────────────────────────────────────────── */

/* Prometheus' "le": a probe of exactly a bound is in that bound's bucket,
 * one a nanosecond longer in the next; past 10 s the last bucket. */
TEST(health_probes_count_outcomes_and_bucket_durations) {
	hc_probes p = {0};
	hc_probes_add(&p, HC_PASS, 5 * MS);         /* le .005 */
	hc_probes_add(&p, HC_PASS, 5 * MS + 1);     /* le .01 */
	hc_probes_add(&p, HC_FAIL, 0);              /* le .005 */
	hc_probes_add(&p, HC_TIMEOUT, 10 * SEC);    /* le 10 */
	hc_probes_add(&p, HC_ERROR, 10 * SEC + 1);  /* above every bound */
	hc_probes_add(&p, HC_ERROR, -1);            /* a clock step: counted as 0 */
	hc_probes_add(&p, (hc_outcome)42, 2 * SEC); /* unknown: an error, le 2.5 */
	CHECK(p.outcomes[HC_PASS] == 2 && p.outcomes[HC_FAIL] == 1);
	CHECK(p.outcomes[HC_TIMEOUT] == 1 && p.outcomes[HC_ERROR] == 3);
	uint64_t want[HC_BUCKETS + 1] = {3, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1};
	for (int b = 0; b <= HC_BUCKETS; b++)
		CHECKF(p.buckets[b] == want[b], "bucket %d: %llu, want %llu", b,
		       (unsigned long long)p.buckets[b], (unsigned long long)want[b]);
	CHECK(p.sum_ns == 5 * MS + 5 * MS + 1 + 10 * SEC + 10 * SEC + 1 + 2 * SEC);
}

/* publish.h's "Probes": counts, the bounds in seconds, a count per bucket
 * and one above them, the sum in seconds. */
TEST(health_probes_json_is_publish_shape) {
	hc_probes p = {0};
	hc_probes_add(&p, HC_PASS, 30 * MS);
	hc_probes_add(&p, HC_FAIL, 3 * SEC);
	hc_probes_add(&p, HC_TIMEOUT, 20 * SEC);
	json_t *j = hc_probes_json(&p);
	CHECK(j);
	CHECK(json_object_size(j) == 5);
	CHECK(json_integer_value(json_object_get(j, "pass")) == 1);
	CHECK(json_integer_value(json_object_get(j, "fail")) == 1);
	CHECK(json_integer_value(json_object_get(j, "timeout")) == 1);
	CHECK(json_integer_value(json_object_get(j, "error")) == 0);
	json_t *d = json_object_get(j, "duration");
	CHECK(json_object_size(d) == 3);
	static const double le[HC_BUCKETS] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
	static const int counts[HC_BUCKETS + 1] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1};
	json_t *jl = json_object_get(d, "le"), *jc = json_object_get(d, "counts");
	CHECK(json_array_size(jl) == HC_BUCKETS && json_array_size(jc) == HC_BUCKETS + 1);
	for (int b = 0; b < HC_BUCKETS; b++)
		CHECKF(json_real_value(json_array_get(jl, (size_t)b)) == le[b], "le[%d]", b);
	for (int b = 0; b <= HC_BUCKETS; b++)
		CHECKF(json_integer_value(json_array_get(jc, (size_t)b)) == counts[b], "counts[%d]",
		       b);
	double sum = json_real_value(json_object_get(d, "sum"));
	CHECKF(sum > 23.029999 && sum < 23.030001, "sum %f", sum);
	json_decref(j);
}
