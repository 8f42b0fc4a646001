/* godetect_test.c — the detectors as a user would see them: a leak is
 * reported once, with its site and slope; a bounded pool, bursts that
 * drain, flat and cyclic load never are. Statistics against known values
 * (../shared/reference/goroutine-leaks.md §2.5), scheduler anomalies on the
 * real SCHED sequences of §1.1, and GC thrash near a memory limit (made-up
 * sequences, and the real gctrace lines of the gc-thrash fixture); and the
 * captured output of an idle program under Go 1.19, 1.26 and 1.27
 * (tests/go/formats), which no detector may report on. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/go/godetect.h"
#include "captures.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SEC    1000000000LL
#define EV_MAX 16

static bool near(double a, double b, double tol) {
	return fabs(a - b) <= tol;
}

/* ─── statistics ─────────────────────────────────────────────────────── */

TEST(stats_mann_kendall) {
	double y[10];
	for (int i = 0; i < 10; i++)
		y[i] = i;
	/* S = 45, Var = 10·9·25/18 = 125: Z = 44/sqrt(125) */
	CHECK(near(gd_mann_kendall_z(y, 10), 44 / sqrt(125), 1e-12));
	CHECK(near(gd_mann_kendall_z(y, 10), 3.94, 0.005));
	for (int i = 0; i < 10; i++)
		y[i] = 10 - i;
	CHECK(near(gd_mann_kendall_z(y, 10), -44 / sqrt(125), 1e-12));
	for (int i = 0; i < 10; i++)
		y[i] = 7;
	CHECK(gd_mann_kendall_z(y, 10) == 0);
	/* ties: {1,2,2,3}: S = 5, Var = (4·3·13 - 2·1·9)/18 */
	double t4[] = {1, 2, 2, 3};
	CHECK(near(gd_mann_kendall_z(t4, 4), 4 / sqrt((156.0 - 18) / 18), 1e-12));
	/* §2.5 worked example: the captured totals, S = 15 of 15 pairs */
	double tot[] = {122, 686, 1491, 2175, 2869, 3440};
	CHECK(near(gd_mann_kendall_z(tot, 6), 14 / sqrt(6 * 5 * 17 / 18.0), 1e-12));
	CHECK(gd_mann_kendall_z(tot, 2) == 0);
}

TEST(stats_p_value_and_theil_sen) {
	CHECK(near(gd_p_value(1.959964), 0.05, 1e-5));
	CHECK(near(gd_p_value(-1.959964), 0.05, 1e-5));
	CHECK(gd_p_value(0) == 1);
	CHECK(gd_p_value(3.94) < 1e-4);
	double t[10], y[10];
	for (int i = 0; i < 10; i++)
		t[i] = i, y[i] = 2 * i + 1;
	CHECK(near(gd_theil_sen(t, y, 10), 2, 1e-12));
	y[5] = 1000; /* one outlier does not move the median slope */
	CHECK(near(gd_theil_sen(t, y, 10), 2, 1e-12));
	/* §2.5: 22.9 goroutines/s on the captured totals */
	double ts[] = {5, 30, 65, 95, 125, 150}, tot[] = {122, 686, 1491, 2175, 2869, 3440};
	double s = gd_theil_sen(ts, tot, 6);
	CHECKF(s > 22.6 && s < 23.1 && near(s, 22.9, 0.05), "%f", s);
	CHECK(isnan(gd_theil_sen(t, y, 1)));
	double same[] = {1, 1};
	CHECK(isnan(gd_theil_sen(same, y, 2)));
}

/* ─── the goroutine count's trend ───────────────────────────────────── */

/* Feed count(i) every 10 s for n samples; the events seen, the last one in *last. */
static int feed_series(gd_detector *d, int n, double (*count)(int), gd_event *last) {
	int events = 0;
	gd_event ev[EV_MAX];
	for (int i = 0; i < n; i++) {
		int k =
		    gd_feed_count(d, (int64_t)i * 10 * SEC, (int64_t)llround(count(i)), ev, EV_MAX);
		for (int j = 0; j < k; j++) {
			CHECK(!strcmp(ev[j].type, "go.goroutine_leak") &&
			      !strcmp(ev[j].kind, "trend"));
			*last = ev[j];
			events++;
		}
	}
	return events;
}

static uint32_t noise_state = 12345;
static double noise(void) { /* ±10, deterministic */
	noise_state = noise_state * 1103515245u + 12345u;
	return (double)(noise_state >> 16 & 0x7fff) / 0x7fff * 20 - 10;
}

static double leak_30_per_min(int i) {
	return 200 + 5.0 * i + noise();
} /* 5 per 10 s */
static double flat(int i) {
	return 500 + noise();
}
static double pool(int i) {
	return 1000;
}
static double drain(int i) {
	static const double burst[] = {200, 900, 700, 450, 250, 200};
	return burst[i % 6] + noise();
}
static double cyclic(int i) {
	return 1000 + 300 * sin(2 * M_PI * i / 12.0);
}
static double step_then_flat(int i) {
	return i < 20 ? 300 : 800 + noise();
}

TEST(trend_linear_leak_fires_once_with_its_slope) {
	gd_detector *d = gd_new(NULL);
	gd_event e;
	CHECK(feed_series(d, 60, leak_30_per_min, &e) == 1);
	CHECKF(near(e.slope_per_min, 30, 3), "slope %f", e.slope_per_min);
	CHECK(e.count > 200 && e.value < 0.01 && e.threshold == 0.01 && e.detail[0]);
	gd_free(d);
}

TEST(trend_benign_shapes_never_fire) {
	double (*shapes[])(int) = {flat, pool, drain, cyclic, step_then_flat};
	for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
		gd_detector *d = gd_new(NULL);
		gd_event e;
		int n = feed_series(d, 200, shapes[s], &e);
		CHECKF(n == 0, "shape %zu fired: %s", s, e.detail);
		gd_free(d);
	}
}

/* Goroutines that rise with the scheduler's load (busy Ps, queued work)
 * are load, not a leak (§2.5 "normalised by load"). */
TEST(trend_that_tracks_load_is_not_a_leak) {
	gd_detector *d = gd_new(NULL);
	gd_event ev[EV_MAX];
	for (int i = 0; i < 60; i++) {
		static gp_sched s;
		char line[256];
		snprintf(line, sizeof line,
		         "SCHED %dms: gomaxprocs=4 idleprocs=0 threads=8 spinningthreads=0 "
		         "idlethreads=0 runqueue=%d [1 1 1 1]",
		         i * 10000, 10 + i * 2);
		CHECK(gp_parse_sched(line, strlen(line), &s) == GP_SCHED_OK);
		int64_t t = (int64_t)i * 10 * SEC;
		gd_feed_sched(d, t, &s, 0, ev, EV_MAX); /* saturation may fire: not counted */
		int k = gd_feed_count(d, t + 1, 300 + 5 * i, ev, EV_MAX);
		CHECKF(k == 0, "fired at %d: %s", i, ev[0].detail);
	}
	gd_free(d);
}

/* ─── blocking sites (LeakProf) ─────────────────────────────────────── */

/* A debug=1 body in the §1.3 capture's form with the given counts at the
 * five leak sites of the leaking service. */
static gp_profile profile_at(int64_t total, int64_t send, int64_t recv, int64_t labelled,
                             int64_t wg, int64_t mu) {
	static char text[4096];
	snprintf(
	    text, sizeof text,
	    "goroutine profile: total %lld\n"
	    "%lld @ 0x43b296 0x40708c 0x406c3d 0x671309 0x46b281\n"
	    "#\t0x671308\tmain.fetchWithTimeout.func1+0x48\t/build/leak/main.go:24\n\n"
	    "%lld @ 0x43b296 0x407e9b 0x407998 0x671345 0x46b281\n"
	    "#\t0x671344\tmain.waitForResult+0x24\t/build/leak/main.go:36\n\n"
	    "%lld @ 0x43b296 0x407e9b 0x407998 0x67167f 0x46b281\n"
	    "# labels: {\"handler\":\"upload\", \"tenant\":\"t42\"}\n"
	    "#\t0x67167e\tmain.labelledLeak.func1.1+0x1e\t/build/leak/main.go:44\n\n"
	    "%lld @ 0x43b296 0x44c1de 0x44c1b5 0x467325 0x472ff2 0x6719fd 0x46b281\n"
	    "#\t0x467324\tsync.runtime_Semacquire+0x24\t/usr/lib/go-1.19/src/runtime/sema.go:62\n"
	    "#\t0x472ff1\tsync.(*WaitGroup).Wait+0x51\t/usr/lib/go-1.19/src/sync/waitgroup.go:139\n"
	    "#\t0x6719fc\tmain.main.func4+0x1c\t\t/build/leak/main.go:78\n\n"
	    "%lld @ 0x43b296 0x44c1de 0x44c1b5 0x467445 0x471825 0x671719 0x6716f5 0x46b281\n"
	    "#\t0x467444\tsync.runtime_SemacquireMutex+0x24\t/usr/lib/go-1.19/src/runtime/"
	    "sema.go:77\n"
	    "#\t0x471824\tsync.(*Mutex).lockSlow+0x164\t\t/usr/lib/go-1.19/src/sync/mutex.go:171\n"
	    "#\t0x671718\tsync.(*Mutex).Lock+0x38\t\t\t/usr/lib/go-1.19/src/sync/mutex.go:90\n"
	    "#\t0x6716f4\tmain.main.func3+0x14\t\t\t/build/leak/main.go:77\n\n",
	    (long long)total, (long long)send, (long long)recv, (long long)labelled, (long long)wg,
	    (long long)mu);
	gp_profile p;
	char msg[128];
	CHECKF(gp_parse_profile(text, strlen(text), 0, &p, msg, sizeof msg) == 0, "%s", msg);
	return p;
}

/* §1.3's per-site table: the six scrapes of the leaking service. */
static const int64_t scrape[6][7] = {
    {5, 122, 51, 51, 5, 5, 5},
    {30, 686, 297, 297, 29, 29, 29},
    {65, 1491, 647, 647, 64, 64, 64},
    {95, 2175, 944, 944, 94, 94, 94},
    {125, 2869, 1246, 1246, 124, 124, 124},
    {150, 3440, 1494, 1494, 149, 149, 149},
};

static int feed_scrapes(gd_detector *d, gd_event *all, int max) {
	int n = 0;
	for (int i = 0; i < 6; i++) {
		const int64_t *r = scrape[i];
		gp_profile p = profile_at(r[1], r[2], r[3], r[4], r[5], r[6]);
		n += gd_feed_profile(d, r[0] * SEC, &p, false, all + n, max - n);
		gp_profile_free(&p);
	}
	return n;
}

TEST(site_growth_names_the_site) {
	/* §2.5's production-like floor, 1000, over 3 scrapes: the two per-tick leaks */
	gd_config big;
	gd_config_default(&big);
	big.site_min_count = 1000;
	big.site_min_samples = 3;
	gd_detector *d = gd_new(&big);
	gd_event ev[EV_MAX];
	int n = feed_scrapes(d, ev, EV_MAX);
	CHECKF(n == 2, "%d events", n);
	CHECK(!strcmp(ev[0].kind, "site") && !strcmp(ev[1].kind, "site"));
	CHECK(!strcmp(ev[0].site, "/build/leak/main.go:24"));
	CHECK(!strcmp(ev[0].function, "main.fetchWithTimeout.func1"));
	CHECK(!strcmp(ev[1].site, "/build/leak/main.go:36") && ev[1].count == 1246);
	CHECKF(ev[0].slope_per_min > 550 && ev[0].slope_per_min < 650, "%f", ev[0].slope_per_min);
	CHECK(ev[0].threshold == 1000 && strstr(ev[0].detail, "main.go:24"));
	gd_free(d);

	/* with a floor of 100, the slower sites too, each named with its wait */
	gd_config c;
	gd_config_default(&c);
	c.site_min_count = 100;
	c.site_min_samples = 3;
	d = gd_new(&c);
	n = feed_scrapes(d, ev, EV_MAX);
	/* all five at their third scrape (647 and 124), the fast two again at
	 * 1494 (twice 647); 149 is not twice 124 */
	CHECKF(n == 7, "%d events", n);
	bool wg = false, mu = false;
	for (int i = 0; i < n; i++) {
		wg |= !strcmp(ev[i].site, "/build/leak/main.go:78") &&
		      !strcmp(ev[i].wait, "sync.WaitGroup.Wait");
		mu |= !strcmp(ev[i].site, "/build/leak/main.go:77") &&
		      !strcmp(ev[i].wait, "sync.Mutex.Lock");
	}
	CHECK(wg && mu);
	gd_free(d);
}

TEST(site_fires_again_when_doubled) {
	gd_config c;
	gd_config_default(&c);
	c.site_min_count = 100;
	c.site_min_samples = 3;
	gd_detector *d = gd_new(&c);
	gd_event ev[EV_MAX];
	int64_t counts[] = {50, 80, 120, 150, 200, 240, 260, 400};
	int fired[8] = {0};
	for (int i = 0; i < 8; i++) {
		gp_profile p = profile_at(counts[i] * 2, counts[i], 0, 0, 0, 0);
		int n = gd_feed_profile(d, (int64_t)i * 30 * SEC, &p, false, ev, EV_MAX);
		for (int k = 0; k < n; k++)
			fired[i] += !strcmp(ev[k].kind, "site");
		gp_profile_free(&p);
	}
	/* 120 first, then not until 240 (twice 120) */
	CHECK(fired[2] == 1 && fired[3] == 0 && fired[4] == 0 && fired[5] == 1 && fired[6] == 0);
	CHECK(fired[7] == 0); /* 400 < 2·240 */
	gd_free(d);
}

/* debug=2 text: n goroutines parked on a channel receive at main.go:27,
 * each ", M minutes" into its wait (M 0: the field absent, as Go prints it
 * under a minute). */
static gp_profile debug2_at(int n, int minutes) {
	size_t cap = (size_t)n * 400 + 64, len = 0;
	char *text = malloc(cap);
	for (int i = 0; i < n; i++) {
		char wait[32] = "";
		if (minutes)
			snprintf(wait, sizeof wait, ", %d minutes", minutes);
		len += (size_t)snprintf(text + len, cap - len,
		                        "goroutine %d [chan receive%s]:\n"
		                        "main.worker(0xc000012345)\n"
		                        "\t/build/leak/main.go:27 +0x3d\n"
		                        "created by main.main\n"
		                        "\t/build/leak/main.go:40 +0x5e\n\n",
		                        i + 10, wait);
	}
	gp_profile p;
	char msg[128];
	CHECKF(gp_parse_profile(text, len, 0, &p, msg, sizeof msg) == 0, "%s", msg);
	free(text);
	return p;
}

/* A slow leak — one goroutine every four minutes, under site_min_slope —
 * is a leak only when debug=2 shows its goroutines waiting for minutes. */
TEST(site_slow_growth_counts_with_persistent_waiters) {
	gd_config c;
	gd_config_default(&c);
	int fired[2] = {0, 0};
	for (int persistent = 0; persistent < 2; persistent++) {
		gd_detector *d = gd_new(&c);
		gd_event ev[EV_MAX];
		for (int i = 0; i < 8; i++) {
			gp_profile p = debug2_at(c.site_min_count + i / 4, persistent ? 5 + i : 0);
			int n = gd_feed_profile(d, (int64_t)i * 60 * SEC, &p, false, ev, EV_MAX);
			for (int k = 0; k < n; k++)
				if (!strcmp(ev[k].kind, "site")) {
					fired[persistent]++;
					CHECK(!strcmp(ev[k].site, "/build/leak/main.go:27") &&
					      !strcmp(ev[k].wait, "chan receive") &&
					      strstr(ev[k].detail, "waiting for minutes"));
				}
			gp_profile_free(&p);
		}
		gd_free(d);
	}
	CHECKF(fired[0] == 0 && fired[1] == 1, "without minutes %d, with %d", fired[0], fired[1]);
}

/* A pool of 1200 workers parked on their job channel, bursts of 1500 that
 * drain, and a fixed 2000: none grows, none is a leak. */
TEST(site_benign_shapes_never_fire) {
	gd_detector *d = gd_new(NULL);
	gd_event ev[EV_MAX];
	for (int i = 0; i < 40; i++) {
		int64_t burst = (int64_t[]){0, 1500, 300}[i % 3];
		gp_profile p = profile_at(1200 + burst + 2000, 1200, burst, 2000, 0, 0);
		int n = gd_feed_profile(d, (int64_t)i * 30 * SEC, &p, false, ev, EV_MAX);
		CHECKF(n == 0, "profile %d: %s", i, ev[0].detail);
		gp_profile_free(&p);
	}
	gd_free(d);
}

/* A hostile scrape: the scraper keeps up to 20000 stacks, and each may be a
 * site of its own. Every tenth stack is one leaking site whose counts must
 * be summed; the rest are distinct. Grouping compared each stack with every
 * group so far (~5 s of CPU per profile); now ~0.13 s. */
#define MANY_STACKS 20000
#define LEAK_EVERY  10
/* seconds of CPU for three profiles (they took 15 s; now ~0.4 s, ~1.5 s under ASan) */
#define MANY_CPU_MAX 4.0
static char many_func[MANY_STACKS][24];
static gp_frame many_frame[MANY_STACKS];
static gp_stack many_stack[MANY_STACKS];

static gp_profile many_sites(int64_t leak_count) {
	static char leak_func[] = "main.leak", leak_file[] = "/src/leak.go",
	            file[] = "/src/main.go";
	for (int i = 0; i < MANY_STACKS; i++) {
		bool leak = i % LEAK_EVERY == 0;
		snprintf(many_func[i], sizeof many_func[i], "main.worker%d", i);
		many_frame[i] = (gp_frame){.func = leak ? leak_func : many_func[i],
		                           .file = leak ? leak_file : file,
		                           .line = leak ? 7 : i};
		many_stack[i] = (gp_stack){.count = leak ? leak_count : 1,
		                           .frames = &many_frame[i],
		                           .nframes = 1,
		                           .runtime_top = true};
	}
	return (gp_profile){
	    .debug = 1, .total = MANY_STACKS, .stacks = many_stack, .nstacks = MANY_STACKS};
}

static double cpu_seconds(void) {
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(site_many_distinct_stacks_are_summed_quickly) {
	gd_config c;
	gd_config_default(&c);
	c.site_min_count = 100;
	c.site_min_samples = 3;
	gd_detector *d = gd_new(&c);
	gd_event ev[EV_MAX];
	int n = 0;
	double t0 = cpu_seconds();
	for (int k = 1; k <= 3; k++) {
		gp_profile p = many_sites(k);
		n = gd_feed_profile(d, (int64_t)k * 30 * SEC, &p, false, ev, EV_MAX);
	}
	double spent = cpu_seconds() - t0;
	CHECKF(spent < MANY_CPU_MAX, "%.2f s of CPU", spent);
	int64_t want = 3 * MANY_STACKS / LEAK_EVERY;
	bool found = false;
	for (int i = 0; i < n; i++)
		found |= !strcmp(ev[i].site, "/src/leak.go:7") && ev[i].count == want;
	CHECKF(found, "%d events, first %s", n, n ? ev[0].detail : "-");
	gd_free(d);
}

TEST(leakprofile_is_a_leak_by_construction) {
	static const char text[] =
	    "goroutineleak profile: total 6\n"
	    "6 @ 0x43b296 0x40708c 0x406c3d 0x671309 0x46b281\n"
	    "#\t0x671308\tapp.(*Server[...]).AggregateResults.func1+0x48\tapp/server.go:37\n"
	    "\n";
	gp_profile p;
	CHECK(gp_parse_profile(text, sizeof text - 1, 0, &p, NULL, 0) == 0);
	gd_detector *d = gd_new(NULL);
	gd_event ev[EV_MAX];
	CHECK(gd_feed_profile(d, 10 * SEC, &p, true, ev, EV_MAX) == 1);
	CHECK(!strcmp(ev[0].type, "go.goroutine_leak") && !strcmp(ev[0].kind, "leakprofile"));
	CHECK(!strcmp(ev[0].site, "app/server.go:37") && ev[0].count == 6);
	CHECK(gd_feed_profile(d, 20 * SEC, &p, true, ev, EV_MAX) == 0); /* once */
	gp_profile_free(&p);
	gd_free(d);
}

/* ─── scheduler anomalies ───────────────────────────────────────────── */

typedef struct fed {
	int n;
	gd_event ev[64];
} fed;

/* Feed real SCHED lines (time from their ms) and collect the events. */
static void feed_lines(gd_detector *d, const char *const *lines, int n, double quota, fed *f) {
	static gp_sched s;
	for (int i = 0; i < n; i++) {
		CHECKF(gp_parse_sched(lines[i], strlen(lines[i]), &s) == GP_SCHED_OK, "%s",
		       lines[i]);
		f->n += gd_feed_sched(d, s.ms * 1000000LL, &s, quota, f->ev + f->n, 64 - f->n);
	}
}

static int count_kind(const fed *f, const char *kind) {
	int n = 0;
	for (int i = 0; i < f->n; i++)
		n += !strcmp(f->ev[i].kind, kind) && !strcmp(f->ev[i].type, "go.sched_anomaly");
	return n;
}

static gd_detector *sched_detector(void) {
	gd_config c;
	gd_config_default(&c);
	c.saturation_samples = 3; /* the captures are 200–250 ms apart, not 1 s */
	return gd_new(&c);
}

static const char *const burst[] = {
    "SCHED 0ms: gomaxprocs=4 idleprocs=2 threads=3 spinningthreads=1 idlethreads=0 runqueue=0 "
    "[0 0 0 0]",
    "SCHED 200ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=363 [14 58 10 189]",
    "SCHED 404ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=216 [34 11 51 142]",
    "SCHED 606ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=133 [33 17 7 90]",
    "SCHED 808ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=50 [9 0 209 47]",
    "SCHED 1010ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=5 [24 22 71 5]",
    "SCHED 1216ms: gomaxprocs=4 idleprocs=4 threads=5 spinningthreads=0 idlethreads=3 "
    "runqueue=0 [0 0 0 0]",
    "SCHED 5538ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=402 [100 199 99 100]",
};
static const char *const pingpong[] = {
    "SCHED 253ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=24 [17 43 1 7]",
    "SCHED 511ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=31 [9 27 0 6]",
    "SCHED 764ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=41 [4 15 0 7]",
    "SCHED 3821ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
    "runqueue=48 [6 0 1 5]",
    "SCHED 4077ms: gomaxprocs=4 idleprocs=4 threads=5 spinningthreads=0 idlethreads=3 "
    "runqueue=0 [0 0 0 0]",
};
static const char *const syscalls[] = {
    "SCHED 0ms: gomaxprocs=4 idleprocs=2 threads=5 spinningthreads=1 idlethreads=2 runqueue=0 "
    "[0 0 0 0]",
    "SCHED 500ms: gomaxprocs=4 idleprocs=4 threads=91 spinningthreads=0 idlethreads=0 "
    "runqueue=0 [0 0 0 0]",
    "SCHED 1000ms: gomaxprocs=4 idleprocs=4 threads=181 spinningthreads=0 idlethreads=0 "
    "runqueue=0 [0 0 0 0]",
    "SCHED 1508ms: gomaxprocs=4 idleprocs=4 threads=201 spinningthreads=0 idlethreads=1 "
    "runqueue=0 [0 0 0 0]",
    "SCHED 3538ms: gomaxprocs=4 idleprocs=4 threads=201 spinningthreads=0 idlethreads=97 "
    "runqueue=0 [0 0 0 0]",
    "SCHED 4552ms: gomaxprocs=4 idleprocs=4 threads=201 spinningthreads=0 idlethreads=199 "
    "runqueue=0 [0 0 0 0]",
};
/* the leaking service: goroutines 122 -> 3,440, the SCHED lines calm */
static const char *const calm[] = {
    "SCHED 0ms: gomaxprocs=4 idleprocs=3 threads=3 spinningthreads=0 idlethreads=0 runqueue=0 "
    "[0 0 0 0]",
    "SCHED 5007ms: gomaxprocs=4 idleprocs=4 threads=8 spinningthreads=0 idlethreads=3 "
    "runqueue=0 [0 0 0 0]",
    "SCHED 145167ms: gomaxprocs=4 idleprocs=4 threads=10 spinningthreads=0 idlethreads=5 "
    "runqueue=0 [0 0 0 0]",
};
#define N(a) ((int)(sizeof a / sizeof *a))

TEST(sched_burst_and_pingpong_saturate) {
	gd_detector *d = sched_detector();
	fed f = {0};
	feed_lines(d, burst, N(burst), 0, &f);
	CHECKF(f.n == 1 && count_kind(&f, "saturation") == 1, "%d events", f.n);
	CHECK(f.ev[0].value == 133 + 33 + 17 + 7 + 90 && f.ev[0].threshold == 8);
	gd_free(d);
	d = sched_detector();
	f = (fed){0};
	feed_lines(d, pingpong, N(pingpong), 0, &f);
	CHECK(f.n == 1 && count_kind(&f, "saturation") == 1);
	CHECK(strstr(f.ev[0].detail, "no idle P"));
	gd_free(d);
	/* with the 30-sample default, those short runs are not saturation */
	d = gd_new(NULL);
	f = (fed){0};
	feed_lines(d, burst, N(burst), 0, &f);
	feed_lines(d, pingpong, N(pingpong), 0, &f);
	CHECK(f.n == 0);
	gd_free(d);
}

TEST(sched_thread_growth_on_blocking_syscalls) {
	gd_detector *d = gd_new(NULL);
	fed f = {0};
	feed_lines(d, syscalls, N(syscalls), 0, &f);
	CHECKF(f.n == 1 && count_kind(&f, "thread_growth") == 1, "%d events", f.n);
	CHECK(f.ev[0].value == 201 && f.ev[0].threshold == 4 * 4 + 50);
	gd_free(d);
}

TEST(sched_calm_leaking_service_is_quiet) {
	gd_detector *d = sched_detector();
	fed f = {0};
	for (int i = 0; i < 20; i++)
		feed_lines(d, calm, N(calm), 4.0, &f); /* the ms going back: a restart each round */
	CHECK(f.n == 0);
	gd_free(d);
}

TEST(sched_idle_with_work_and_imbalance) {
	/* Go 1.19 lines in the captures' form: an idle P while a local queue holds
	 * work (golang/go#45867's pattern), P1's 184 from the scheddetail sample */
	static const char *const idle[] = {
	    "SCHED 0ms: gomaxprocs=4 idleprocs=1 threads=5 spinningthreads=1 idlethreads=1 "
	    "runqueue=0 [1 0 0 0]",
	    "SCHED 1000ms: gomaxprocs=4 idleprocs=2 threads=5 spinningthreads=0 idlethreads=2 "
	    "runqueue=0 [0 184 0 3]",
	    "SCHED 2000ms: gomaxprocs=4 idleprocs=2 threads=5 spinningthreads=0 idlethreads=2 "
	    "runqueue=0 [0 190 0 2]",
	    "SCHED 3000ms: gomaxprocs=4 idleprocs=2 threads=5 spinningthreads=0 idlethreads=2 "
	    "runqueue=0 [0 171 0 0]",
	    "SCHED 4000ms: gomaxprocs=4 idleprocs=2 threads=5 spinningthreads=0 idlethreads=2 "
	    "runqueue=0 [0 175 0 0]",
	};
	gd_detector *d = gd_new(NULL);
	fed f = {0};
	feed_lines(d, idle, 2, 0, &f);
	CHECK(f.n == 0); /* one or two samples are a racy snapshot */
	feed_lines(d, idle + 2, 1, 0, &f);
	CHECKF(f.n == 1 && count_kind(&f, "idle_with_work") == 1, "%d", f.n);
	feed_lines(d, idle + 3, 1, 0, &f);
	CHECKF(f.n == 2 && count_kind(&f, "runq_imbalance") == 1, "%d", f.n);
	CHECK(f.ev[1].value == 171 && f.ev[1].threshold == 128);
	feed_lines(d, idle + 4, 1, 0, &f);
	CHECK(f.n == 2); /* once per condition */
	gd_free(d);
}

TEST(sched_gomaxprocs_over_quota) {
	static const char *const eight[] = {
	    "SCHED 0ms: gomaxprocs=8 idleprocs=7 threads=3 spinningthreads=0 idlethreads=0 "
	    "runqueue=0 [0 0 0 0 0 0 0 0]",
	    "SCHED 1000ms: gomaxprocs=8 idleprocs=8 threads=9 spinningthreads=0 idlethreads=3 "
	    "runqueue=0 [0 0 0 0 0 0 0 0]",
	};
	gd_detector *d = gd_new(NULL);
	fed f = {0};
	feed_lines(d, eight, 2, 1.0, &f);
	CHECKF(f.n == 1 && count_kind(&f, "gomaxprocs_over_quota") == 1, "%d", f.n);
	CHECK(f.ev[0].value == 8 && f.ev[0].threshold == 2 &&
	      strstr(f.ev[0].detail, "GOMAXPROCS=8"));
	/* a new process on the stream (ms back to 0) is judged again */
	feed_lines(d, eight, 1, 1.0, &f);
	CHECK(f.n == 2);
	gd_free(d);
	/* 4 Ps on 4 cores, 8 Ps on 7.5 cores, and no quota: fine */
	d = gd_new(NULL);
	f = (fed){0};
	feed_lines(d, burst, 1, 4.0, &f);
	feed_lines(d, eight + 1, 1, 7.5, &f);
	feed_lines(d, eight, 1, 0, &f);
	CHECK(f.n == 0);
	gd_free(d);
}

/* ─── GC thrash ─────────────────────────────────────────────────────── */

/* 10 GCs a second for 20 s; memory from `from` to `to` of a 1 GiB limit. */
static int feed_gcs(gd_detector *d, double rate, double from, double to) {
	const int64_t limit = 1LL << 30;
	gd_event ev[EV_MAX];
	int events = 0, n = (int)(20 * rate);
	for (int i = 0; i < n; i++) {
		gp_gc g = {.n = i + 1, .at_s = i / rate, .cpu_pct = 25, .procs = 4};
		int64_t mem = (int64_t)((from + (to - from) * i / n) * (double)limit);
		int k = gd_feed_gc(d, (int64_t)(g.at_s * SEC), &g, mem, limit, ev, EV_MAX);
		for (int j = 0; j < k; j++)
			CHECK(!strcmp(ev[j].type, "go.gc_thrash") && ev[j].value >= 5);
		events += k;
	}
	return events;
}

TEST(gc_thrash_near_the_limit) {
	gd_detector *d = gd_new(NULL);
	CHECK(feed_gcs(d, 10, 0.90, 0.99) == 1);
	gd_free(d);
	/* reported once, then a plateau near the limit that wobbles down and up
	 * every few seconds: no second report while GC stays busy there; after
	 * memory falls back, a new climb is reported again */
	d = gd_new(NULL);
	int64_t limit = 1LL << 30, t = 0;
	int events = 0;
	gd_event evs[EV_MAX];
	for (int i = 0; i < 600; i++, t += SEC / 10) {
		gp_gc g = {.n = i + 1, .at_s = (double)t / SEC, .cpu_pct = 25, .procs = 4};
		double level = i < 100   ? 0.80 + 0.15 * i / 100                 /* the climb */
		               : i < 400 ? 0.95 + 0.01 * ((i / 30) % 2 ? 1 : -1) /* the wobble */
		               : i < 450 ? 0.50                                  /* collected */
		                         : 0.90 + 0.08 * (i - 450) / 150;        /* a new climb */
		events +=
		    gd_feed_gc(d, t, &g, (int64_t)(level * (double)limit), limit, evs, EV_MAX);
		if (i == 399)
			CHECKF(events == 1, "%d reports by the plateau's end", events);
	}
	CHECKF(events == 2, "%d reports", events);
	gd_free(d);
	d = gd_new(NULL); /* flat memory at the limit: collected, not climbing */
	CHECK(feed_gcs(d, 10, 0.95, 0.95) == 0);
	gd_free(d);
	d = gd_new(NULL); /* climbing but far below the limit */
	CHECK(feed_gcs(d, 10, 0.30, 0.60) == 0);
	gd_free(d);
	d = gd_new(NULL); /* near the limit but one GC a second */
	CHECK(feed_gcs(d, 1, 0.90, 0.99) == 0);
	gd_free(d);
	/* a gctrace line of the 1.18+ format feeds it as well */
	d = gd_new(NULL);
	const char *l = "gc 1 @0.019s 1%: 0.016+0.47+0.002 ms clock, 0.064+0.11/0.39/0.10+0.008 ms "
	                "cpu, 4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 4 P";
	gp_gc g;
	gd_event ev[EV_MAX];
	CHECK(gp_parse_gc(l, strlen(l), &g));
	CHECK(gd_feed_gc(d, SEC, &g, 100, 0, ev, EV_MAX) == 0);
	gd_free(d);
}

/* Real gctrace lines of tests/go/fixtures/gc-thrash (GOGC=10, a 256 MiB memory
 * limit, Go 1.19, 2 Ps), each with the memory.usage_in_bytes of its cgroup
 * read when moonshim's tap got the line (a hybrid host: cgroup v1 memory).
 * The first lines: 100+ GCs a second while the heap is small. The rest: the
 * cache at 193-206 MB, 11 GCs a second, memory.current passing 90% of the
 * limit at GC 953 (the event the fixture got under `moonshim run`). */
static const struct {
	int64_t mem;
	const char *line;
} gc_real[] = {
    {9080832, "gc 51 @0.322s 2%: 0.040+1.0+0.004 ms clock, 0.080+0/0.17/0.16+0.008 ms cpu, 5->6->3 "
              "MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {9080832, "gc 52 @0.333s 2%: 0.043+0.66+0.003 ms clock, 0.087+0/0.19/0.15+0.007 ms cpu, "
              "4->6->3 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {9080832, "gc 53 @0.343s 2%: 0.026+0.26+0.003 ms clock, 0.052+0.23/0/0+0.007 ms cpu, 4->4->2 "
              "MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {8622080, "gc 54 @0.353s 2%: 0.044+1.4+0.005 ms clock, 0.088+0/0.16/0.15+0.010 ms cpu, 3->5->4 "
              "MB, 3 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {9015296, "gc 55 @0.363s 2%: 0.046+0.84+0.003 ms clock, 0.093+0/0.16/0.16+0.007 ms cpu, "
              "5->7->4 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {9015296, "gc 56 @0.373s 2%: 0.035+0.56+0.003 ms clock, 0.070+0/0.16/0.14+0.007 ms cpu, "
              "5->6->4 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {231698432, "gc 941 @24.053s 0%: 0.053+0.98+0.003 ms clock, 0.10+0/0.54/0.29+0.007 ms cpu, "
                "211->212->193 MB, 212 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {232484864, "gc 942 @24.143s 0%: 0.048+1.4+0.004 ms clock, 0.097+0/0.54/0.31+0.008 ms cpu, "
                "210->211->194 MB, 212 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {233533440, "gc 943 @24.233s 0%: 0.047+1.2+0.004 ms clock, 0.094+0/0.55/0.30+0.008 ms cpu, "
                "212->213->195 MB, 214 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {233795584, "gc 944 @24.323s 0%: 0.048+1.1+0.003 ms clock, 0.096+0/0.52/0.31+0.007 ms cpu, "
                "212->214->196 MB, 214 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {235106304, "gc 945 @24.413s 0%: 0.031+1.0+0.004 ms clock, 0.063+0.097/0.56/0.088+0.008 ms "
                "cpu, 213->214->196 MB, 215 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {235630592, "gc 946 @24.502s 0%: 0.026+1.0+0.003 ms clock, 0.052+0.10/0.15/0.46+0.007 ms cpu, "
                "214->215->196 MB, 216 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {236154880, "gc 947 @24.592s 0%: 0.048+1.3+0.003 ms clock, 0.097+0/0.57/0.31+0.007 ms cpu, "
                "214->215->197 MB, 216 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {236941312, "gc 948 @24.683s 0%: 0.051+1.4+0.027 ms clock, 0.10+0/1.2/0.34+0.054 ms cpu, "
                "216->216->198 MB, 217 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {237727744, "gc 949 @24.773s 0%: 0.030+0.63+0.003 ms clock, 0.061+0.061/0.47/0.26+0.006 ms "
                "cpu, 216->216->198 MB, 217 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {239038464, "gc 950 @24.872s 0%: 0.050+1.4+0.004 ms clock, 0.10+0/0.59/0.30+0.009 ms cpu, "
                "217->219->201 MB, 218 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {239562752, "gc 951 @24.963s 0%: 0.050+1.5+0.003 ms clock, 0.10+0/0.62/0.37+0.007 ms cpu, "
                "218->219->201 MB, 221 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {241397760, "gc 952 @25.053s 0%: 0.029+0.72+0.003 ms clock, 0.059+0/0.13/0.65+0.006 ms cpu, "
                "220->220->200 MB, 221 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {242184192, "gc 953 @25.153s 0%: 0.029+1.2+0.003 ms clock, 0.059+0.55/0.096/0.29+0.007 ms cpu, "
                "219->220->202 MB, 220 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {242184192, "gc 954 @25.233s 0%: 0.025+0.71+0.003 ms clock, 0.050+0.058/0.44/0.23+0.006 ms "
                "cpu, 218->219->202 MB, 222 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {243494912, "gc 955 @25.332s 0%: 0.030+1.0+0.003 ms clock, 0.060+0.80/0/0+0.007 ms cpu, "
                "222->223->203 MB, 223 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {243494912, "gc 956 @25.403s 0%: 0.051+1.0+0.004 ms clock, 0.10+0/0.62/0.29+0.009 ms cpu, "
                "218->218->203 MB, 224 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {243494912, "gc 957 @25.473s 0%: 0.031+0.80+0.003 ms clock, 0.062+0.094/0.075/0.55+0.007 ms "
                "cpu, 217->217->204 MB, 223 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {245067776, "gc 958 @25.563s 0%: 0.048+1.7+0.004 ms clock, 0.096+0/0.57/0.29+0.008 ms cpu, "
                "220->222->206 MB, 224 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {246640640, "gc 959 @25.662s 0%: 0.048+1.3+0.003 ms clock, 0.097+0/0.62/0.35+0.007 ms cpu, "
                "226->227->206 MB, 227 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
    {247427072, "gc 960 @25.753s 0%: 0.031+0.95+0.003 ms clock, 0.062+0.091/0.10/0.62+0.007 ms "
                "cpu, 225->225->206 MB, 227 MB goal, 0 MB stacks, 0 MB globals, 2 P"},
};
#define GC_REAL_EARLY 6 /* gc_real[0..6): the small heap */
#define GC_REAL_FIRES 953

/* Feed gc_real[from..to) against limit; the events in ev, the GC number of
 * the line that fired the first one in *at. */
static int feed_real(gd_detector *d, int from, int to, int64_t limit, gd_event *ev, int64_t *at) {
	int events = 0;
	for (int i = from; i < to; i++) {
		gp_gc g;
		CHECKF(gp_parse_gc(gc_real[i].line, strlen(gc_real[i].line), &g), "%s",
		       gc_real[i].line);
		int k = gd_feed_gc(d, (int64_t)(g.at_s * SEC), &g, gc_real[i].mem, limit,
		                   ev + events, EV_MAX - events);
		if (k && !events)
			*at = g.n;
		events += k;
	}
	return events;
}

TEST(gc_thrash_real_gctrace) {
	const int n = (int)(sizeof gc_real / sizeof gc_real[0]);
	const int64_t limit = 256LL << 20;
	gd_event ev[EV_MAX];
	int64_t at = 0;
	gd_detector *d = gd_new(NULL);
	/* 100 GCs a second on a small heap: not near the limit */
	CHECK(feed_real(d, 0, GC_REAL_EARLY, limit, ev, &at) == 0);
	/* one event, on the line where memory.current passed 90% */
	CHECK(feed_real(d, GC_REAL_EARLY, n, limit, ev, &at) == 1);
	CHECKF(at == GC_REAL_FIRES, "%lld", (long long)at);
	CHECK(!strcmp(ev[0].type, "go.gc_thrash") && !strcmp(ev[0].kind, "gc_thrash"));
	CHECKF(ev[0].value > 10 && ev[0].value < 12 && ev[0].threshold == 5, "%f", ev[0].value);
	/* the GCs since the window's first line, gc 941 */
	CHECKF(ev[0].count == GC_REAL_FIRES - 941, "%lld", (long long)ev[0].count);
	CHECKF(strstr(ev[0].detail, "90% of its limit (242184192 of 268435456 bytes)"), "%s",
	       ev[0].detail);
	gd_free(d);
	/* the same program without a memory limit, and under 512 MiB (at most 46%) */
	d = gd_new(NULL);
	CHECK(feed_real(d, 0, n, 0, ev, &at) == 0);
	gd_free(d);
	d = gd_new(NULL);
	CHECK(feed_real(d, 0, n, 2 * limit, ev, &at) == 0);
	gd_free(d);
}

/* ─── the captures of Go 1.19, 1.26 and 1.27 (tests/go/formats) ─────── */

/* An idle program with 15 goroutines parked for a minute: its ~100 GCs (no
 * memory limit, and under a 256 MiB one) and its profile scraped ten times,
 * 10 s apart, are quiet in every version; its SCHED lines too, but for one
 * real stretch of the Go 1.27.3 capture (taken on a host loaded ~40 on 2
 * cores): runqueue=1 with 3 idle Ps from 21116 to 25139 ms, reported once
 * as idle_with_work at the third such sample, which is what that kind says. */
TEST(captures_of_an_idle_program) {
	const int64_t limit = 256LL << 20, rss = 16LL << 20;
	static const int64_t idle_with_work_at_ms[CAPTURE_VERSIONS] = {-1, -1, 23126};
	for (int v = 0; v < CAPTURE_VERSIONS; v++) {
		const char *ver = capture_versions[v];
		gd_event ev[EV_MAX];
		gd_detector *d = gd_new(NULL);
		size_t len;
		char *text = read_capture(ver, "sched-gc.txt", &len);
		static gp_sched s;
		int events = 0, nsched = 0, ngc = 0, sched_events = 0;
		for (char *line = text, *end; line < text + len; line = end + 1) {
			end = memchr(line, '\n', (size_t)(text + len - line));
			CHECK(end);
			gp_gc g;
			if (gp_parse_sched(line, (size_t)(end - line), &s) == GP_SCHED_OK) {
				int k = gd_feed_sched(d, s.ms * 1000000, &s, 0, ev, EV_MAX);
				for (int e = 0; e < k; e++)
					CHECKF(!strcmp(ev[e].kind, "idle_with_work") &&
					           s.ms == idle_with_work_at_ms[v] &&
					           ev[e].value == 1,
					       "%s at %lld ms: %s/%s %s", ver, (long long)s.ms,
					       ev[e].type, ev[e].kind, ev[e].detail);
				sched_events += k;
				nsched++;
			} else if (gp_parse_gc(line, (size_t)(end - line), &g)) {
				events += gd_feed_gc(d, (int64_t)(g.at_s * SEC), &g, rss, limit, ev,
				                     EV_MAX);
				ngc++;
			}
		}
		CHECKF(nsched >= 60 && ngc >= 30 && events == 0, "%s: %d SCHED, %d gc, %d events",
		       ver, nsched, ngc, events);
		CHECKF(sched_events == (idle_with_work_at_ms[v] >= 0), "%s: %d", ver, sched_events);
		free(text);
		static const char *const kinds[] = {"goroutine-debug1.txt", "goroutine-debug2.txt"};
		for (int k = 0; k < 2; k++) {
			text = read_capture(ver, kinds[k], &len);
			gp_profile p;
			char msg[128];
			CHECKF(gp_parse_profile(text, len, 0, &p, msg, sizeof msg) == 0, "%s: %s",
			       ver, msg);
			CHECK(p.total == 15);
			for (int i = 0; i < 10; i++)
				events += gd_feed_profile(d, (int64_t)i * 10 * SEC, &p, false, ev,
				                          EV_MAX);
			CHECKF(events == 0, "%s %s: %d events, first %s/%s %s", ver, kinds[k],
			       events, ev[0].type, ev[0].kind, ev[0].detail);
			gp_profile_free(&p);
			free(text);
		}
		gd_free(d);
	}
}
