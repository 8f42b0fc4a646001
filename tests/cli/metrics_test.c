/* metrics_test.c — the collector of `moonshim metrics` (shim/cli/mxcollect.c)
 * on status.json files written as publish.h's schema says, in a temp root:
 * only live supervisors' containers appear, a status turns into the right
 * series (health per check, probes by outcome, the duration histogram
 * cumulative, keyed counters, the supervisor's runtime), a real cgroup's
 * memory limit and usage are read at the scrape, and hostile statuses — a
 * huge one, a deep one, wrong types, names with quotes, newlines and
 * invalid UTF-8 — cost their own series only, each problem logged once,
 * while the scrape goes on. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/cli/mxcollect.h"
#include "cgroup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char root[64];

static unsigned long long start_time(pid_t pid) {
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	CHECK(f);
	char buf[1024];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strrchr(buf, ')') + 2;
	for (int field = 3; field < 22; field++)
		s = strchr(s, ' ') + 1;
	return strtoull(s, NULL, 10);
}

static void mkroot(void) {
	snprintf(root, sizeof root, "/tmp/moonshim-mxtest-XXXXXX");
	CHECK(mkdtemp(root));
}

/* status.json of container `id` with body (JSON members after the
 * identity), its supervisor pid/start. */
static void put(const char *id, pid_t pid, unsigned long long st, const char *body) {
	char dir[512], path[600];
	snprintf(dir, sizeof dir, "%s/%s", root, id);
	CHECK(mkdir(dir, 0700) == 0);
	snprintf(path, sizeof path, "%s/status.json", dir);
	FILE *f = fopen(path, "w");
	CHECK(f);
	fprintf(f,
	        "{\"version\":1,\"id\":\"x\",\"mode\":\"run\",\"supervisor\":{\"pid\":%d,"
	        "\"start_time\":%llu}%s%s}",
	        (int)pid, st, *body ? "," : "", body);
	fclose(f);
}

static void put_self(const char *id, const char *body) {
	put(id, getpid(), start_time(getpid()), body);
}

static void rmroot(void) {
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	CHECK(system(cmd) == 0);
}

static char *scrape(mx *m, ex_format f) {
	size_t n;
	char *s = mx_scrape(m, f, &n);
	CHECK(s && strlen(s) == n);
	return s;
}

static const char *FULL =
    "\"labels\":{\"container\":\"web\",\"pod\":\"p1\",\"namespace\":\"default\"},"
    "\"cgroup\":null,\"updated\":\"2026-12-05T21:25:37.5Z\","
    "\"process\":{\"status\":\"running\",\"pid\":42,\"started\":\"2026-12-05T21:25:30Z\","
    "\"restarts\":2},"
    "\"health\":{\"Status\":\"unhealthy\",\"FailingStreak\":3,\"Log\":[],\"Ready\":false,"
    "\"Checks\":[{\"Name\":\"http\",\"Role\":\"liveness\",\"Status\":\"unhealthy\","
    "\"FailingStreak\":3,\"Log\":[],\"Probes\":{\"pass\":5,\"fail\":3,\"timeout\":1,"
    "\"error\":0,\"duration\":{\"le\":[0.005,0.05,0.5],\"counts\":[1,4,3,1],\"sum\":1.25}}},"
    "{\"Name\":\"db\",\"Role\":\"readiness\",\"Status\":\"healthy\",\"FailingStreak\":0}]},"
    "\"events\":{\"start\":1,\"memory.high\":4},"
    "\"policy\":{\"actions\":{\"restart\":1,\"kill\":2},\"step\":2},"
    "\"go\":{\"findings\":{\"goroutine_leak\":1},\"sched\":{\"gomaxprocs\":4,\"idleprocs\":1,"
    "\"threads\":9,\"spinningthreads\":0,\"idlethreads\":3,\"runqueue\":7}},"
    "\"errors\":{\"count\":2,\"by_script\":{\"checks.lua\":2}},"
    "\"runtime\":{\"goroutines\":12,\"steals\":3,\"parks\":100,\"switches\":500,"
    "\"threads\":4,\"rss_bytes\":1200000}";

#define L "{id=\"c1\",mode=\"run\",container=\"web\",pod=\"p1\",namespace=\"default\""

TEST(mx_series_from_status) {
	mkroot();
	put_self("c1", FULL);
	mx *m = mx_new(root, NULL, NULL);
	char *s = scrape(m, EX_PROM);
	const char *want[] = {
	    "moonshim_containers{mode=\"run\"} 1\n",
	    "moonshim_container_running" L "} 1\n",
	    "moonshim_container_restarts_total" L "} 2\n",
	    "container_start_time_seconds" L "} 1796505930\n",
	    "moonshim_container_healthy" L "} 0\n",
	    "moonshim_container_health_status" L ",status=\"unhealthy\"} 1\n",
	    "moonshim_container_health_status" L ",status=\"healthy\"} 0\n",
	    "moonshim_container_ready" L "} 0\n",
	    "moonshim_check_healthy" L ",check=\"http\",role=\"liveness\"} 0\n",
	    "moonshim_check_healthy" L ",check=\"db\",role=\"readiness\"} 1\n",
	    "moonshim_check_failing_streak" L ",check=\"http\",role=\"liveness\"} 3\n",
	    "moonshim_probes_total" L ",check=\"http\",role=\"liveness\",outcome=\"timeout\"} 1\n",
	    "moonshim_probe_duration_seconds_bucket" L
	    ",check=\"http\",role=\"liveness\",le=\"0.05\"} 5\n",
	    "moonshim_probe_duration_seconds_bucket" L
	    ",check=\"http\",role=\"liveness\",le=\"+Inf\"} 9\n",
	    "moonshim_probe_duration_seconds_sum" L ",check=\"http\",role=\"liveness\"} 1.25\n",
	    "moonshim_events_total" L ",type=\"memory.high\"} 4\n",
	    "moonshim_policy_actions_total" L ",action=\"kill\"} 2\n",
	    "moonshim_policy_step" L "} 2\n",
	    "moonshim_go_findings_total" L ",type=\"goroutine_leak\"} 1\n",
	    "moonshim_go_sched_run_queue" L "} 7\n",
	    "moonshim_script_errors_total" L ",script=\"checks.lua\"} 2\n",
	    "moonshim_supervisor_parks_total" L "} 100\n",
	    "moonshim_supervisor_resident_memory_bytes" L "} 1200000\n",
	    "moonshim_exporter_status_errors_total 0\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		CHECKF(strstr(s, want[i]), "missing %s in\n%s", want[i], s);
	CHECK(!strstr(s, "container_memory_usage_bytes")); /* no cgroup: no series */
	free(s);
	mx_free(m);
	rmroot();
}

TEST(mx_live_only) {
	mkroot();
	put_self("alive", "\"process\":{\"status\":\"running\"}");
	pid_t dead = fork();
	if (!dead)
		_exit(0);
	unsigned long long st = 0;
	waitpid(dead, NULL, 0);
	put("dead", dead, st, "\"process\":{\"status\":\"running\"}");
	/* our pid, another start time: a reused pid */
	put("reused", getpid(), start_time(getpid()) + 1, "\"process\":{\"status\":\"running\"}");
	mx *m = mx_new(root, "/nonexistent-moonshim-root", NULL);
	char *s = scrape(m, EX_OPENMETRICS);
	CHECK(strstr(s, "id=\"alive\""));
	CHECK(!strstr(s, "id=\"dead\"") && !strstr(s, "id=\"reused\""));
	CHECK(strstr(s, "moonshim_containers{mode=\"run\"} 1\n"));
	CHECK(strstr(s, "moonshim_containers{mode=\"containerd\"} 0\n"));
	free(s);
	mx_free(m);
	rmroot();
}

static int count_lines(FILE *f) {
	fflush(f);
	rewind(f);
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fseek(f, 0, SEEK_END);
	return n;
}

TEST(mx_hostile_status) {
	mkroot();
	put_self("good", "\"process\":{\"status\":\"running\"}");
	/* wrong types everywhere */
	put_self("types", "\"labels\":[1],\"mode\":7,\"process\":{\"status\":1,\"restarts\":\"x\","
	                  "\"started\":\"yesterday\"},\"health\":{\"Status\":[],\"Checks\":[1,"
	                  "{\"Name\":5},{\"Name\":\"c\",\"Probes\":{\"pass\":\"many\",\"duration\":"
	                  "{\"le\":[0.5,0.1],\"counts\":[1,2,3],\"sum\":1}}}]},\"events\":{\"a\":"
	                  "\"b\"},\"go\":\"no\",\"runtime\":{\"goroutines\":{}}");
	/* names with quotes and newlines (JSON escapes), and a directory name
	 * that is not UTF-8 */
	put_self("q\"uote\nd\xff",
	         "\"labels\":{\"container\":\"a\\\"b\\nc\\\\\"},\"events\":{\"x\\\"y\\nz\":1}");
	/* too many checks */
	char *many = malloc(200000), *p = many;
	p += sprintf(p, "\"health\":{\"Status\":\"healthy\",\"Checks\":[");
	for (int i = 0; i < MX_CHECKS_MAX + 10; i++)
		p += sprintf(p, "%s{\"Name\":\"c%d\",\"Status\":\"healthy\"}", i ? "," : "", i);
	sprintf(p, "]}");
	put_self("many", many);
	free(many);
	/* deeper than the loader takes, and bigger than PB_STATUS_MAX */
	char deep[2100] = "\"x\":";
	for (int i = 0; i < 1000; i++)
		strcat(deep, "[");
	for (int i = 0; i < 1000; i++)
		strcat(deep, "]");
	put_self("deep", deep);
	char *huge = malloc(PB_STATUS_MAX + 100);
	memset(huge, ' ', PB_STATUS_MAX + 99);
	memcpy(huge, "\"pad\":\"", 7);
	huge[PB_STATUS_MAX + 97] = '"';
	huge[PB_STATUS_MAX + 98] = 0;
	put_self("huge", huge);
	free(huge);

	FILE *log = tmpfile();
	mx *m = mx_new(root, NULL, log);
	char *s = scrape(m, EX_PROM);
	CHECKF(strstr(s, "moonshim_container_running{id=\"good\",mode=\"run\"} 1\n"), "%s", s);
	CHECK(!strstr(s, "id=\"deep\"") && !strstr(s, "id=\"huge\""));
	CHECK(!strstr(s, "moonshim_container_restarts_total{id=\"types\""));
	CHECK(!strstr(s, "moonshim_probe_duration_seconds_bucket{id=\"types\""));
	/* escaped labels, the bad byte replaced */
	CHECKF(
	    strstr(s, "id=\"q\\\"uote\\nd\xef\xbf\xbd\",mode=\"run\",container=\"a\\\"b\\nc\\\\\""),
	    "%s", s);
	CHECK(strstr(s, "type=\"x\\\"y\\nz\"} 1\n"));
	/* the cap on checks */
	CHECK(strstr(s, "check=\"c63\""));
	CHECK(!strstr(s, "check=\"c64\""));
	/* every line of the exposition is a comment or a sample: no raw newline
	 * escaped into a label */
	for (char *l = s; *l; l = strchr(l, '\n') + 1)
		CHECKF(*l == '#' || !strncmp(l, "moonshim_", 9) || !strncmp(l, "container_", 10),
		       "bad line: %.60s", l);
	int lines = count_lines(log);
	CHECKF(lines >= 10, "%d log lines", lines);
	char text[8192];
	rewind(log);
	size_t n = fread(text, 1, sizeof text - 1, log);
	text[n] = 0;
	CHECKF(strstr(text, "types: process.restarts: not a number\n"), "%s", text);
	CHECK(strstr(text, "types: health.Checks[0]: not an object\n"));
	CHECK(strstr(text, "many: health.Checks: more than 64"));
	CHECK(strstr(text, "types: health.Checks[2].Probes.duration: bounds must be ascending"));
	CHECKF(strstr(text, "deep: ") && strstr(text, "nested deeper than"), "%s", text);
	CHECKF(strstr(text, "huge: ") && strstr(text, "larger than"), "%s", text);
	free(s);
	/* a second scrape says nothing new: each problem is logged once */
	s = scrape(m, EX_PROM);
	CHECKF(count_lines(log) == lines, "%d then %d", lines, count_lines(log));
	CHECK(!strstr(s, "moonshim_exporter_status_errors_total 0\n"));
	free(s);
	mx_free(m);
	fclose(log);
	rmroot();
}

/* A real cgroup with a memory limit: its limit and usage are read at the
 * scrape, whatever the host's layout. */
TEST(mx_cgroup_read_at_scrape) {
	cg_host h;
	cg_err e;
	if (cg_host_detect(&h, "/proc/self/mounts", &e) || geteuid()) {
		printf("skip: %s\n", geteuid() ? "not root" : e.msg);
		return;
	}
	char rel[64], body[256];
	snprintf(rel, sizeof rel, "moonshim-mxtest-%d", (int)getpid());
	cg *g = cg_open(&h, rel, true, &e);
	CHECKF(g, "%s", e.msg);
	cg_limits l;
	cg_limits_init(&l);
	l.memory_max = 64 << 20;
	l.memory_high = 48 << 20;
	CHECKF(cg_set_limits(g, &l, &e) == 0, "%s", e.msg);
	CHECK(cg_attach(g, getpid(), &e) == 0);
	mkroot();
	snprintf(body, sizeof body, "\"cgroup\":\"%s\"", rel);
	put_self("cg", body);
	mx *m = mx_new(root, NULL, NULL);
	char *s = scrape(m, EX_PROM);
	CHECKF(strstr(s, "container_spec_memory_limit_bytes{id=\"cg\",mode=\"run\"} 67108864\n"),
	       "%s", s);
	CHECK(strstr(s, "moonshim_memory_high_bytes{id=\"cg\",mode=\"run\"} 50331648\n"));
	CHECK(strstr(s, "container_memory_usage_bytes{id=\"cg\",mode=\"run\"} "));
	CHECK(strstr(s, "container_memory_working_set_bytes{id=\"cg\",mode=\"run\"} "));
	CHECK(strstr(s, "moonshim_memory_events_total{id=\"cg\",mode=\"run\",event=\"max\"} "));
	CHECK(strstr(s, "container_cpu_usage_seconds_total{id=\"cg\",mode=\"run\"} "));
	free(s);
	mx_free(m);
	rmroot();
	/* leave the cgroup, then remove it */
	cg *top = cg_open(&h, "", false, &e);
	CHECK(top && cg_attach(top, getpid(), &e) == 0);
	cg_close(top);
	cg_remove(g, &e);
	cg_close(g);
}
