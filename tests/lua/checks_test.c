/*
 * checks_test.c — Lua health checks (shim/lua/checks.c) at scale: 1,000 HTTP
 * checks in one world against a local server all become healthy, each
 * reported once, and the whole set's health follows; probes counted by
 * outcome and duration; a check that raises, spins or runs late reported
 * as "error" events naming its script and line, at most one per script
 * per report period.
 */
#include "harness.h"

#include "../../shim/lua/checks.h"
#include "../../shim/lua/health.h"
#include "../../shim/lua/luaapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS     1000000LL
#define CHECKS 1000

typedef struct {
	int fd;
	rt_pollfd *pd;
	rt_chan *done;
} server;

static void serve_one(void *arg) {
	int fd = (int)(intptr_t)arg, perr;
	rt_pollfd *pd = rt_poll_open(fd, &perr);
	char buf[2048];
	if (pd && rt_read(pd, buf, sizeof buf, rt_deadline_in(2000 * MS)) > 0) {
		static const char resp[] =
		    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
		rt_write(pd, resp, sizeof resp - 1, rt_deadline_in(2000 * MS));
	}
	if (pd)
		rt_poll_close(pd);
	close(fd);
}

static void acceptor(void *arg) {
	server *s = arg;
	for (;;) {
		int c = rt_accept(s->pd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC, RT_FOREVER);
		if (c < 0)
			break;
		rt_go(serve_one, (void *)(intptr_t)c, "test http conn");
	}
	int one = 1;
	rt_chan_send(s->done, &one);
}

typedef struct {
	int healthy_checks, health_healthy;
} counts;

static void on_event(void *arg, const char *type, json_t *f) {
	counts *c = arg;
	const char *subject = json_string_value(json_object_get(f, "subject"));
	const char *to = json_string_value(json_object_get(f, "to"));
	if (subject && to && !strcmp(to, "healthy")) {
		if (!strcmp(subject, "check"))
			c->healthy_checks++;
		else if (!strcmp(subject, "health"))
			c->health_healthy++;
	}
	json_decref(f);
}

static int many_main(void *arg) {
	server s = {.done = rt_chan_new(sizeof(int), 1)};
	s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	CHECK(bind(s.fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s.fd, 4096) == 0);
	CHECK(getsockname(s.fd, (struct sockaddr *)&sa, &sl) == 0);
	int perr;
	CHECK((s.pd = rt_poll_open(s.fd, &perr)));
	rt_go(acceptor, &s, "test http server");

	ms_err err = {0};
	lw_config lc = {.name = "many", .mem_limit = 64u << 20};
	lw_world *w = lw_new(&lc, &err);
	CHECK(w);
	la_set_netns(w, -1);
	la_open(w);
	counts cnt = {0};
	hk_checks *hk = hk_new(w, on_event, &cnt);
	char src[512];
	snprintf(src, sizeof src,
	         "for i = 1, %d do\n"
	         "  check { name = 'c' .. i, interval = 0.25, timeout = 2, retries = 1,\n"
	         "    run = function() local r = http.get('http://127.0.0.1:%d/healthz', {timeout "
	         "= 2})\n"
	         "      return r ~= nil and r.status == 200 end }\n"
	         "end\n",
	         (int)scaled(CHECKS), ntohs(sa.sin_port));
	CHECKF(lw_load(w, "many.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECK(hk_count(hk) == scaled(CHECKS));
	int64_t t0 = rt_now();
	CHECKF(hk_start(hk, &err) == 0, "%s", err.msg);
	while (cnt.healthy_checks < scaled(CHECKS) && rt_now() - t0 < 10000 * MS)
		rt_sleep(20 * MS);
	int64_t took = rt_now() - t0;
	json_t *j = hk_json(hk);
	const char *status = json_string_value(json_object_get(j, "Status"));
	fprintf(stderr, "%ld checks healthy after %lld ms; set status %s\n", scaled(CHECKS),
	        (long long)(took / MS), status ? status : "?");
	CHECKF(cnt.healthy_checks == scaled(CHECKS), "%d of %ld checks became healthy",
	       cnt.healthy_checks, scaled(CHECKS));
	CHECK(cnt.health_healthy == 1 && status && !strcmp(status, "healthy"));
	json_decref(j);
	lw_stats st;
	lw_stats_get(w, &st);
	fprintf(stderr, "world memory %zu bytes (%zu per check)\n", st.mem_used,
	        st.mem_used / (size_t)scaled(CHECKS));
	hk_stop(hk);
	lw_free(w);
	rt_poll_evict(s.pd);
	int x;
	rt_chan_recv(s.done, &x);
	rt_poll_close(s.pd);
	close(s.fd);
	rt_chan_free(s.done);
	return 0;
}

TEST(checks_1000_http_checks_become_healthy) {
	run_rt(2, many_main, NULL);
}

/* exec.host: status, output, stdin, env, and a deadline that kills the
 * command's whole process group. */
static int exec_main(void *arg) {
	ms_err err = {0};
	lw_config lc = {.name = "exec"};
	lw_world *w = lw_new(&lc, &err);
	CHECK(w);
	la_open(w);
	const char *src =
	    "function f()\n"
	    "  local r = exec.host({'sh', '-c', 'cat; echo err >&2; exit 3'}, {stdin = 'hello', "
	    "timeout = 5})\n"
	    "  assert(r.status == 3 and r.stdout == 'hello' and r.stderr == 'err\\n', r.status .. "
	    "r.stdout .. r.stderr)\n"
	    "  local t0 = now()\n"
	    "  local t = exec.host({'sh', '-c', 'echo $FOO; sleep 5 & wait'}, {timeout = 0.2, env "
	    "= {FOO = 'bar'}})\n"
	    "  assert(t.timed_out and t.stdout == 'bar\\n', tostring(t.timed_out) .. t.stdout)\n"
	    "  assert(now() - t0 < 2, 'the deadline took ' .. (now() - t0))\n"
	    "  local n, e = exec.host({'/nonexistent/cmd'})\n"
	    "  assert(n == nil and e:find('nonexistent'), e)\n"
	    "end\n";
	CHECKF(lw_load(w, "exec.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "f", &err) == 0, "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_exec_host_status_output_timeout) {
	run_rt(1, exec_main, NULL);
}

/* ─── errors and probe counters ─────────────────────────────────────── */

typedef struct {
	rt_mutex mu;
	json_t *errors;   /* the "error" events, each with "at" (rt_now() ms) */
	int unhealthy_ok; /* "good" became unhealthy: must stay 0 */
} seen;

static void on_error_event(void *arg, const char *type, json_t *f) {
	seen *s = arg;
	rt_mutex_lock(&s->mu);
	if (!strcmp(type, "error")) {
		json_object_set_new(f, "at", json_integer(rt_now() / MS));
		json_array_append(s->errors, f);
	} else if (!strcmp(type, "health")) {
		const char *check = json_string_value(json_object_get(f, "check"));
		const char *to = json_string_value(json_object_get(f, "to"));
		if (check && to && !strcmp(check, "good") && !strcmp(to, "unhealthy"))
			s->unhealthy_ok++;
	}
	rt_mutex_unlock(&s->mu);
	json_decref(f);
}

#define REPORT_EVERY_MS 300

/* The error events of one script: each names the check, the reason and
 * the line, none comes sooner than the period after the one before, the
 * first holds nothing back and the later ones say what they held back;
 * returns how many errors they stand for (events + suppressed). */
static int64_t script_errors(json_t *errors, const char *script, const char *check,
                             const char *reason, int line, const char *msg) {
	int n = 0;
	int64_t stand_for = 0, last_at = 0;
	size_t i;
	json_t *e;
	json_array_foreach(errors, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "script")), script))
			continue;
		const char *m = json_string_value(json_object_get(e, "message"));
		CHECKF(!strcmp(json_string_value(json_object_get(e, "check")), check), "%s",
		       script);
		CHECKF(!strcmp(json_string_value(json_object_get(e, "reason")), reason),
		       "%s: reason %s", script, json_string_value(json_object_get(e, "reason")));
		CHECKF(json_integer_value(json_object_get(e, "line")) == line, "%s: line %lld",
		       script, (long long)json_integer_value(json_object_get(e, "line")));
		CHECKF(m && strstr(m, msg), "%s: message %s", script, m ? m : "(none)");
		json_int_t held = json_integer_value(json_object_get(e, "suppressed"));
		int64_t at = json_integer_value(json_object_get(e, "at"));
		if (n == 0)
			CHECKF(!json_object_get(e, "suppressed"), "%s: the first held back %lld",
			       script, (long long)held);
		else
			CHECKF(at - last_at >= REPORT_EVERY_MS - 5 && held > 0,
			       "%s: %lld ms after the last, %lld held back", script,
			       (long long)(at - last_at), (long long)held);
		last_at = at;
		stand_for += 1 + held;
		n++;
	}
	CHECKF(n >= 2, "%s: %d error events in 1.2 s (one per %d ms)", script, n, REPORT_EVERY_MS);
	return stand_for;
}

/* hk_json's Probes of check i: its outcome counts, which the buckets add up to. */
static json_t *probes_of(json_t *health, int i, json_int_t out[4]) {
	json_t *p =
	    json_object_get(json_array_get(json_object_get(health, "Checks"), (size_t)i), "Probes");
	CHECKF(p, "check %d has no Probes", i);
	static const char *const keys[] = {"pass", "fail", "timeout", "error"};
	json_int_t total = 0, in_buckets = 0;
	for (int k = 0; k < 4; k++)
		total += out[k] = json_integer_value(json_object_get(p, keys[k]));
	size_t b;
	json_t *c;
	json_array_foreach(json_object_get(json_object_get(p, "duration"), "counts"), b, c)
	    in_buckets += json_integer_value(c);
	CHECKF(total > 0 && total == in_buckets, "check %d: %lld probes, %lld in buckets", i,
	       (long long)total, (long long)in_buckets);
	return p;
}

static void load(lw_world *w, const char *name, const char *src) {
	ms_err err = {0};
	CHECKF(lw_load(w, name, src, strlen(src), &err) == 0, "%s", err.msg);
}

static int errors_main(void *arg) {
	ms_err err = {0};
	lw_config lc = {
	    .name = "errors", .cpu_budget_ns = 20 * MS, .report_every_ns = REPORT_EVERY_MS * MS};
	lw_world *w = lw_new(&lc, &err);
	CHECK(w);
	seen s = {.mu = RT_MUTEX_INIT, .errors = json_array()};
	hk_checks *hk = hk_new(w, on_error_event, &s);
	load(w, "good.lua",
	     "check { name = 'good', interval = 0.05,\n"
	     "  run = function() return true end }\n");
	load(w, "raise.lua",
	     "check { name = 'boom', interval = 0.03, retries = 1000,\n"
	     "  run = function() error('kaput') end }\n");
	load(w, "spin.lua",
	     "check { name = 'spin', interval = 0.05, retries = 1000,\n"
	     "  run = function()\n"
	     "    while true do end\n"
	     "  end }\n");
	load(w, "slow.lua",
	     "check { name = 'slow', interval = 0.05, timeout = 0.01, retries = 1000,\n"
	     "  run = function() sleep(0.03) return true end }\n");
	CHECKF(hk_start(hk, &err) == 0, "%s", err.msg);
	rt_sleep(1200 * MS);
	json_t *health = hk_json(hk);
	hk_stop(hk);
	json_int_t good[4], boom[4], spin[4], slow[4];
	probes_of(health, 0, good);
	probes_of(health, 1, boom);
	probes_of(health, 2, spin);
	probes_of(health, 3, slow);
	CHECK(good[HC_PASS] > 5 && !good[HC_FAIL] && !good[HC_TIMEOUT] && !good[HC_ERROR]);
	CHECK(boom[HC_ERROR] > 5 && !boom[HC_PASS] && !boom[HC_TIMEOUT]);
	CHECK(spin[HC_ERROR] > 2 && !spin[HC_PASS]);
	CHECK(slow[HC_TIMEOUT] > 5 && !slow[HC_PASS] && !slow[HC_ERROR]);
	rt_mutex_lock(&s.mu);
	int64_t raised =
	    script_errors(s.errors, "raise.lua", "boom", "raised", 2, "raise.lua:2: kaput");
	script_errors(s.errors, "spin.lua", "spin", "budget", 3, "stopped after");
	script_errors(s.errors, "slow.lua", "slow", "timeout", 2, "past its timeout (10 ms)");
	/* every failed probe was reported or counted as held back, but for
	 * those held back since the last report (at most a period's: one per
	 * 30 ms interval) */
	CHECKF(raised <= boom[HC_ERROR] && boom[HC_ERROR] - raised <= REPORT_EVERY_MS / 30 + 1,
	       "raise.lua's events stand for %lld errors, %lld probes failed", (long long)raised,
	       (long long)boom[HC_ERROR]);
	size_t i;
	json_t *e;
	json_array_foreach(s.errors, i, e)
	    CHECKF(strcmp(json_string_value(json_object_get(e, "script")), "good.lua"),
	           "good.lua reported an error");
	CHECK(s.unhealthy_ok == 0);
	rt_mutex_unlock(&s.mu);
	json_decref(health);
	json_decref(s.errors);
	lw_free(w);
	return 0;
}

TEST(checks_errors_reported_per_script_and_probes_counted) {
	run_rt(2, errors_main, NULL);
}
