/* selfwatch_test.c — the Go detectors on moonshim's own runtime
 * (gw_watch_self): goroutines piling up blocked at one rt_go call site are
 * reported as a go.goroutine_leak of subject "moonshim" naming that
 * file:line, its label and its wait; a fixed set of blocked goroutines
 * beside them is not. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/go/gowatch.h"
#include "rt.h"

#include <stdio.h>
#include <string.h>

#define MS 1000000LL

typedef struct {
	rt_mutex mu;
	int leaks;
	char site[256], function[64], wait[64], subject[32], all_sites[2048];
} seen;

static void on_event(void *arg, const char *type, json_t *f) {
	seen *s = arg;
	if (!strcmp(type, "go.goroutine_leak")) {
		const char *site = json_string_value(json_object_get(f, "site"));
		rt_mutex_lock(&s->mu);
		if (site) {
			s->leaks++;
			snprintf(s->site, sizeof s->site, "%s", site);
			snprintf(s->function, sizeof s->function, "%s",
			         json_string_value(json_object_get(f, "function")) ?: "");
			snprintf(s->wait, sizeof s->wait, "%s",
			         json_string_value(json_object_get(f, "wait")) ?: "");
			snprintf(s->subject, sizeof s->subject, "%s",
			         json_string_value(json_object_get(f, "subject")) ?: "");
			size_t l = strlen(s->all_sites);
			snprintf(s->all_sites + l, sizeof s->all_sites - l, "%s ", site);
		}
		rt_mutex_unlock(&s->mu);
	}
	json_decref(f);
}

static rt_chan *never;
static rt_waitgroup blocked_wg = RT_WAITGROUP_INIT;

static void blocked(void *arg) {
	rt_chan_recv(never, NULL);
	rt_wg_done(&blocked_wg);
}

static int self_main(void *arg) {
	gd_config c;
	gd_config_default(&c);
	c.site_min_count = 40; /* the default (100) at this test's pace takes longer */
	seen s = {.mu = RT_MUTEX_INIT};
	gw *g =
	    gw_watch_self(0.05, &(gw_target){.netns_fd = -1, .emit = on_event, .emit_arg = &s}, &c);
	CHECK(g);
	never = rt_chan_new(1, 0);
	static const int fixed_line = __LINE__ + 2; /* 60 blocked for good: not a leak */
	rt_wg_add(&blocked_wg, 60);
	for (int k = 0; k < 60; k++)
		rt_go(blocked, NULL, "test fixed");
	static const int leak_line = __LINE__ + 5; /* 10 more every 50 ms: a leak */
	int found = 0;
	for (int i = 0; i < 100 && !found; i++) {
		rt_wg_add(&blocked_wg, 10);
		for (int k = 0; k < 10; k++)
			rt_go(blocked, NULL, "test leaker");
		rt_sleep(50 * MS);
		rt_mutex_lock(&s.mu);
		found = s.leaks;
		rt_mutex_unlock(&s.mu);
	}
	gw_stop(g);
	rt_chan_close(never); /* every blocked goroutine ends */
	rt_wg_wait(&blocked_wg);
	rt_chan_free(never);
	char want[64], fixed[64];
	snprintf(want, sizeof want, "selfwatch_test.c:%d", leak_line);
	snprintf(fixed, sizeof fixed, "selfwatch_test.c:%d", fixed_line);
	CHECKF(found, "no go.goroutine_leak with a site from our own goroutines");
	CHECKF(strstr(s.site, want) && !strcmp(s.function, "test leaker") &&
	           !strcmp(s.wait, "chan receive") && !strcmp(s.subject, "moonshim"),
	       "leak at %s (%s, %s, subject %s), want %s", s.site, s.function, s.wait, s.subject,
	       want);
	CHECKF(!strstr(s.all_sites, fixed), "the fixed set was reported: %s", s.all_sites);
	return 0;
}

TEST(selfwatch_reports_our_own_goroutines_piling_up_at_one_site) {
	run_rt(2, self_main, NULL);
}
