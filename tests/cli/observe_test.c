/* observe_test.c — what `inspect`, `events` and `top` share (shim/cli/
 * observe.c): --since/--until times in docker's three forms, filters,
 * event lines parsed and printed docker's way (hostile text escaped,
 * nothing crashes), and the status a reader shows for a snapshot. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/cli/observe.h"

#include <errno.h>
#include <string.h>

#define T0 1764968400LL /* 2025-12-05T21:00:00Z */

TEST(rfc3339_forms) {
	int64_t ns;
	CHECK(ob_parse_rfc3339("2025-12-05T21:00:00Z", &ns) == 0 && ns == T0 * OB_NS);
	CHECK(ob_parse_rfc3339("2025-12-05T21:00:00.5Z", &ns) == 0 && ns == T0 * OB_NS + OB_NS / 2);
	CHECK(ob_parse_rfc3339("2025-12-05T21:00:00.123456789Z", &ns) == 0 &&
	      ns == T0 * OB_NS + 123456789);
	CHECK(ob_parse_rfc3339("2025-12-05T23:30:00+02:30", &ns) == 0 && ns == T0 * OB_NS);
	CHECK(ob_parse_rfc3339("2025-12-05T20:00:00-01:00", &ns) == 0 && ns == T0 * OB_NS);
	CHECK(ob_parse_rfc3339("2025-12-05", &ns) == 0 && ns == (T0 - 21 * 3600) * OB_NS);
	static const char *const bad[] = {"",
	                                  "2025-12-05T21:00Z",
	                                  "2025-13-05T21:00:00Z",
	                                  "2025-12-05T21:00:00Zjunk",
	                                  "2025-12-05T21:00:00+2",
	                                  "2025-12-05T25:00:00Z",
	                                  "yesterday",
	                                  "2025-12-05X"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECKF(ob_parse_rfc3339(bad[i], &ns) == -EINVAL, "accepted \"%s\"", bad[i]);
	/* beyond an int64 of nanoseconds (a fuzzer's year 4052 overflowed) */
	CHECK(ob_parse_rfc3339("4052-12-15T00:00:00Z", &ns) == -ERANGE);
	CHECK(ob_parse_rfc3339("0000-01-01T00:00:00Z", &ns) == -ERANGE);
	CHECK(ob_parse_rfc3339("2262-04-11T23:47:16Z", &ns) == -ERANGE);
	CHECK(ob_parse_rfc3339("2262-04-10T00:00:00Z", &ns) == 0 && ns > 0);
}

TEST(since_until_forms) {
	int64_t now = (T0 + 3600) * OB_NS, ns;
	ms_err err = {0};
	CHECK(ob_parse_time("1764968400", now, &ns, &err) == 0 && ns == T0 * OB_NS);
	CHECK(ob_parse_time("1764968400.25", now, &ns, &err) == 0 && ns == T0 * OB_NS + OB_NS / 4);
	CHECK(ob_parse_time("10m", now, &ns, &err) == 0 && ns == now - 600 * OB_NS);
	CHECK(ob_parse_time("1h30m", now, &ns, &err) == 0 && ns == now - 5400 * OB_NS);
	CHECK(ob_parse_time("1.5s", now, &ns, &err) == 0 && ns == now - OB_NS * 3 / 2);
	CHECK(ob_parse_time("250ms", now, &ns, &err) == 0 && ns == now - OB_NS / 4);
	CHECK(ob_parse_time("2025-12-05T21:00:00Z", now, &ns, &err) == 0 && ns == T0 * OB_NS);
	static const char *const bad[] = {"", "10x", "m", "1e5s", "-5m", "0x10s", "10m5", "soon"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err = (ms_err){0};
		CHECKF(ob_parse_time(bad[i], now, &ns, &err) == -EINVAL, "accepted \"%s\"", bad[i]);
		CHECKF(strstr(err.msg, "time \"") && strstr(err.msg, "RFC 3339"), "%s", err.msg);
	}
	CHECK(ob_parse_time("99999999999999999999", now, &ns, &err) < 0);
	CHECK(ob_parse_time("9223372036.999999999", now, &ns, &err) < 0);
	CHECK(ob_parse_time("9223372035.999999999", now, &ns, &err) == 0 && ns > 0);
}

TEST(filters_as_docker) {
	ob_filter f = {0};
	ms_err err = {0};
	CHECK(ob_filter_match(&f, "k8s/web", "health")); /* no filter: everything */
	CHECK(ob_filter_add(&f, "type=health", &err) == 0);
	CHECK(ob_filter_add(&f, "type=exit", &err) == 0);
	CHECK(ob_filter_match(&f, "c1", "health") && ob_filter_match(&f, "c1", "exit"));
	CHECK(!ob_filter_match(&f, "c1", "start"));
	CHECK(ob_filter_add(&f, "id=web", &err) == 0);
	CHECK(ob_filter_add_id(&f, "ns2/db", &err) == 0);
	CHECK(ob_filter_match(&f, "web", "health"));
	CHECK(ob_filter_match(&f, "k8s/web", "exit")); /* a bare id matches in any namespace */
	CHECK(ob_filter_match(&f, "ns2/db", "exit"));
	CHECK(!ob_filter_match(&f, "db", "exit") && !ob_filter_match(&f, "ns1/db", "exit"));
	CHECK(!ob_filter_match(&f, "web", "start")); /* keys are and-ed */
	CHECK(!ob_filter_match_key(&f, "webby") && ob_filter_match_key(&f, "x/web"));
	CHECK(ob_filter_add(&f, "container=x", &err) == 0 && ob_filter_match_key(&f, "x"));
	CHECK(ob_filter_add(&f, "image=busybox", &err) == -EINVAL &&
	      strstr(err.msg, "unknown key"));
	CHECK(ob_filter_add(&f, "type", &err) == -EINVAL && strstr(err.msg, "KEY=VALUE"));
	CHECK(ob_filter_add(&f, "type=", &err) == -EINVAL && strstr(err.msg, "empty"));
	for (int i = f.ntypes; i < OB_FILTER_MAX; i++)
		CHECK(ob_filter_add(&f, "type=x", &err) == 0);
	CHECK(ob_filter_add(&f, "type=x", &err) == -E2BIG);
}

static void fmt(const char *line, const char *key, char *out, size_t n) {
	ob_event ev;
	ms_err err = {0};
	CHECKF(ob_event_parse(line, strlen(line), &ev, &err) == 0, "%s", err.msg);
	ob_event_format(&ev, key, out, n);
	ob_event_free(&ev);
}

TEST(event_text_as_docker) {
	char out[1024];
	fmt("{\"time\":\"2025-12-05T21:00:00.5Z\",\"id\":\"web\",\"type\":\"health\",\"to\":"
	    "\"unhealthy\",\"from\":\"healthy\",\"streak\":3,\"check\":{\"b\":1,\"a\":[true]}}",
	    "k8s/web", out, sizeof out);
	CHECKF(!strcmp(out, "2025-12-05T21:00:00.500000000Z container health k8s/web "
	                    "(check={\"a\":[true],\"b\":1}, from=healthy, streak=3, to=unhealthy)"),
	       "%s", out);
	fmt("{\"time\":\"2025-12-05T21:00:00Z\",\"id\":\"c\",\"type\":\"start\"}", "c", out,
	    sizeof out);
	CHECKF(!strcmp(out, "2025-12-05T21:00:00.000000000Z container start c"), "%s", out);
	fmt("{\"type\":\"x\"}", "c", out, sizeof out); /* no time: "-" */
	CHECKF(!strcmp(out, "- container x c"), "%s", out);
}

TEST(event_text_escapes_control_characters) {
	char out[1024];
	/* a check's output with a newline, an escape sequence, a C1 CSI and DEL */
	fmt("{\"time\":\"2025-12-05T21:00:00Z\",\"type\":\"health\",\"output\":"
	    "\"a\\nb\\u001b[2Jc\\u009b31md\\u007fe\\tf\",\"k\\u0007\":{\"x\":\"\\u001b\"}}",
	    "c", out, sizeof out);
	CHECKF(!strchr(out, '\033') && !strchr(out, '\n') && !strchr(out, 0x7f) && !strchr(out, 7),
	       "%s", out);
	CHECKF(strstr(out, "output=a\\nb\\x1b[2Jc\\u009b31md\\x7fe\\tf"), "%s", out);
	CHECKF(strstr(out, "k\\x07={\"x\":\"\\u001B\"}"), "%s", out);
	CHECK(!strstr(out, "\xC2\x9B"));
}

TEST(event_text_is_bounded) {
	char big[8192], out[64];
	int n =
	    snprintf(big, sizeof big, "{\"time\":\"2025-12-05T21:00:00Z\",\"type\":\"t\",\"v\":\"");
	memset(big + n, 'x', 6000);
	snprintf(big + n + 6000, sizeof big - (size_t)n - 6000, "\"}");
	fmt(big, "c", out, sizeof out);
	CHECK(strlen(out) == sizeof out - 1 && !strncmp(out, "2025-12-05T21:00:00.0", 21));
	ob_event ev;
	ms_err err = {0};
	CHECK(ob_event_parse(big, strlen(big), &ev, &err) == 0);
	CHECK(ob_event_format(&ev, "c", out, 1) == 0 && out[0] == 0);
	ob_event_free(&ev);
}

TEST(event_parse_refuses_what_is_not_an_event) {
	static const char *const bad[] = {
	    "", "[1,2]", "\"s\"", "{\"a\":", "nul", "{\"a\":1}x", "{\"a\":1,\"a\":2}"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ob_event ev;
		ms_err err = {0};
		CHECKF(ob_event_parse(bad[i], strlen(bad[i]), &ev, &err) < 0 && err.msg[0] &&
		           !ev.obj,
		       "accepted \"%s\"", bad[i]);
	}
	char deep[400];
	memset(deep, '[', sizeof deep);
	ob_event ev;
	ms_err err = {0};
	CHECK(ob_event_parse(deep, sizeof deep, &ev, &err) < 0 && strstr(err.msg, "deeper"));
	/* a type that is not a string, a time that is not a time: kept, shown plain */
	const char *odd = "{\"type\":5,\"time\":\"noon\"}";
	CHECK(ob_event_parse(odd, strlen(odd), &ev, &err) == 0);
	CHECK(!strcmp(ev.type, "") && ev.time_ns == 0);
	ob_event_free(&ev);
}

static const char *status_of(const char *process, bool live) {
	pb_entry e = {.live = live};
	static char s[16];
	e.status = json_loads(process, 0, NULL);
	snprintf(s, sizeof s, "%s", ob_status(&e));
	json_decref(e.status);
	return s;
}

TEST(status_a_reader_shows) {
	CHECK(!strcmp(status_of("{\"process\":{\"status\":\"running\"}}", true), "running"));
	CHECK(!strcmp(status_of("{\"process\":{\"status\":\"created\"}}", true), "created"));
	CHECK(!strcmp(status_of("{\"process\":{\"status\":\"stopped\",\"exit_status\":3}}", true),
	              "exited"));
	/* the supervisor is gone: what it last said, in the past */
	CHECK(!strcmp(status_of("{\"process\":{\"status\":\"running\"}}", false), "stopped"));
	CHECK(!strcmp(status_of("{\"process\":{\"status\":\"running\",\"exit_status\":0}}", false),
	              "exited"));
	CHECK(!strcmp(status_of("{}", true), "unknown"));
}
