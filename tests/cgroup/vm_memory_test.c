/* vm_memory_test.c — memory on a pure cgroup v2 host (the VM of
 * tests/vm: 6.1 kernel, no swap, root with every capability):
 *   - memory.high really throttles: "high" events whose deltas add up to
 *     the kernel's counter, and memory.pressure grows;
 *   - memory.max OOM-kills: max, oom and oom_kill events, SIGKILL;
 *   - a PSI trigger fires under that squeeze, and a refused window
 *     (6.1: 500 ms minimum) falls back to polling, or to the nearest
 *     accepted window when the latency bound allows it;
 *   - the v2 reads, memory.reclaim, and limits read back from the files.
 * Skipped (and passing) on any other layout, unless
 * MOONSHIM_EXPECT_LAYOUT=v2 says this host must be pure v2. */
#define _GNU_SOURCE
#include "harness.h"

#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define MiB     ((int64_t)1 << 20)
#define MS      1000000LL
#define SECONDS 1000000000LL

static cg_host host;

/* ─── Clean-up that also runs when a check fails ─────────────────────────
 * CHECK ends the case with _exit; a child hogging memory, or a cgroup,
 * must not outlive it (the next cases run in the same VM). */
static char live_leaf[PATH_MAX + 64], live_top[PATH_MAX + 64], live_file[PATH_MAX];

static void emergency_cleanup(void) {
	if (live_leaf[0]) {
		char p[sizeof live_leaf + 16];
		snprintf(p, sizeof p, "%s/cgroup.kill", live_leaf);
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "1", 1) != 1) {
			}
			close(fd);
		}
		for (int i = 0; i < 200; i++) {
			while (waitpid(-1, NULL, WNOHANG) > 0) {
			}
			if (rmdir(live_leaf) == 0 || errno == ENOENT)
				break;
			usleep(10000);
		}
	}
	if (live_top[0])
		rmdir(live_top);
	if (live_file[0])
		unlink(live_file);
}

#define VCHECK(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			emergency_cleanup();                                                       \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* Pure v2 here? Otherwise skip, unless the runner says it must be. */
static bool v2_host(void) {
	cg_err e = {0};
	int rc = cg_host_detect(&host, "/proc/self/mounts", &e);
	const char *want = getenv("MOONSHIM_EXPECT_LAYOUT");
	if (want && !strcmp(want, "v2"))
		CHECKF(rc == 0 && host.layout == CG_LAYOUT_V2, "expected a pure v2 host: %s",
		       rc ? e.msg : cg_layout_name(host.layout));
	if (rc != 0 || host.layout != CG_LAYOUT_V2) {
		fprintf(stderr, "skipped: not a pure cgroup v2 host (%s)\n",
		        rc ? e.msg : cg_layout_name(host.layout));
		return false;
	}
	return true;
}

/* moonshim-vm-<pid>/<leaf>, created with its controllers enabled. */
static cg *make_leaf(const char *leaf) {
	cg_err e = {0};
	char rel[96];
	snprintf(rel, sizeof rel, "moonshim-vm-%d/%s", getpid(), leaf);
	snprintf(live_top, sizeof live_top, "%s/moonshim-vm-%d", host.unified, getpid());
	cg *c = cg_open(&host, rel, true, &e);
	VCHECK(c, "%s", e.msg);
	snprintf(live_leaf, sizeof live_leaf, "%s", cg_path(c));
	return c;
}

static void remove_leaf(cg *c) {
	cg_err e = {0};
	int rc;
	for (int i = 0; i < 100 && (rc = cg_remove(c, &e)) == -EBUSY; i++)
		rt_sleep(10 * MS);
	VCHECK(rc == 0, "%s", e.msg);
	struct stat st;
	VCHECK(stat(cg_path(c), &st) != 0 && errno == ENOENT, "%s still exists", cg_path(c));
	cg_close(c);
	live_leaf[0] = 0;
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-vm-%d", getpid());
	cg *p = cg_open(&host, rel, false, &e);
	VCHECK(p, "%s", e.msg);
	VCHECK(cg_remove(p, &e) == 0, "%s", e.msg);
	cg_close(p);
	live_top[0] = 0;
}

/* ─── Children: raw clone3 copies of a threaded process, so nothing that
 * takes a lock (no malloc, no stdio): mmap, touch, write, pause, _exit. */

static void nap_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Keep charging new anonymous memory: map `bytes`, touch every page,
 * unmap, again. Above memory.high every return to user mode is throttled
 * (no swap: nothing to reclaim). */
static void __attribute__((noreturn)) churn(size_t bytes) {
	for (;;) {
		char *p =
		    mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			nap_ms(10);
			continue;
		}
		for (size_t i = 0; i < bytes; i += 4096)
			p[i] = (char)i | 1;
		munmap(p, bytes);
		nap_ms(1); /* TCG is slow enough without a hot loop */
	}
}

/* Touch `bytes` once (an OOM kill ends us, or we hold it), say so on
 * `done_fd`, and wait. */
static void __attribute__((noreturn))
hold(size_t bytes, int done_fd, const char *file, size_t file_bytes) {
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(2);
	memset(p, 0x5a, bytes);
	if (file) { /* tmpfs: page cache that is also shmem */
		int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			_exit(3);
		for (size_t off = 0; off < file_bytes;) {
			ssize_t w =
			    write(fd, p, file_bytes - off > bytes ? bytes : file_bytes - off);
			if (w <= 0)
				_exit(4);
			off += (size_t)w;
		}
		close(fd);
	}
	if (done_fd >= 0 && write(done_fd, "d", 1) != 1)
		_exit(5);
	for (;;)
		pause();
}

/* Reap `pid` without blocking the P; its wait status, or -1 on timeout. */
static int reap(pid_t pid, int64_t timeout_ns) {
	int64_t deadline = rt_deadline_in(timeout_ns);
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		VCHECK(r == 0, "waitpid %d: %s", pid, strerror(errno));
		if (rt_now() >= deadline)
			return -1;
		rt_sleep(5 * MS);
	}
}

/* ─── Events ────────────────────────────────────────────────────────── */

typedef struct {
	cg_memory_events base, sum, last; /* baseline, summed deltas, last total */
	int nmem, populated;              /* populated: last value seen, -1 none */
	int64_t first_high_at, first_oom_kill_at, pop0_at, pressure_at;
	bool all_in_one;   /* one event carried max, oom and oom_kill together */
	cg_event pressure; /* the first pressure event */
	int npressure, nnotice;
	char notice[256]; /* the first notice */
} tally;

static void tally_init(tally *t, cg *c) {
	memset(t, 0, sizeof *t);
	t->populated = -1;
	cg_err e = {0};
	VCHECK(cg_read_memory_events(c, false, &t->base, &e) == 0, "%s", e.msg);
	t->last = t->base;
}

static void fmt_mem(char *buf, size_t n, const cg_memory_events *m) {
	snprintf(buf, n, "low %lld high %lld max %lld oom %lld oom_kill %lld oom_group_kill %lld",
	         (long long)m->low, (long long)m->high, (long long)m->max, (long long)m->oom,
	         (long long)m->oom_kill, (long long)m->oom_group_kill);
}

static bool mem_eq(const cg_memory_events *a, const cg_memory_events *b) {
	return a->low == b->low && a->high == b->high && a->max == b->max && a->oom == b->oom &&
	       a->oom_kill == b->oom_kill && a->oom_group_kill == b->oom_group_kill;
}

static void tally_event(tally *t, const cg_event *ev) {
	switch (ev->kind) {
	case CG_EV_MEMORY: {
		const cg_memory_events *d = &ev->mem.delta;
		VCHECK(d->low >= 0 && d->high >= 0 && d->max >= 0 && d->oom >= 0 &&
		           d->oom_kill >= 0 && d->oom_group_kill >= 0,
		       "a counter went backwards: high %lld max %lld", (long long)d->high,
		       (long long)d->max);
		t->sum.low += d->low;
		t->sum.high += d->high;
		t->sum.max += d->max;
		t->sum.oom += d->oom;
		t->sum.oom_kill += d->oom_kill;
		t->sum.oom_group_kill += d->oom_group_kill;
		t->last = ev->mem.total;
		t->nmem++;
		if (d->high && !t->first_high_at)
			t->first_high_at = ev->at;
		if (d->oom_kill && !t->first_oom_kill_at)
			t->first_oom_kill_at = ev->at;
		if (d->max > 0 && d->oom >= 1 && d->oom_kill >= 1)
			t->all_in_one = true;
		break;
	}
	case CG_EV_POPULATED:
		t->populated = ev->value;
		if (ev->value == 0 && !t->pop0_at)
			t->pop0_at = ev->at;
		break;
	case CG_EV_PRESSURE:
		if (!t->npressure++) {
			t->pressure = *ev;
			t->pressure_at = ev->at;
		}
		break;
	case CG_EV_NOTICE:
		if (!t->nnotice++)
			snprintf(t->notice, sizeof t->notice, "%s", ev->msg);
		fprintf(stderr, "notice: %s\n", ev->msg);
		break;
	case CG_EV_ERROR:
	case CG_EV_GONE:
		VCHECK(false, "unexpected %s event: %s", cg_event_name(ev->kind), ev->msg);
		break;
	default:
		break;
	}
}

static bool recv_event(rt_chan *out, cg_event *ev, int64_t deadline) {
	rt_case cs[1] = {{.c = out, .dir = RT_RECV, .elem = ev}};
	return rt_select(cs, 1, deadline) == 0;
}

/* Receive until done(t) holds; false when the deadline passes first. */
static bool pump(rt_chan *out, tally *t, int64_t deadline, bool (*done)(const tally *)) {
	cg_event ev;
	while (!done(t)) {
		if (!recv_event(out, &ev, deadline))
			return false;
		tally_event(t, &ev);
	}
	return true;
}

static bool seen_high(const tally *t) {
	return t->sum.high > 0;
}
static bool seen_pop0(const tally *t) {
	return t->populated == 0;
}
static bool seen_oom_kill_and_pop0(const tally *t) {
	return t->sum.oom_kill >= 1 && t->populated == 0;
}
static bool seen_pressure(const tally *t) {
	return t->npressure > 0;
}

/* After the last process is gone the counters stop: keep receiving until
 * the last event's totals are what memory.events says, then check that
 * the deltas add up to the totals' growth. */
static void settle_and_check_totals(cg *c, rt_chan *out, tally *t) {
	cg_err e = {0};
	cg_memory_events now;
	int64_t deadline = rt_deadline_in(5 * SECONDS);
	cg_event ev;
	for (;;) {
		VCHECK(cg_read_memory_events(c, false, &now, &e) == 0, "%s", e.msg);
		if (mem_eq(&now, &t->last))
			break;
		if (!recv_event(out, &ev, deadline))
			break;
		tally_event(t, &ev);
	}
	char a[160], b[160], s[160];
	fmt_mem(a, sizeof a, &t->last);
	fmt_mem(b, sizeof b, &now);
	fmt_mem(s, sizeof s, &t->sum);
	VCHECK(mem_eq(&now, &t->last), "last event's totals (%s) != memory.events (%s)", a, b);
	cg_memory_events grew = {
	    now.low - t->base.low,           now.high - t->base.high,
	    now.max - t->base.max,           now.oom - t->base.oom,
	    now.oom_kill - t->base.oom_kill, now.oom_group_kill - t->base.oom_group_kill};
	fmt_mem(b, sizeof b, &grew);
	VCHECK(mem_eq(&grew, &t->sum), "deltas summed over %d events (%s) != growth (%s)", t->nmem,
	       s, b);
}

/* SIGKILL through cgroup.kill, reap, and see populated 0 on the watcher. */
static int kill_and_drain(cg *c, pid_t kid, rt_chan *out, tally *t, int64_t *pop0_after) {
	cg_err e = {0};
	int64_t killed = rt_now();
	VCHECK(cg_kill(c, SIGKILL, &e) == 0, "%s", e.msg);
	int st = reap(kid, 10 * SECONDS);
	VCHECK(st != -1, "child %d not dead 10 s after cgroup.kill", kid);
	VCHECK(pump(out, t, rt_deadline_in(10 * SECONDS), seen_pop0),
	       "no populated 0 event 10 s after the kill (last populated %d)", t->populated);
	VCHECK(cg_populated(c, &e) == 0, "cgroup.events still populated");
	if (pop0_after)
		*pop0_after = t->pop0_at - killed;
	return st;
}

/* ─── 1. memory.high: throttling and high events ───────────────────────── */

static int high_main(void *arg) {
	(void)arg;
	cg_err e = {0};
	cg *c = make_leaf("high");
	cg_limits l;
	cg_limits_init(&l);
	l.memory_high = 8 * MiB;
	VCHECK(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
	cg_memory m;
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	VCHECK(m.high == 8 * MiB && m.max == CG_NOLIMIT, "high %lld max %lld", (long long)m.high,
	       (long long)m.max);
	cg_pressure p0;
	VCHECK(cg_read_pressure(c, CG_RES_MEMORY, &p0, &e) == 0, "%s", e.msg);

	tally t;
	tally_init(&t, c);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 64);
	VCHECK(out, "rt_chan_new");
	cg_watch *w = cg_watch_start(c, NULL, out, &e);
	VCHECK(w, "%s", e.msg);
	rt_sleep(50 * MS); /* the watcher's goroutines take their baseline */

	int64_t forked = rt_now();
	pid_t kid = cg_fork_into(c, NULL, &e);
	VCHECK(kid >= 0, "%s", e.msg);
	if (kid == 0)
		churn(32 * MiB);

	VCHECK(pump(out, &t, rt_deadline_in(20 * SECONDS), seen_high),
	       "no high event within 20 s of the fork (%d memory events)", t.nmem);
	int64_t first_ms = (t.first_high_at - forked) / MS;
	/* watch the throttling a little longer: more events, each a delta */
	int64_t until = rt_deadline_in(2 * SECONDS);
	cg_event ev;
	while (recv_event(out, &ev, until))
		tally_event(&t, &ev);
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	cg_pressure p1;
	VCHECK(cg_read_pressure(c, CG_RES_MEMORY, &p1, &e) == 0, "%s", e.msg);
	int64_t stalled_ms = (int64_t)(p1.some.total - p0.some.total) / 1000;

	int64_t pop0_us;
	int st = kill_and_drain(c, kid, out, &t, &pop0_us);
	VCHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %#x", st);
	settle_and_check_totals(c, out, &t);
	cg_watch_stop(w);
	rt_chan_free(out);

	fprintf(stderr,
	        "memory.high 8 MiB: first high event %lld ms after the fork; %d memory events, "
	        "high deltas sum %lld = total %lld - baseline %lld; usage %lld KiB (peak %lld "
	        "KiB); memory.pressure some +%lld ms; populated 0 %lld us after cgroup.kill\n",
	        (long long)first_ms, t.nmem, (long long)t.sum.high, (long long)t.last.high,
	        (long long)t.base.high, (long long)m.current / 1024, (long long)m.peak / 1024,
	        (long long)stalled_ms, (long long)pop0_us / 1000);
	VCHECK(t.sum.high > 0 && t.last.high > t.base.high, "high %lld", (long long)t.sum.high);
	VCHECK(t.sum.max == 0 && t.sum.oom == 0 && t.sum.oom_kill == 0,
	       "memory.high alone gave max %lld oom %lld oom_kill %lld", (long long)t.sum.max,
	       (long long)t.sum.oom, (long long)t.sum.oom_kill);
	/* throttled, not stopped by a limit: above high, far from the 32 MiB */
	VCHECK(m.peak > 8 * MiB, "peak %lld never crossed high", (long long)m.peak);
	VCHECK(m.current < 32 * MiB, "usage %lld: not throttled", (long long)m.current);
	VCHECK(stalled_ms > 0, "no memory stall while throttled");
	remove_leaf(c);
	return 0;
}

TEST(vm_memory_high_throttles_and_high_deltas_add_up) {
	if (!v2_host())
		return;
	run_rt(2, high_main, NULL);
}

/* ─── 2. memory.max: max, oom, oom_kill ──────────────────────────────── */

static int oom_main(void *arg) {
	(void)arg;
	cg_err e = {0};
	cg *c = make_leaf("oom");
	cg_memory m;
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	cg_limits l;
	cg_limits_init(&l);
	l.memory_max = 16 * MiB;
	if (m.swap_max != -1)
		l.swap_max = 0; /* the VM has no swap; elsewhere make sure of it */
	VCHECK(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	VCHECK(m.max == 16 * MiB && m.high == CG_NOLIMIT, "max %lld high %lld", (long long)m.max,
	       (long long)m.high);

	tally t;
	tally_init(&t, c);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 64);
	VCHECK(out, "rt_chan_new");
	cg_watch *w = cg_watch_start(c, NULL, out, &e);
	VCHECK(w, "%s", e.msg);
	rt_sleep(50 * MS);

	int64_t forked = rt_now();
	pid_t kid = cg_fork_into(c, NULL, &e);
	VCHECK(kid >= 0, "%s", e.msg);
	if (kid == 0)
		hold(64 * MiB, -1, NULL, 0);

	bool got = pump(out, &t, rt_deadline_in(30 * SECONDS), seen_oom_kill_and_pop0);
	int st = reap(kid, got ? 5 * SECONDS : 0);
	if (st == -1) { /* not killed: leave nothing behind */
		cg_kill(c, SIGKILL, NULL);
		st = reap(kid, 10 * SECONDS);
	}
	VCHECK(got, "no oom_kill + populated 0 within 30 s (oom_kill %lld, populated %d)",
	       (long long)t.sum.oom_kill, t.populated);
	VCHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %#x: not OOM-killed", st);
	settle_and_check_totals(c, out, &t);
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	cg_watch_stop(w);
	rt_chan_free(out);

	char s[160];
	fmt_mem(s, sizeof s, &t.sum);
	fprintf(stderr,
	        "memory.max 16 MiB, 64 MiB touched: oom_kill event %lld ms after the fork, "
	        "populated 0 after %lld ms; %d memory events%s, deltas summed: %s; peak %lld KiB\n",
	        (long long)(t.first_oom_kill_at - forked) / MS,
	        (long long)(t.pop0_at - forked) / MS, t.nmem,
	        t.all_in_one ? " (one with max, oom and oom_kill)" : "", s,
	        (long long)m.peak / 1024);
	VCHECK(t.sum.max > 0, "max delta %lld", (long long)t.sum.max);
	VCHECK(t.sum.oom >= 1, "oom delta %lld", (long long)t.sum.oom);
	VCHECK(t.sum.oom_kill >= 1, "oom_kill delta %lld", (long long)t.sum.oom_kill);
	VCHECK(t.sum.oom_group_kill == 0, "oom_group_kill without memory.oom.group");
	VCHECK(m.peak <= 16 * MiB && m.peak > 8 * MiB, "peak %lld", (long long)m.peak);
	remove_leaf(c);
	return 0;
}

TEST(vm_memory_max_oom_kills_with_max_oom_oom_kill_events) {
	if (!v2_host())
		return;
	run_rt(2, oom_main, NULL);
}

/* ─── 3, 4. PSI under the memory.high squeeze ─────────────────────────── */

typedef struct {
	const char *leaf, *rule;
	const char *notice;  /* NULL: the kernel takes the rule; else in the notice */
	cg_psi_mode mode;    /* how the event must be detected */
	int64_t used_window; /* the trigger's window (mode TRIGGER) */
} psi_case;

static int psi_main(void *arg) {
	const psi_case *pc = arg;
	cg_err e = {0};
	cg *c = make_leaf(pc->leaf);
	cg_limits l;
	cg_limits_init(&l);
	l.memory_high = 8 * MiB;
	VCHECK(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
	cg_psi_spec spec;
	VCHECK(cg_psi_parse(pc->rule, &spec, &e) == 0, "%s", e.msg);

	tally t;
	tally_init(&t, c);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 64);
	VCHECK(out, "rt_chan_new");
	cg_watch_opts o = {.psi = &spec, .npsi = 1};
	cg_watch *w = cg_watch_start(c, &o, out, &e);
	VCHECK(w, "%s", e.msg);
	cg_event ev;
	if (pc->notice) { /* a refused window is announced first */
		VCHECK(recv_event(out, &ev, rt_deadline_in(5 * SECONDS)), "no notice for %s",
		       pc->rule);
		VCHECK(ev.kind == CG_EV_NOTICE, "got %s first: %s", cg_event_name(ev.kind), ev.msg);
		tally_event(&t, &ev);
		VCHECK(strstr(ev.msg, "refused") && strstr(ev.msg, pc->rule) &&
		           strstr(ev.msg, pc->notice),
		       "notice \"%s\" lacks \"refused\", \"%s\" or \"%s\"", ev.msg, pc->rule,
		       pc->notice);
	}
	rt_sleep(200 * MS); /* a calm start for the samples */

	int64_t forked = rt_now();
	pid_t kid = cg_fork_into(c, NULL, &e);
	VCHECK(kid >= 0, "%s", e.msg);
	if (kid == 0)
		churn(32 * MiB);

	bool got = pump(out, &t, rt_deadline_in(20 * SECONDS), seen_pressure);
	int64_t pop0_us;
	kill_and_drain(c, kid, out, &t, &pop0_us);
	VCHECK(got, "no pressure event for %s within 20 s (%d memory events, high %lld)", pc->rule,
	       t.nmem, (long long)t.sum.high);
	cg_watch_stop(w);
	rt_chan_free(out);

	const cg_event *pe = &t.pressure;
	fprintf(stderr,
	        "%s under memory.high 8 MiB: %s event %lld ms after the fork: stall %lld us "
	        "over %lld us (trigger window %lld us); %d pressure events, high events %lld\n",
	        pc->rule, pe->psi.mode == CG_PSI_TRIGGER ? "trigger" : "poll",
	        (long long)(t.pressure_at - forked) / MS, (long long)pe->psi.stall_us,
	        (long long)pe->psi.window_us, (long long)pe->psi.used_window_us, t.npressure,
	        (long long)t.sum.high);
	VCHECK(t.nnotice == (pc->notice ? 1 : 0), "%d notices (first: %s)", t.nnotice, t.notice);
	VCHECK(pe->psi.spec.res == CG_RES_MEMORY && pe->psi.spec.window_us == spec.window_us &&
	           pe->psi.spec.threshold_us == spec.threshold_us,
	       "the event's rule is not the one asked");
	VCHECK(pe->psi.mode == pc->mode, "mode %d, want %d", pe->psi.mode, pc->mode);
	if (pc->mode == CG_PSI_TRIGGER)
		VCHECK(pe->psi.used_window_us == pc->used_window, "trigger window %lld, want %lld",
		       (long long)pe->psi.used_window_us, (long long)pc->used_window);
	VCHECK(pe->psi.stall_us > 0 && pe->psi.window_us > 0, "stall %lld over %lld",
	       (long long)pe->psi.stall_us, (long long)pe->psi.window_us);
	if (pc->mode == CG_PSI_POLL)
		VCHECK(pe->psi.stall_us >= spec.threshold_us, "polled event below threshold: %lld",
		       (long long)pe->psi.stall_us);
	remove_leaf(c);
	return 0;
}

/* 3. A 1 s window: accepted (root, 6.1), the kernel's own trigger. */
TEST(vm_psi_memory_trigger_under_high_squeeze) {
	if (!v2_host())
		return;
	psi_case pc = {"psi1s", "memory:some:50ms:1s", NULL, CG_PSI_TRIGGER, 1000000};
	run_rt(2, psi_main, &pc);
}

/* 4a. A 100 ms window is below 6.1's 500 ms minimum and the latency bound
 * (100 ms) allows no other: refused, announced, polled. */
TEST(vm_psi_refused_window_falls_back_to_polling) {
	if (!v2_host())
		return;
	psi_case pc = {"psipoll", "memory:some:10ms:100ms", "polling", CG_PSI_POLL, 0};
	run_rt(2, psi_main, &pc);
}

/* 4b. The same window with a 2 s latency bound: the nearest accepted
 * window, 500 ms with the threshold scaled to 50 ms, as a kernel trigger. */
TEST(vm_psi_refused_window_uses_500ms_within_latency_bound) {
	if (!v2_host())
		return;
	psi_case pc = {"psi500", "memory:some:10ms:100ms:2s", "500ms with threshold 50ms",
	               CG_PSI_TRIGGER, 500000};
	run_rt(2, psi_main, &pc);
}

/* ─── 5. Reads, memory.reclaim, limits read back ──────────────────────── */

static void expect_file(cg *c, const char *file, const char *want) {
	char buf[128];
	cg_err e = {0};
	VCHECK(cg_read(c, file, buf, sizeof buf, &e) >= 0, "%s", e.msg);
	buf[strcspn(buf, "\n")] = 0;
	VCHECK(!strcmp(buf, want), "%s/%s is \"%s\", want \"%s\"", cg_path(c), file, buf, want);
}

static void check_pressure(cg *c, cg_resource r) {
	cg_pressure p;
	cg_err e = {0};
	VCHECK(cg_read_pressure(c, r, &p, &e) == 0, "%s", e.msg);
	VCHECK(p.some.present && p.full.present, "%s.pressure: some %d full %d",
	       cg_resource_name(r), p.some.present, p.full.present);
	const cg_pressure_line *ls[2] = {&p.some, &p.full};
	for (int i = 0; i < 2; i++)
		VCHECK(ls[i]->avg10 >= 0 && ls[i]->avg10 <= 100 && ls[i]->avg60 >= 0 &&
		           ls[i]->avg60 <= 100 && ls[i]->avg300 >= 0 && ls[i]->avg300 <= 100,
		       "%s.pressure averages out of range", cg_resource_name(r));
	VCHECK(p.full.total <= p.some.total, "%s.pressure full %llu > some %llu",
	       cg_resource_name(r), (unsigned long long)p.full.total,
	       (unsigned long long)p.some.total);
}

static int reads_main(void *arg) {
	(void)arg;
	cg_err e = {0};
	cg *c = make_leaf("reads");
	snprintf(live_file, sizeof live_file, "/tmp/moonshim-vm-%d-cache", getpid());
	int pfd[2];
	VCHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	pid_t kid = cg_fork_into(c, NULL, &e);
	VCHECK(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		close(pfd[0]);
		hold(8 * MiB, pfd[1], live_file, 4 * MiB);
	}
	close(pfd[1]);
	VCHECK(fcntl(pfd[0], F_SETFL, O_NONBLOCK) == 0, "fcntl: %s", strerror(errno));
	int perr;
	rt_pollfd *pd = rt_poll_open(pfd[0], &perr);
	VCHECK(pd, "rt_poll_open: %s", strerror(-perr));
	char b;
	ssize_t r = rt_read(pd, &b, 1, rt_deadline_in(20 * SECONDS));
	rt_poll_close(pd);
	close(pfd[0]);
	VCHECK(r == 1, "the child never said it holds its memory (%zd)", r);

	cg_memory m;
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	VCHECK(m.current >= 12 * MiB && m.current < 64 * MiB, "current %lld", (long long)m.current);
	VCHECK(m.peak >= m.current, "peak %lld < current %lld", (long long)m.peak,
	       (long long)m.current);
	VCHECK(m.high == CG_NOLIMIT && m.max == CG_NOLIMIT && m.low == 0 && m.min == 0,
	       "defaults: high %lld max %lld low %lld min %lld", (long long)m.high,
	       (long long)m.max, (long long)m.low, (long long)m.min);
	VCHECK(m.swap_current == 0 || m.swap_current == -1, "swap %lld without swap",
	       (long long)m.swap_current);
	cg_memory_stat s;
	VCHECK(cg_read_memory_stat(c, &s, &e) == 0, "%s", e.msg);
	VCHECK(s.anon >= 8 * MiB, "anon %lld", (long long)s.anon);
	VCHECK(s.file >= 4 * MiB && s.shmem >= 4 * MiB, "file %lld shmem %lld (a 4 MiB tmpfs file)",
	       (long long)s.file, (long long)s.shmem);
	VCHECK(s.anon + s.file <= m.current + MiB, "anon %lld + file %lld > current %lld",
	       (long long)s.anon, (long long)s.file, (long long)m.current);
	VCHECK(s.kernel >= 0 && s.sock >= 0 && s.file_dirty >= 0 && s.file_writeback >= 0,
	       "kernel %lld sock %lld", (long long)s.kernel, (long long)s.sock);
	VCHECK(s.pgfault > 0 && s.pgmajfault >= 0 && s.pgscan >= 0 && s.pgsteal >= 0,
	       "pgfault %lld", (long long)s.pgfault);
	VCHECK(s.workingset_refault_anon >= 0 && s.workingset_refault_file >= 0, "refaults");
	cg_cpu_stat cs;
	VCHECK(cg_read_cpu_stat(c, &cs, &e) == 0, "%s", e.msg);
	VCHECK(cs.usage_usec > 0 && cs.user_usec >= 0 && cs.system_usec >= 0 &&
	           cs.user_usec + cs.system_usec <= cs.usage_usec + 1000,
	       "usage %lld user %lld system %lld", (long long)cs.usage_usec,
	       (long long)cs.user_usec, (long long)cs.system_usec);
	VCHECK(cs.nr_periods == 0 && cs.nr_throttled == 0 && cs.throttled_usec == 0,
	       "throttled without cpu.max: periods %lld", (long long)cs.nr_periods);
	int64_t pcur, pmax;
	VCHECK(cg_read_pids(c, &pcur, &pmax, &e) == 0, "%s", e.msg);
	VCHECK(pcur == 1 && pmax == CG_NOLIMIT, "pids %lld max %lld", (long long)pcur,
	       (long long)pmax);
	cg_io_stat io;
	VCHECK(cg_read_io_stat(c, &io, &e) == 0, "%s", e.msg);
	VCHECK(io.rbytes >= 0 && io.wbytes >= 0 && io.rios >= 0 && io.wios >= 0 && io.dbytes >= 0 &&
	           io.dios >= 0,
	       "io.stat negative");
	for (int res = 0; res < CG_RES_N; res++)
		check_pressure(c, (cg_resource)res);

	/* memory.reclaim: nothing here is reclaimable without swap (anon and
	 * tmpfs), so -EAGAIN is as good an answer as 0 */
	int64_t before = m.current;
	int rc = cg_reclaim(c, 4 * MiB, &e);
	VCHECK(rc == 0 || rc == -EAGAIN, "cg_reclaim: %d %s", rc, e.msg);
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	VCHECK(rc != 0 || m.current <= before, "reclaim said 0 but usage grew %lld -> %lld",
	       (long long)before, (long long)m.current);
	fprintf(stderr,
	        "child holding 8 MiB anon + 4 MiB tmpfs: current %lld KiB peak %lld KiB anon %lld "
	        "KiB file %lld KiB shmem %lld KiB kernel %lld KiB pgfault %lld; cpu usage %lld us; "
	        "pids %lld; io rbytes %lld wbytes %lld; memory.reclaim 4 MiB: %s, current %lld -> "
	        "%lld KiB\n",
	        (long long)before / 1024, (long long)m.peak / 1024, (long long)s.anon / 1024,
	        (long long)s.file / 1024, (long long)s.shmem / 1024, (long long)s.kernel / 1024,
	        (long long)s.pgfault, (long long)cs.usage_usec, (long long)pcur,
	        (long long)io.rbytes, (long long)io.wbytes, rc ? strerror(-rc) : "ok",
	        (long long)before / 1024, (long long)m.current / 1024);

	/* limits, read back from the files themselves */
	cg_limits l;
	cg_limits_init(&l);
	l.cpu_quota_us = 25000;
	l.cpu_period_us = 50000;
	l.cpu_weight = 200;
	l.pids_max = 10;
	l.memory_low = 4 * MiB;
	l.memory_min = 2 * MiB;
	l.memory_high = 256 * MiB;
	l.memory_max = 512 * MiB;
	l.oom_group = 1;
	VCHECK(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
	expect_file(c, "cpu.max", "25000 50000");
	expect_file(c, "cpu.weight", "200");
	expect_file(c, "pids.max", "10");
	expect_file(c, "memory.low", "4194304");
	expect_file(c, "memory.min", "2097152");
	expect_file(c, "memory.high", "268435456");
	expect_file(c, "memory.max", "536870912");
	expect_file(c, "memory.oom.group", "1");
	VCHECK(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	VCHECK(m.low == 4 * MiB && m.min == 2 * MiB && m.high == 256 * MiB && m.max == 512 * MiB,
	       "read back low %lld min %lld high %lld max %lld", (long long)m.low, (long long)m.min,
	       (long long)m.high, (long long)m.max);
	VCHECK(cg_read_pids(c, &pcur, &pmax, &e) == 0 && pmax == 10, "pids.max %lld",
	       (long long)pmax);
	/* and back to no limits: "max" everywhere, the default period */
	cg_limits_init(&l);
	l.cpu_quota_us = CG_NOLIMIT;
	l.cpu_weight = 100;
	l.pids_max = CG_NOLIMIT;
	l.memory_low = 0;
	l.memory_min = 0;
	l.memory_high = CG_NOLIMIT;
	l.memory_max = CG_NOLIMIT;
	l.oom_group = 0;
	VCHECK(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
	expect_file(c, "cpu.max", "max 100000");
	expect_file(c, "cpu.weight", "100");
	expect_file(c, "pids.max", "max");
	expect_file(c, "memory.low", "0");
	expect_file(c, "memory.min", "0");
	expect_file(c, "memory.high", "max");
	expect_file(c, "memory.max", "max");
	expect_file(c, "memory.oom.group", "0");
	VCHECK(cg_read_pids(c, &pcur, &pmax, &e) == 0 && pmax == CG_NOLIMIT, "pids.max %lld",
	       (long long)pmax);

	VCHECK(cg_kill(c, SIGKILL, &e) == 0, "%s", e.msg);
	int st = reap(kid, 10 * SECONDS);
	VCHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %#x", st);
	for (int i = 0; i < 100 && cg_populated(c, NULL) != 0; i++)
		rt_sleep(10 * MS);
	VCHECK(cg_populated(c, &e) == 0, "still populated after the kill");
	unlink(live_file);
	live_file[0] = 0;
	remove_leaf(c);
	return 0;
}

TEST(vm_memory_reads_reclaim_and_limits_read_back) {
	if (!v2_host())
		return;
	run_rt(2, reads_main, NULL);
}
