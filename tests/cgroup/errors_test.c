/* errors_test.c — bad input gets one clear error naming what was wrong,
 * and the watcher keeps running: files a kernel or layout does not have,
 * PSI switched off for a cgroup, permission errors after dropping root, an
 * unavailable controller (v1 io on hybrid, the "no internal processes"
 * rule on v2), a cgroup removed while watched next to one that is not, and
 * malformed text for the parsers.
 *
 * A janitor process (PR_SET_PDEATHSIG) kills what is left in
 * moonshim-test-<pid> and removes it when a case dies, however it dies. */
#define _GNU_SOURCE
#include "cgtest.h"

#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define MiB (1LL << 20)
#define MS  1000000LL

/* A cgroup directory made with plain mkdir in the unified tree only: on v2
 * its parent enables no controller for it, so it has no memory.* or io.*
 * files; on hybrid it has no v1 directories. */
static cg *bare_cg(const char *parent, const char *name) {
	char dir[PATH_MAX + 160];
	snprintf(dir, sizeof dir, "%s/%s/%s/%s", cgt_host.unified, top_rel(), parent, name);
	CHECKF(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
	char rel[160];
	snprintf(rel, sizeof rel, "%s/%s", parent, name);
	return open_cg(rel, false);
}

/* Write a unified-tree file of the cgroup directly; -errno. */
static int write_file(cg *c, const char *file, const char *val) {
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", cg_path(c), file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
	close(fd);
	return rc;
}

static bool has(const cg_err *e, const char *s) {
	return strstr(e->msg, s) != NULL;
}

/* Turn PSI off for c through cgroup.pressure; false where the kernel has
 * no per-cgroup switch (before 6.1). */
static bool psi_off(cg *c) {
	int rc = write_file(c, "cgroup.pressure", "0");
	if (rc == -ENOENT) {
		fprintf(stderr, "skipped: %s/cgroup.pressure does not exist on this kernel\n",
		        cg_path(c));
		return false;
	}
	CHECKF(rc == 0, "writing 0 to %s/cgroup.pressure: %s", cg_path(c), strerror(-rc));
	return true;
}

/* ─── 6. files a kernel or layout does not have ──────────────────────── */

TEST(missing_files_are_named) {
	detect();
	start_janitor();
	cg_err e = {0};
	char buf[256];
	cg *c = open_cg("files", true);
	cg *bare = bare_cg("files", "bare");

	/* memory.peak: not in the unified directory of a hybrid host, nor in
	 * a v2 cgroup without the memory controller */
	if (cgt_host.layout == CG_LAYOUT_HYBRID) {
		ssize_t r = cg_read(c, "memory.peak", buf, sizeof buf, &e);
		CHECKF(r == -ENOENT && e.code == -ENOENT, "memory.peak on hybrid: %zd %s", r,
		       e.msg);
		CHECKF(has(&e, "memory.peak") && has(&e, cg_path(c)), "%s", e.msg);
		fprintf(stderr, "hybrid memory.peak: %s\n", e.msg);
	} else {
		CHECKF(cg_read(c, "memory.peak", buf, sizeof buf, &e) > 0, "%s", e.msg);
	}
	ssize_t r = cg_read(bare, "memory.peak", buf, sizeof buf, &e);
	CHECKF(r == -ENOENT && has(&e, "memory.peak") && has(&e, cg_path(bare)), "%zd %s", r,
	       e.msg);
	/* the memory reader says why */
	cg_memory m;
	int rc = cg_read_memory(bare, &m, &e);
	if (cgt_host.layout == CG_LAYOUT_HYBRID)
		CHECKF(rc == -ENOTSUP && has(&e, "memory"), "%d %s", rc, e.msg);
	else
		CHECKF(rc == -ENOENT && has(&e, "memory.current") &&
		           has(&e, "memory controller is not enabled"),
		       "%d %s", rc, e.msg);
	fprintf(stderr, "cg_read_memory without the controller: %s\n", e.msg);

	/* io.stat: v2 only */
	cg_io_stat io;
	rc = cg_read_io_stat(c, &io, &e);
	if (cgt_host.layout == CG_LAYOUT_HYBRID) {
		CHECKF(rc == -ENOTSUP && e.code == -ENOTSUP && has(&e, "io.stat"), "%d %s", rc,
		       e.msg);
		fprintf(stderr, "hybrid io.stat: %s\n", e.msg);
	} else {
		CHECKF(rc == 0, "%s", e.msg);
		rc = cg_read_io_stat(bare, &io, &e);
		CHECKF(rc == -ENOENT && has(&e, "io.stat"), "%d %s", rc, e.msg);
	}

	/* PSI turned off for one cgroup: its pressure files disappear */
	cg *quiet = bare_cg("files", "quiet");
	if (psi_off(quiet)) {
		cg *fresh = open_cg("files/quiet", false);
		for (cg_resource res = CG_RES_CPU; res < CG_RES_N; res++) {
			cg_pressure p;
			char file[32];
			snprintf(file, sizeof file, "%s.pressure", cg_resource_name(res));
			rc = cg_read_pressure(fresh, res, &p, &e);
			CHECKF(rc == -ENOENT && has(&e, file) && has(&e, "PSI is off"), "%s: %d %s",
			       file, rc, e.msg);
		}
		fprintf(stderr, "pressure with cgroup.pressure 0: %s\n", e.msg);
		cg_close(fresh);
	}
	remove_cg(quiet);
	remove_cg(bare);
	remove_cg(c);
	remove_top();
	stop_janitor();
}

/* A reader that had the pressure file open when PSI was turned off: the
 * kernel now answers ENODEV on the open fd, and that must not read as
 * "the cgroup was removed" (it is still there). */
TEST(pressure_turned_off_under_an_open_handle_is_named) {
	detect();
	start_janitor();
	cg_err e = {0};
	cg *c = open_cg("psioff", true);
	cg_pressure p;
	CHECKF(cg_read_pressure(c, CG_RES_MEMORY, &p, &e) == 0, "%s", e.msg);
	if (psi_off(c)) {
		int rc = cg_read_pressure(c, CG_RES_MEMORY, &p, &e);
		fprintf(stderr, "memory.pressure after cgroup.pressure 0: %d %s\n", rc, e.msg);
		CHECKF(rc < 0, "read pressure after PSI was switched off: %d", rc);
		CHECKF(has(&e, "memory.pressure") && has(&e, "PSI is off") &&
		           !has(&e, "was removed"),
		       "the message does not say PSI is off: \"%s\"", e.msg);
	}
	remove_cg(c);
	remove_top();
	stop_janitor();
}

/* The watcher on a PSI-off cgroup: one error naming PSI for the rule, and
 * the cgroup.events loop runs on (populated 1 -> 0 of a process). */
static cg_event recv_event(rt_chan *out, int64_t timeout, bool *got) {
	cg_event ev = {0};
	rt_case cs[1] = {{.c = out, .dir = RT_RECV, .elem = &ev}};
	*got = rt_select(cs, 1, rt_deadline_in(timeout)) == 0;
	return ev;
}

static void print_event(const char *who, const cg_event *ev) {
	fprintf(stderr, "  %s: %s value %d %s\n", who, cg_event_name(ev->kind), ev->value, ev->msg);
}

typedef struct {
	cg *c;
	bool turn_off_while_watching;
} psi_watch_ctx;

static int psi_watch_main(void *arg) {
	psi_watch_ctx *x = arg;
	cg_err e = {0};
	cg_psi_spec spec;
	CHECKF(cg_psi_parse("cpu:some:50ms:2s", &spec, &e) == 0, "%s", e.msg);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 16);
	cg_watch_opts o = {.psi = &spec, .npsi = 1};
	cg_watch *w = cg_watch_start(x->c, &o, out, &e);
	CHECKF(w, "cg_watch_start on a PSI-off cgroup: %s", e.msg);
	if (x->turn_off_while_watching) {
		rt_sleep(100 * MS); /* the rule's goroutine has its trigger or poller */
		CHECK(psi_off(x->c));
	}
	int errors = 0;
	bool got;
	cg_event ev;
	int64_t deadline = rt_now() + 3000 * MS;
	while (errors == 0 && rt_now() < deadline) {
		ev = recv_event(out, deadline - rt_now(), &got);
		if (!got)
			break;
		print_event("watch", &ev);
		if (ev.kind == CG_EV_ERROR) {
			errors++;
			CHECKF(strstr(ev.msg, "cpu.pressure") && strstr(ev.msg, "PSI is off"),
			       "the error does not say PSI is off: \"%s\"", ev.msg);
		}
	}
	CHECKF(errors == 1, "no error event for the PSI rule within 3 s of PSI being off");
	/* the events loop goes on */
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t kid = cg_fork_into(x->c, NULL, &e);
	CHECKF(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		char b;
		_exit(read(go[0], &b, 1) == 1 ? 0 : 1);
	}
	int want = 1;
	deadline = rt_now() + 3000 * MS;
	while (want >= 0) {
		ev = recv_event(out, deadline - rt_now(), &got);
		CHECKF(got, "no populated %d event: the watcher stopped after the PSI error", want);
		print_event("watch", &ev);
		CHECKF(ev.kind != CG_EV_ERROR, "a second error: %s", ev.msg);
		if (ev.kind == CG_EV_POPULATED && ev.value == want && want-- == 1)
			CHECK(write(go[1], "x", 1) == 1);
	}
	CHECK(waitpid(kid, NULL, 0) == kid);
	cg_watch_stop(w);
	rt_chan_free(out);
	close(go[0]);
	close(go[1]);
	return 0;
}

TEST(psi_off_gives_one_watch_error_and_events_go_on) {
	detect();
	start_janitor();
	psi_watch_ctx x = {.c = open_cg("psiwatch", true)};
	if (psi_off(x.c)) {
		cg_close(x.c);
		x.c = open_cg("psiwatch", false);
		run_rt(2, psi_watch_main, &x);
	}
	remove_cg(x.c);
	remove_top();
	stop_janitor();
}

/* A change right after cg_watch_start returns is reported: the events
 * goroutine may first read cgroup.events only after the caller has forked
 * into the cgroup (its P busy, the caller stolen by the other P), and a
 * baseline taken then ("populated 1") hid the change. */
#define START_RACE_ROUNDS 60

static int start_race_main(void *arg) {
	cg *c = arg;
	cg_err e = {0};
	for (int round = 0; round < START_RACE_ROUNDS; round++) {
		rt_chan *out = rt_chan_new(sizeof(cg_event), 16);
		cg_watch *w = cg_watch_start(c, NULL, out, &e);
		CHECKF(w, "cg_watch_start: %s", e.msg);
		int go[2];
		CHECK(pipe(go) == 0);
		pid_t kid = cg_fork_into(c, NULL, &e);
		CHECKF(kid >= 0, "%s", e.msg);
		if (kid == 0) {
			char b;
			_exit(read(go[0], &b, 1) == 1 ? 0 : 1);
		}
		bool got;
		cg_event ev;
		do
			ev = recv_event(out, 3000 * MS, &got);
		while (got && ev.kind != CG_EV_POPULATED);
		CHECKF(
		    got && ev.value == 1,
		    "round %d: no populated 1 for a process forked in right after cg_watch_start",
		    round);
		CHECK(write(go[1], "x", 1) == 1);
		CHECK(waitpid(kid, NULL, 0) == kid);
		do
			ev = recv_event(out, 3000 * MS, &got);
		while (got && ev.kind != CG_EV_POPULATED);
		CHECKF(got && ev.value == 0, "round %d: no populated 0", round);
		cg_watch_stop(w);
		rt_chan_free(out);
		close(go[0]);
		close(go[1]);
	}
	fprintf(stderr, "  %d rounds: every populated 1 and 0 seen\n", START_RACE_ROUNDS);
	return 0;
}

TEST(watch_reports_a_change_right_after_start) {
	detect();
	start_janitor();
	cg *c = open_cg("startrace", true);
	run_rt(2, start_race_main, c);
	remove_cg(c);
	remove_top();
	stop_janitor();
}

TEST(psi_turned_off_while_watching_is_one_error) {
	detect();
	start_janitor();
	psi_watch_ctx x = {.c = open_cg("psiwatch2", true), .turn_off_while_watching = true};
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/cgroup.pressure", cg_path(x.c));
	if (access(path, F_OK) == 0)
		run_rt(2, psi_watch_main, &x);
	else
		fprintf(stderr, "skipped: no cgroup.pressure on this kernel\n");
	remove_cg(x.c);
	remove_top();
	stop_janitor();
}

/* ─── 7. permission errors after dropping root ───────────────────────── */

static void expect_denied(int rc, const cg_err *e, const char *what, const char *file) {
	CHECKF(rc == -EACCES || rc == -EPERM, "%s as nobody: %d (%s)", what, rc, e->msg);
	CHECKF(e->code == rc, "%s: err.code %d, returned %d", what, e->code, rc);
	CHECKF(strstr(e->msg, file) && strstr(e->msg, strerror(-rc)),
	       "%s: the message does not name %s: \"%s\"", what, file, e->msg);
	fprintf(stderr, "  %s: %s\n", what, e->msg);
}

TEST(permission_errors_name_the_file) {
	detect();
	start_janitor();
	cg *c = open_cg("perm", true);
	char rel[128]; /* top_rel() names the case's pid: build it before forking */
	snprintf(rel, sizeof rel, "%s/perm/nobody-child", top_rel());
	fflush(NULL);
	pid_t kid = fork();
	CHECK(kid >= 0);
	if (kid == 0) {
		CHECK(setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0);
		CHECK(geteuid() == 65534);
		cg_err e = {0};
		char file[PATH_MAX + 32];
		snprintf(file, sizeof file, "%s/cgroup.procs", cg_path(c));
		expect_denied(cg_attach(c, getpid(), &e), &e, "cg_attach", file);
		cg_limits l;
		cg_limits_init(&l);
		l.memory_max = 64 * MiB;
		expect_denied(cg_set_limits(c, &l, &e), &e, "cg_set_limits memory_max",
		              cgt_host.layout == CG_LAYOUT_HYBRID ? "memory.limit_in_bytes"
		                                                  : "memory.max");
		cg_limits_init(&l);
		l.pids_max = 10;
		expect_denied(cg_set_limits(c, &l, &e), &e, "cg_set_limits pids_max", "pids.max");
		expect_denied(cg_freeze(c, true, &e), &e, "cg_freeze", "cgroup.freeze");
		expect_denied(cg_kill(c, SIGKILL, &e), &e, "cg_kill", "cgroup.kill");
		CHECK(cg_open(&cgt_host, rel, true, &e) == NULL);
		expect_denied(e.code, &e, "cg_open create", "nobody-child");
		/* reading is allowed */
		CHECKF(cg_frozen(c, &e) == 0, "%s", e.msg);
		fflush(NULL);
		_exit(0);
	}
	int st;
	CHECK(waitpid(kid, &st, 0) == kid);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the unprivileged child failed (0x%x)", st);
	/* nothing changed */
	cg_err e = {0};
	CHECK(cg_frozen(c, &e) == 0);
	cg_memory m;
	if (cg_read_memory(c, &m, &e) == 0)
		CHECKF(m.max == CG_NOLIMIT, "memory max %lld", (long long)m.max);
	remove_cg(c);
	remove_top();
	stop_janitor();
}

/* ─── 8. an unavailable controller ────────────────────────────────────── */

TEST(unavailable_controller_is_named) {
	detect();
	start_janitor();
	cg_err e = {0};
	if (cgt_host.layout == CG_LAYOUT_HYBRID) {
		/* io is v1 blkio here: available when that hierarchy is mounted */
		cg *c = open_cg("ctl", true);
		if (cgt_host.v1_more[CG_V1_BLKIO][0])
			CHECKF(cg_enable(c, CG_IO, &e) == 0, "%s", e.msg);
		remove_cg(c);
		/* a host without a blkio hierarchy: io is named as unavailable */
		cg_host h = cgt_host;
		h.v1_more[CG_V1_BLKIO][0] = 0;
		char rel[128];
		snprintf(rel, sizeof rel, "%s/ctl", top_rel());
		c = cg_open(&h, rel, true, &e);
		CHECKF(c, "%s", e.msg);
		int rc = cg_enable(c, CG_IO, &e);
		CHECKF(rc == -ENOTSUP && e.code == -ENOTSUP, "cg_enable(io) on hybrid: %d %s", rc,
		       e.msg);
		CHECKF(has(&e, "io controller") && has(&e, "not available"), "%s", e.msg);
		fprintf(stderr, "hybrid io: %s\n", e.msg);
		CHECKF(cg_enable(c, CG_MEMORY | CG_CPU | CG_PIDS, &e) == 0, "%s", e.msg);
		/* io among others still fails */
		CHECK(cg_enable(c, CG_MEMORY | CG_IO, &e) == -ENOTSUP && has(&e, "io"));
		remove_cg(c);
	} else {
		/* v2: a parent with a process of its own cannot hand controllers
		 * to its children (the "no internal processes" rule) */
		cg *parent = open_cg("busy", true);
		fflush(NULL);
		pid_t kid = fork();
		CHECK(kid >= 0);
		if (kid == 0) {
			pause();
			_exit(0);
		}
		CHECKF(cg_attach(parent, kid, &e) == 0, "%s", e.msg);
		cg *child = open_cg("busy/child", true); /* its best-effort enable fails */
		int rc = cg_enable(child, CG_MEMORY, &e);
		CHECKF(rc == -EBUSY && e.code == -EBUSY, "cg_enable(memory): %d %s", rc, e.msg);
		char file[PATH_MAX + 32];
		snprintf(file, sizeof file, "%s/cgroup.subtree_control", cg_path(parent));
		CHECKF(has(&e, file) && has(&e, "memory") && has(&e, "processes of its own"), "%s",
		       e.msg);
		fprintf(stderr, "v2 internal process: %s\n", e.msg);
		/* and cg_set_limits asks again and reports the same */
		cg_limits l;
		cg_limits_init(&l);
		l.memory_max = 64 * MiB;
		rc = cg_set_limits(child, &l, &e);
		CHECKF(rc == -EBUSY && has(&e, "processes of its own"), "cg_set_limits: %d %s", rc,
		       e.msg);
		kill(kid, SIGKILL);
		CHECK(waitpid(kid, NULL, 0) == kid);
		remove_cg(child);
		remove_cg(parent);
	}
	remove_top();
	stop_janitor();
}

/* ─── 9. a cgroup removed while watched ───────────────────────────────── */

static int tag_a, tag_b;

static const char *who(const cg_event *ev) {
	return ev->tag == &tag_a ? "A" : ev->tag == &tag_b ? "B" : "?";
}

typedef struct {
	int gone_a, after_gone_a, gone_b, errors;
	bool a_left, b_left;
} tally;

static void count(tally *t, const cg_event *ev) {
	print_event(who(ev), ev);
	if (ev->tag == &tag_a) {
		if (t->gone_a)
			t->after_gone_a++;
		if (ev->kind == CG_EV_GONE) {
			t->gone_a++;
			CHECKF(strstr(ev->msg, "moonshim-test-") && strstr(ev->msg, "/A"),
			       "GONE message does not name A: %s", ev->msg);
		}
		t->a_left = t->a_left || (ev->kind == CG_EV_POPULATED && ev->value == 0);
	} else {
		CHECKF(ev->tag == &tag_b, "event with tag %p", ev->tag);
		t->gone_b += ev->kind == CG_EV_GONE;
		t->b_left = t->b_left || (ev->kind == CG_EV_POPULATED && ev->value == 0);
	}
	t->errors += ev->kind == CG_EV_ERROR;
}

/* Receive until cond holds or the timeout passes; true if it held. */
static bool until(rt_chan *out, tally *t, bool (*cond)(const tally *), int64_t timeout) {
	int64_t deadline = rt_deadline_in(timeout);
	while (!cond(t)) {
		cg_event ev;
		rt_case cs[1] = {{.c = out, .dir = RT_RECV, .elem = &ev}};
		if (rt_select(cs, 1, deadline) != 0)
			return false;
		count(t, &ev);
	}
	return true;
}

static bool a_left(const tally *t) {
	return t->a_left;
}
static bool a_gone(const tally *t) {
	return t->gone_a > 0;
}
static bool b_left(const tally *t) {
	return t->b_left;
}
static bool never(const tally *t) {
	return false;
}

static pid_t fork_waiting(cg *c, int *pidfd, int *go) {
	cg_err e = {0};
	CHECK(pipe(go) == 0);
	pid_t kid = cg_fork_into(c, pidfd, &e);
	CHECKF(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		char b;
		close(go[1]);
		_exit(read(go[0], &b, 1) == 1 ? 0 : 1);
	}
	close(go[0]);
	return kid;
}

static void release_and_reap(int pidfd, int *go) {
	CHECK(write(go[1], "x", 1) == 1);
	close(go[1]);
	int perr;
	rt_pollfd *pd = rt_poll_open(pidfd, &perr);
	CHECK(pd);
	CHECK(rt_poll_wait(pd, RT_POLL_READ, rt_deadline_in(5000 * MS)) == 0);
	rt_poll_close(pd);
	siginfo_t si = {0};
	CHECK(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) == 0 && si.si_status == 0);
	close(pidfd);
}

static int gone_main(void *arg) {
	cg_err e = {0};
	cg *a = open_cg("A", true), *b = open_cg("B", true);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 32);
	cg_watch_opts oa = {.tag = &tag_a}, ob = {.tag = &tag_b};
	cg_watch *wa = cg_watch_start(a, &oa, out, &e);
	CHECKF(wa, "%s", e.msg);
	cg_watch *wb = cg_watch_start(b, &ob, out, &e);
	CHECKF(wb, "%s", e.msg);
	rt_sleep(50 * MS);
	int pfa, pfb, goa[2], gob[2];
	fork_waiting(a, &pfa, goa);
	fork_waiting(b, &pfb, gob);
	tally t = {0};
	until(out, &t, never, 100 * MS); /* populated 1 for both */
	release_and_reap(pfa, goa);
	CHECKF(until(out, &t, a_left, 3000 * MS), "no populated 0 event for A");
	int64_t t0 = rt_now();
	int rc;
	for (int i = 0; i < 200 && (rc = cg_remove(a, &e)) == -EBUSY; i++)
		rt_sleep(10 * MS);
	CHECKF(rc == 0, "%s", e.msg);
	bool gone = until(out, &t, a_gone, 3000 * MS);
	int64_t gone_after = rt_now() - t0;
	until(out, &t, never, 300 * MS); /* a second GONE would come now */
	/* B is still watched */
	release_and_reap(pfb, gob);
	bool b_ok = until(out, &t, b_left, 3000 * MS);
	cg_watch_stop(wa);
	cg_watch_stop(wb);
	cg_event ev;
	rt_case cs[1] = {{.c = out, .dir = RT_RECV, .elem = &ev}};
	while (rt_select(cs, 1, 0) == 0)
		count(&t, &ev);
	rt_chan_free(out);
	fprintf(stderr, "GONE for A: %d (%s %lld ms after rmdir), events from A after it: %d\n",
	        t.gone_a, gone ? "first" : "none in 3 s;", (long long)gone_after / MS,
	        t.after_gone_a);
	CHECKF(b_ok, "B delivered no populated 0 event after A was removed");
	CHECKF(t.gone_b == 0 && t.errors == 0, "B gone %d, errors %d", t.gone_b, t.errors);
	CHECKF(t.gone_a == 1, "%d CG_EV_GONE events for A (removed while watched), want 1",
	       t.gone_a);
	CHECKF(t.after_gone_a == 0, "%d events from A after its GONE", t.after_gone_a);
	cg_close(a);
	remove_cg(b);
	return 0;
}

TEST(removed_cgroup_gives_one_gone_and_the_other_watch_goes_on) {
	detect();
	start_janitor();
	run_rt(2, gone_main, NULL);
	remove_top();
	stop_janitor();
}

/* ─── 10. malformed input to the parsers ─────────────────────────────── */

TEST(parsers_reject_malformed_input_naming_it) {
	static const struct {
		const char *rule, *says;
	} bad[] = {
	    {"memory:some:150ms", "want RESOURCE:some|full:THRESHOLD:WINDOW"},
	    {"disk:some:1ms:1s", "unknown resource \"disk\""},
	    {"memory:half:1ms:1s", "\"half\" is neither some nor full"},
	    {"memory:some:2s:1s", "the threshold at most the window"},
	    {"memory:some:1ms:20s", "the window may be at most 10s"},
	    {"memory:some:x:1s", "bad duration"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cg_psi_spec s;
		cg_err e = {0};
		int rc = cg_psi_parse(bad[i].rule, &s, &e);
		CHECKF(rc == -EINVAL && e.code == -EINVAL, "%s: %d", bad[i].rule, rc);
		CHECKF(strstr(e.msg, bad[i].rule) && strstr(e.msg, bad[i].says),
		       "%s: message \"%s\" lacks \"%s\"", bad[i].rule, e.msg, bad[i].says);
		fprintf(stderr, "%s: %s\n", bad[i].rule, e.msg);
	}
	cg_err e = {0};
	cg_pressure p;
	CHECK(cg_parse_pressure("some avg10=0.1 avg6", &p, &e) == -EINVAL && e.code == -EINVAL);
	CHECKF(strstr(e.msg, "some avg10=0.1 avg6") && strstr(e.msg, "malformed"), "%s", e.msg);
	CHECK(cg_parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10", &p,
	                        &e) == -EINVAL);
	CHECKF(strstr(e.msg, "\"full avg10\""), "%s", e.msg);
	int64_t v = 12345;
	CHECK(cg_parse_kv("populated", "populated", &v, &e) == -EINVAL && e.code == -EINVAL);
	CHECKF(strstr(e.msg, "\"populated\"") && strstr(e.msg, "malformed"), "%s", e.msg);
	CHECK(cg_parse_kv("populated x", "populated", &v, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "\"x\"") && strstr(e.msg, "populated"), "%s", e.msg);
	CHECK(cg_parse_kv("populated 1\nfro", "frozen", &v, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "\"fro\""), "%s", e.msg);
	CHECK(cg_parse_kv("populated 99999999999999999999\n", "populated", &v, &e) == -EINVAL);
	CHECKF(strstr(e.msg, "99999999999999999999"), "%s", e.msg);
	CHECK(v == 12345); /* untouched on failure */
	fprintf(stderr, "last kv error: %s\n", e.msg);
}
