/* actions_test.c — acting on real cgroups holding real process trees:
 * freezing and thawing a tree of scaled(100) processes (progress stops and
 * resumes, frozen 1/0 arrive as watcher events), killing it through
 * cgroup.kill (populated 1→0 as an event, everything reaped, the cgroup
 * removable), the freeze + signal + thaw fallback for other signals
 * (counting every process, child cgroups included), cg_fork_into (the
 * child's membership and its pidfd), and limits on the hybrid host mapped
 * onto the v1 files, with a real OOM kill seen by the v1 watcher.
 *
 * Every case is cleaned up by a janitor process even when it fails: it
 * waits for the case's death (PR_SET_PDEATHSIG), kills what is left in
 * moonshim-test-<pid> and removes the cgroups. */
#define _GNU_SOURCE
#include "cgtest.h"

#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define MiB       (1LL << 20)
#define MS        1000000LL
#define MAXPROCS  128
#define TERM_EXIT 43 /* how a tree process leaves on SIGTERM */

/* Pids listed in a cgroup.procs file; -1 if it cannot be read. */
static int count_procs(const char *dir, pid_t want, bool *found) {
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = 0, pid;
	while (fscanf(f, "%d", &pid) == 1) {
		n++;
		if (found && pid == want)
			*found = true;
	}
	fclose(f);
	return n;
}

/* The directory of `rel` (below moonshim-test-<pid>) in one hierarchy. */
static const char *dir_in(const char *root, const char *name) {
	static char d[4][PATH_MAX + 128];
	static int next;
	char *p = d[next++ % 4];
	snprintf(p, PATH_MAX + 128, "%s/%s/%s", root, top_rel(), name);
	return p;
}

/* ─── a process tree ──────────────────────────────────────────────────
 * A leader forks ~sqrt(n) children and they fork the rest as
 * grandchildren; every process counts in its slot of a shared page and
 * sleeps 2 ms, and leaves with TERM_EXIT on SIGTERM. The case process is
 * a subreaper, so every one of them is finally its child and is reaped. */

typedef struct {
	volatile int64_t count[MAXPROCS];
	volatile pid_t pid[MAXPROCS];
} tree_shm;

static tree_shm *shm_new(void) {
	void *p =
	    mmap(NULL, sizeof(tree_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

static void on_term(int sig) {
	_exit(TERM_EXIT);
}

static void tree_body(tree_shm *sh, int idx) {
	sh->pid[idx] = getpid();
	for (;;) {
		__atomic_add_fetch(&sh->count[idx], 1, __ATOMIC_RELAXED);
		usleep(2000);
	}
}

static void tree_leader(tree_shm *sh, int n) {
	int nchild = 1;
	while ((nchild + 1) * (nchild + 1) <= n - 1)
		nchild++;
	if (nchild > n - 1)
		nchild = n - 1;
	int rest = n - 1 - nchild, idx = 1;
	for (int i = 0; i < nchild; i++) {
		int ng = rest / nchild + (i < rest % nchild), mine = idx;
		idx += 1 + ng;
		pid_t k = fork();
		if (k < 0)
			_exit(2);
		if (k == 0) {
			for (int g = 0; g < ng; g++) {
				pid_t gk = fork();
				if (gk < 0)
					_exit(2);
				if (gk == 0)
					tree_body(sh, mine + 1 + g);
			}
			tree_body(sh, mine);
		}
	}
	tree_body(sh, 0);
}

/* Fork the leader (before the runtime starts), put it into c, let it go. */
static pid_t spawn_tree(cg *c, tree_shm *sh, int n) {
	CHECK(n >= 1 && n <= MAXPROCS);
	int go[2];
	CHECK(pipe(go) == 0);
	fflush(NULL);
	pid_t leader = fork();
	CHECK(leader >= 0);
	if (leader == 0) {
		close(go[1]);
		signal(SIGTERM, on_term);
		char b;
		if (read(go[0], &b, 1) != 1) /* the case died before letting us go */
			_exit(1);
		close(go[0]);
		tree_leader(sh, n);
	}
	close(go[0]);
	cg_err e = {0};
	int rc = cg_attach(c, leader, &e);
	if (rc) {
		kill(leader, SIGKILL);
		waitpid(leader, NULL, 0);
	}
	CHECKF(rc == 0, "%s", e.msg);
	CHECK(write(go[1], "g", 1) == 1);
	close(go[1]);
	return leader;
}

/* Every process of the tree has started and counted (from a goroutine). */
static void wait_started(tree_shm *sh, int n, int64_t timeout) {
	int64_t deadline = rt_deadline_in(timeout);
	for (;;) {
		int ready = 0;
		for (int i = 0; i < n; i++)
			ready += sh->pid[i] != 0 && sh->count[i] > 0;
		if (ready == n)
			return;
		CHECKF(rt_now() < deadline, "only %d of %d tree processes started", ready, n);
		rt_sleep(5 * MS);
	}
}

/* Reap all n processes of the tree (outside the runtime); each status is
 * checked by `ok`. A grandchild becomes ours once its parent is gone. */
static void reap_tree(tree_shm *sh, int n, bool (*ok)(int st), const char *what) {
	int64_t deadline = mono_ns() + 10000 * MS;
	for (int i = 0; i < n; i++) {
		pid_t pid = sh->pid[i];
		int st = 0;
		for (;;) {
			pid_t r = waitpid(pid, &st, WNOHANG);
			if (r == pid)
				break;
			CHECKF(mono_ns() < deadline, "tree process %d (slot %d) not reaped: %s",
			       pid, i, r < 0 ? strerror(errno) : "still running");
			usleep(1000);
		}
		CHECKF(ok(st), "tree process %d (slot %d): status 0x%x, expected %s", pid, i, st,
		       what);
	}
}

static bool killed_by_sigkill(int st) {
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

static bool exited_on_term(int st) {
	return WIFEXITED(st) && WEXITSTATUS(st) == TERM_EXIT;
}

/* The next event of `kind` (others are printed and skipped), or fail. */
static cg_event next_event(rt_chan *out, cg_event_kind kind, void *tag, int64_t timeout,
                           const char *what) {
	cg_event ev;
	rt_case cs[1] = {{.c = out, .dir = RT_RECV, .elem = &ev}};
	int64_t deadline = rt_deadline_in(timeout);
	for (;;) {
		int k = rt_select(cs, 1, deadline);
		CHECKF(k == 0, "no %s event within %lld ms (%s)", cg_event_name(kind),
		       (long long)(timeout / MS), what);
		if (ev.kind == kind && (!tag || ev.tag == tag))
			return ev;
		fprintf(stderr, "  (skipped %s event: value %d %s)\n", cg_event_name(ev.kind),
		        ev.value, ev.msg);
	}
}

static int64_t tree_timeout(void) {
	return scaled(1) == 1 ? 10000 * MS : 40000 * MS;
}

/* ─── 1. freeze and thaw ──────────────────────────────────────────────── */

typedef struct {
	cg *c;
	tree_shm *sh;
	int n;
} tree_ctx;

static void snapshot(tree_shm *sh, int n, int64_t *out) {
	for (int i = 0; i < n; i++)
		out[i] = sh->count[i];
}

static int freeze_main(void *arg) {
	tree_ctx *t = arg;
	cg_err e = {0};
	wait_started(t->sh, t->n, tree_timeout());
	CHECKF(count_procs(cg_path(t->c), 0, NULL) == t->n, "cgroup.procs of %s: %d, want %d",
	       cg_path(t->c), count_procs(cg_path(t->c), 0, NULL), t->n);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 16);
	int tag;
	cg_watch_opts o = {.tag = &tag};
	cg_watch *w = cg_watch_start(t->c, &o, out, &e);
	CHECKF(w, "%s", e.msg);
	rt_sleep(50 * MS); /* the watcher reads its first cgroup.events */

	int64_t t0 = rt_now();
	CHECKF(cg_freeze_wait(t->c, true, rt_deadline_in(tree_timeout()), &e) == 0, "%s", e.msg);
	int64_t froze = rt_now() - t0;
	CHECKF(cg_frozen(t->c, &e) == 1, "after cg_freeze_wait: frozen %d", cg_frozen(t->c, &e));
	cg_event ev = next_event(out, CG_EV_FROZEN, &tag, 2000 * MS, "after freezing");
	CHECKF(ev.value == 1, "first frozen event has value %d", ev.value);

	/* frozen: nobody counts */
	int64_t a[MAXPROCS], b[MAXPROCS];
	snapshot(t->sh, t->n, a);
	rt_sleep(200 * MS);
	snapshot(t->sh, t->n, b);
	for (int i = 0; i < t->n; i++)
		CHECKF(a[i] == b[i], "process %d (slot %d) counted %lld -> %lld while frozen",
		       t->sh->pid[i], i, (long long)a[i], (long long)b[i]);

	t0 = rt_now();
	CHECKF(cg_freeze_wait(t->c, false, rt_deadline_in(tree_timeout()), &e) == 0, "%s", e.msg);
	int64_t thawed = rt_now() - t0;
	CHECKF(cg_frozen(t->c, &e) == 0, "after thawing: frozen %d", cg_frozen(t->c, &e));
	ev = next_event(out, CG_EV_FROZEN, &tag, 2000 * MS, "after thawing");
	CHECKF(ev.value == 0, "second frozen event has value %d", ev.value);

	/* thawed: everybody counts again */
	int64_t deadline = rt_deadline_in(tree_timeout()), resumed;
	for (;;) {
		snapshot(t->sh, t->n, b);
		int moved = 0;
		for (int i = 0; i < t->n; i++)
			moved += b[i] > a[i];
		if (moved == t->n) {
			resumed = rt_now() - t0;
			break;
		}
		CHECKF(rt_now() < deadline, "only %d of %d processes counted after the thaw", moved,
		       t->n);
		rt_sleep(2 * MS);
	}
	fprintf(stderr,
	        "%d processes: frozen in %lld us, thawed in %lld us, all counting again "
	        "%lld us after the thaw began\n",
	        t->n, (long long)froze / 1000, (long long)thawed / 1000, (long long)resumed / 1000);
	cg_watch_stop(w);
	rt_chan_free(out);
	return 0;
}

TEST(freeze_and_thaw_a_process_tree) {
	detect();
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	start_janitor();
	tree_ctx t = {.c = open_cg("freeze", true), .sh = shm_new(), .n = (int)scaled(100)};
	spawn_tree(t.c, t.sh, t.n);
	run_rt(2, freeze_main, &t);
	cg_err e = {0};
	CHECKF(cg_kill(t.c, SIGKILL, &e) == 0, "%s", e.msg);
	reap_tree(t.sh, t.n, killed_by_sigkill, "SIGKILL");
	remove_cg(t.c);
	remove_top();
	stop_janitor();
}

/* ─── 2. kill through cgroup.kill ─────────────────────────────────────── */

static int64_t kill_latency;

static int kill_main(void *arg) {
	tree_ctx *t = arg;
	cg_err e = {0};
	wait_started(t->sh, t->n, tree_timeout());
	rt_chan *out = rt_chan_new(sizeof(cg_event), 16);
	cg_watch *w = cg_watch_start(t->c, NULL, out, &e);
	CHECKF(w, "%s", e.msg);
	rt_sleep(50 * MS);
	CHECKF(cg_populated(t->c, &e) == 1, "populated %d before the kill", cg_populated(t->c, &e));
	int64_t t0 = rt_now();
	int rc = cg_kill(t->c, SIGKILL, &e);
	CHECKF(rc == 0, "cg_kill(SIGKILL) = %d: %s (cgroup.kill returns 0, nothing counted)", rc,
	       e.msg);
	cg_event ev = next_event(out, CG_EV_POPULATED, NULL, tree_timeout(), "after the kill");
	CHECKF(ev.value == 0, "populated event with value %d", ev.value);
	kill_latency = ev.at - t0;
	CHECKF(cg_populated(t->c, &e) == 0, "populated %d after the event", cg_populated(t->c, &e));
	cg_watch_stop(w);
	rt_chan_free(out);
	return 0;
}

TEST(kill_a_process_tree_with_cgroup_kill) {
	detect();
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	start_janitor();
	tree_ctx t = {.c = open_cg("kill", true), .sh = shm_new(), .n = (int)scaled(100)};
	spawn_tree(t.c, t.sh, t.n);
	run_rt(2, kill_main, &t);
	fprintf(stderr, "%d processes: populated 1->0 event %lld us after cgroup.kill\n", t.n,
	        (long long)kill_latency / 1000);
	if (scaled(1) == 1)
		CHECKF(kill_latency < 2000 * MS, "populated 0 only %lld ms after the kill",
		       (long long)kill_latency / MS);
	reap_tree(t.sh, t.n, killed_by_sigkill, "SIGKILL");
	/* empty in every hierarchy it lives in */
	const char *roots[] = {cgt_host.unified, cgt_host.v1_memory, cgt_host.v1_cpu,
	                       cgt_host.v1_pids};
	for (int i = 0; i < 4; i++) {
		if (!roots[i][0] || (i > 0 && cgt_host.layout != CG_LAYOUT_HYBRID))
			continue;
		const char *d = dir_in(roots[i], "kill");
		int n = count_procs(d, 0, NULL);
		CHECKF(n == 0, "%s/cgroup.procs lists %d processes after the kill", d, n);
	}
	/* cg_remove works at once: no EBUSY wait */
	cg_err e = {0};
	CHECKF(cg_remove(t.c, &e) == 0, "%s", e.msg);
	for (int i = 0; i < 4; i++)
		if (roots[i][0] && (i == 0 || cgt_host.layout == CG_LAYOUT_HYBRID))
			CHECKF(access(dir_in(roots[i], "kill"), F_OK) != 0, "%s still exists",
			       dir_in(roots[i], "kill"));
	cg_close(t.c);
	remove_top();
	stop_janitor();
}

/* ─── 3. the fallback: freeze, signal every process, thaw ────────────── */

/* frozen_usec of cgroup.stat.local (6.17+), or -1 without it. */
static int64_t frozen_usec(cg *c) {
	char buf[256];
	cg_err e = {0};
	int64_t v = -1;
	if (cg_read(c, "cgroup.stat.local", buf, sizeof buf, &e) < 0 ||
	    cg_parse_kv(buf, "frozen_usec", &v, &e) != 0)
		return -1;
	return v;
}

static int wait_unpopulated(cg *c, int64_t timeout) {
	cg_err e = {0};
	int64_t deadline = rt_deadline_in(timeout);
	int p;
	while ((p = cg_populated(c, &e)) == 1 && rt_now() < deadline)
		rt_sleep(5 * MS);
	return p;
}

static int term_main(void *arg) {
	tree_ctx *t = arg;
	cg_err e = {0};
	wait_started(t->sh, t->n, tree_timeout());
	/* a child cgroup under it with a third of the processes (on v2 it can
	 * have no controllers: its parent has processes of its own) */
	cg *sub = open_cg("term/sub", true);
	int in_sub = 0;
	for (int i = 0; i < t->n; i++)
		if (i % 3 == 2) {
			CHECKF(cg_attach(sub, t->sh->pid[i], &e) == 0, "%s", e.msg);
			in_sub++;
		}
	CHECK(count_procs(cg_path(sub), 0, NULL) == in_sub);
	CHECK(count_procs(cg_path(t->c), 0, NULL) == t->n - in_sub);
	int64_t fu0 = frozen_usec(t->c);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 16);
	cg_watch *w = cg_watch_start(t->c, NULL, out, &e);
	CHECKF(w, "%s", e.msg);
	rt_sleep(50 * MS);

	int64_t t0 = rt_now();
	int n = cg_kill(t->c, SIGTERM, &e);
	int64_t took = rt_now() - t0;
	CHECKF(n == t->n,
	       "cg_kill(SIGTERM) signalled %d of %d processes (%d in the child cgroup): %s", n,
	       t->n, in_sub, n < 0 ? e.msg : "");
	/* left thawed */
	char buf[16];
	CHECKF(cg_read(t->c, "cgroup.freeze", buf, sizeof buf, &e) > 0, "%s", e.msg);
	CHECKF(buf[0] == '0', "cgroup.freeze is \"%s\" after cg_kill", buf);
	int64_t fu1 = frozen_usec(t->c);
	int p = wait_unpopulated(t->c, tree_timeout());
	CHECKF(p == 0, "populated %d: processes survived SIGTERM", p);
	CHECKF(cg_frozen(t->c, &e) == 0, "frozen %d after cg_kill", cg_frozen(t->c, &e));
	/* the watcher saw the freeze (when its read came before the thaw) */
	bool saw_frozen = false;
	cg_event ev;
	rt_case cs[1] = {{.c = out, .dir = RT_RECV, .elem = &ev}};
	while (rt_select(cs, 1, rt_deadline_in(100 * MS)) == 0)
		saw_frozen = saw_frozen || (ev.kind == CG_EV_FROZEN && ev.value == 1);
	fprintf(stderr,
	        "cg_kill(SIGTERM): %d processes (%d in a child cgroup) signalled in %lld us; "
	        "frozen_usec %lld -> %lld; frozen 1 event %s\n",
	        n, in_sub, (long long)took / 1000, (long long)fu0, (long long)fu1,
	        saw_frozen ? "seen" : "coalesced away");
	if (fu0 >= 0)
		CHECKF(fu1 > fu0,
		       "cgroup.stat.local frozen_usec %lld -> %lld: the tree was not "
		       "frozen around the signals",
		       (long long)fu0, (long long)fu1);
	cg_watch_stop(w);
	rt_chan_free(out);
	CHECKF(cg_remove(sub, &e) == 0, "%s", e.msg);
	cg_close(sub);
	return 0;
}

TEST(kill_fallback_signals_every_process_frozen) {
	detect();
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	start_janitor();
	tree_ctx t = {.c = open_cg("term", true), .sh = shm_new(), .n = (int)scaled(100)};
	spawn_tree(t.c, t.sh, t.n);
	run_rt(2, term_main, &t);
	reap_tree(t.sh, t.n, exited_on_term, "exit 43 from the SIGTERM handler");
	remove_cg(t.c);
	remove_top();
	stop_janitor();
}

/* A tree the caller froze stays frozen: signals wait for the thaw. */
static int term_frozen_main(void *arg) {
	tree_ctx *t = arg;
	cg_err e = {0};
	wait_started(t->sh, t->n, tree_timeout());
	CHECKF(cg_freeze_wait(t->c, true, rt_deadline_in(tree_timeout()), &e) == 0, "%s", e.msg);
	int n = cg_kill(t->c, SIGTERM, &e);
	CHECKF(n == t->n, "cg_kill(SIGTERM) on a frozen tree signalled %d of %d: %s", n, t->n,
	       n < 0 ? e.msg : "");
	CHECKF(cg_frozen(t->c, &e) == 1, "a tree the caller froze was thawed by cg_kill");
	rt_sleep(100 * MS);
	CHECKF(cg_populated(t->c, &e) == 1, "processes exited while frozen");
	for (int i = 0; i < t->n; i++)
		CHECKF(kill(t->sh->pid[i], 0) == 0, "process %d gone while frozen", t->sh->pid[i]);
	CHECKF(cg_freeze_wait(t->c, false, rt_deadline_in(tree_timeout()), &e) == 0, "%s", e.msg);
	int p = wait_unpopulated(t->c, tree_timeout());
	CHECKF(p == 0, "populated %d after the thaw: SIGTERM was lost", p);
	return 0;
}

TEST(kill_fallback_keeps_a_frozen_tree_frozen) {
	detect();
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	start_janitor();
	tree_ctx t = {.c = open_cg("frozenterm", true), .sh = shm_new(), .n = (int)scaled(20)};
	spawn_tree(t.c, t.sh, t.n);
	run_rt(2, term_frozen_main, &t);
	reap_tree(t.sh, t.n, exited_on_term, "exit 43 from the SIGTERM handler");
	remove_cg(t.c);
	remove_top();
	stop_janitor();
}

/* ─── 4. cg_fork_into ─────────────────────────────────────────────────── */

static int fork_main(void *arg) {
	cg *c = arg;
	cg_err e = {0};
	int go[2];
	CHECK(pipe(go) == 0);
	int pidfd = -1;
	pid_t kid = cg_fork_into(c, &pidfd, &e);
	CHECKF(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		char b;
		close(go[1]);
		_exit(read(go[0], &b, 1) == 1 ? 7 : 1);
	}
	close(go[0]);
	CHECKF(!e.msg[0], "cg_fork_into: %s", e.msg);
	CHECK(pidfd >= 0);
	/* /proc/<pid>/cgroup: the unified path, and the v1 memory one on hybrid */
	char path[64], line[PATH_MAX + 64], want[PATH_MAX + 8];
	snprintf(path, sizeof path, "/proc/%d/cgroup", kid);
	snprintf(want, sizeof want, "0::%s", cg_path(c) + strlen(cgt_host.unified));
	FILE *f = fopen(path, "r");
	CHECK(f);
	bool unified = false, memory = false;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		unified = unified || !strcmp(line, want);
		char *m = strstr(line, ":memory:");
		if (m)
			memory = !strcmp(m + 8, want + 3);
	}
	fclose(f);
	CHECKF(unified, "%s has no line \"%s\"", path, want);
	if (cgt_host.layout == CG_LAYOUT_HYBRID) {
		CHECKF(memory, "%s: not in the v1 memory cgroup %s", path, want + 3);
		bool found = false;
		const char *d = dir_in(cgt_host.v1_memory, "fork");
		CHECK(count_procs(d, kid, &found) >= 1);
		CHECKF(found, "%s/cgroup.procs lacks %d", d, kid);
	}
	bool found = false;
	CHECK(count_procs(cg_path(c), kid, &found) == 1 && found);
	/* the pidfd: not readable while the child lives, readable at its exit */
	int perr;
	rt_pollfd *pd = rt_poll_open(pidfd, &perr);
	CHECKF(pd, "rt_poll_open(pidfd): %s", strerror(-perr));
	CHECK(rt_poll_wait(pd, RT_POLL_READ, 0) == -ETIMEDOUT);
	int64_t t0 = rt_now();
	CHECK(write(go[1], "x", 1) == 1);
	int rc = rt_poll_wait(pd, RT_POLL_READ, rt_deadline_in(5000 * MS));
	CHECKF(rc == 0, "pidfd not readable 5 s after the child was told to exit: %s",
	       strerror(-rc));
	fprintf(stderr, "pidfd readable %lld us after the child was told to exit\n",
	        (long long)(rt_now() - t0) / 1000);
	rt_poll_close(pd);
	siginfo_t si = {0};
	CHECKF(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) == 0, "waitid(P_PIDFD): %s",
	       strerror(errno));
	CHECKF(si.si_pid == kid && si.si_code == CLD_EXITED && si.si_status == 7,
	       "child %d: code %d status %d", si.si_pid, si.si_code, si.si_status);
	close(pidfd);
	close(go[1]);
	return 0;
}

TEST(fork_into_places_the_child_and_gives_a_pidfd) {
	detect();
	start_janitor();
	cg *c = open_cg("fork", true);
	run_rt(2, fork_main, c);
	remove_cg(c);
	remove_top();
	stop_janitor();
}

/* ─── 5. limits on the hybrid host ───────────────────────────────────── */

static int64_t read_num(const char *dir, const char *file) {
	char path[PATH_MAX + 64], buf[64] = {0};
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	CHECKF(f, "%s: %s", path, strerror(errno));
	CHECKF(fgets(buf, sizeof buf, f), "%s: empty", path);
	fclose(f);
	if (!strncmp(buf, "max", 3))
		return CG_NOLIMIT;
	return strtoll(buf, NULL, 10);
}

static int64_t shares_for(int64_t weight) {
	return 2 + ((weight - 1) * 262142) / 9999;
}

static void set_limits_ok(cg *c, const cg_limits *l) {
	cg_err e = {0};
	CHECKF(cg_set_limits(c, l, &e) == 0, "%s", e.msg);
}

static void unsupported_names(cg *c, const cg_limits *l, const char *file) {
	cg_err e = {0};
	int rc = cg_set_limits(c, l, &e);
	CHECKF(rc == -ENOTSUP, "setting %s on hybrid: %d (%s)", file, rc, e.msg);
	CHECKF(e.code == -ENOTSUP && strstr(e.msg, file), "%s: message \"%s\"", file, e.msg);
}

/* An OOM kill on a hybrid host: limit 32 MiB (no swap here), a child
 * touching 256 MiB, a watcher on the cgroup. */
typedef struct {
	int64_t died_ms;      /* the child's death (pidfd readable), after it was let go */
	int64_t event_ms;     /* the memory event carrying oom_kill, after it was let go */
	cg_memory_events me0; /* before */
	cg_memory_events me;  /* after */
	cg_event ev;          /* the event that carried oom_kill */
} oom_result;

static void run_oom(cg *c, oom_result *r) {
	cg_err e = {0};
	cg_limits l;
	cg_limits_init(&l);
	l.memory_max = 32 * MiB;
	set_limits_ok(c, &l);
	CHECKF(cg_read_memory_events(c, false, &r->me0, &e) == 0, "%s", e.msg);
	rt_chan *out = rt_chan_new(sizeof(cg_event), 16);
	cg_watch *w = cg_watch_start(c, NULL, out, &e);
	CHECKF(w, "%s", e.msg);
	rt_sleep(50 * MS); /* the v1 watcher registers its eventfd */
	int go[2];
	CHECK(pipe(go) == 0);
	int pidfd = -1;
	pid_t kid = cg_fork_into(c, &pidfd, &e);
	CHECKF(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		char b;
		if (read(go[0], &b, 1) != 1) /* until the parent put us into v1 memory */
			_exit(1);
		size_t len = 256 * MiB;
		char *p =
		    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			_exit(2);
		for (size_t i = 0; i < len; i += 4096)
			p[i] = 1;
		_exit(3); /* survived: the limit did not hold */
	}
	CHECKF(!e.msg[0], "cg_fork_into: %s", e.msg);
	int64_t cur = -5, max = -5;
	CHECKF(cg_read_pids(c, &cur, &max, &e) == 0 && cur == 1, "pids.current %lld",
	       (long long)cur);
	int64_t t0 = rt_now();
	CHECK(write(go[1], "g", 1) == 1);
	int perr;
	rt_pollfd *pd = rt_poll_open(pidfd, &perr);
	CHECK(pd);
	CHECKF(rt_poll_wait(pd, RT_POLL_READ, rt_deadline_in(20000 * MS)) == 0,
	       "the child outlived a 32 MiB limit for 20 s");
	r->died_ms = (rt_now() - t0) / MS;
	rt_poll_close(pd);
	siginfo_t si = {0};
	CHECK(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) == 0);
	close(pidfd);
	CHECKF(si.si_code == CLD_KILLED && si.si_status == SIGKILL,
	       "the child was not OOM-killed: code %d status %d", si.si_code, si.si_status);
	int64_t oom_kill = 0;
	while (oom_kill < 1) {
		r->ev = next_event(out, CG_EV_MEMORY, NULL, 5000 * MS, "after the OOM kill");
		oom_kill += r->ev.mem.delta.oom_kill;
		fprintf(stderr,
		        "  memory event at +%lld ms: delta max %lld oom %lld oom_kill %lld\n",
		        (long long)(r->ev.at - t0) / MS, (long long)r->ev.mem.delta.max,
		        (long long)r->ev.mem.delta.oom, (long long)r->ev.mem.delta.oom_kill);
	}
	r->event_ms = (r->ev.at - t0) / MS;
	CHECKF(cg_read_memory_events(c, false, &r->me, &e) == 0, "%s", e.msg);
	fprintf(stderr,
	        "OOM kill at 32 MiB: child dead %lld ms and oom_kill event %lld ms after it "
	        "started allocating; oom_kill %lld, failcnt %lld\n",
	        (long long)r->died_ms, (long long)r->event_ms, (long long)r->me.oom_kill,
	        (long long)r->me.max);
	CHECK(cg_read_pids(c, &cur, &max, &e) == 0 && cur == 0);
	cg_watch_stop(w);
	rt_chan_free(out);
	close(go[0]);
	close(go[1]);
}

static int limits_main(void *arg) {
	cg *c = arg;
	cg_err e = {0};
	const char *mem = dir_in(cgt_host.v1_memory, "limits");
	const char *cpu = dir_in(cgt_host.v1_cpu, "limits");
	const char *pids = dir_in(cgt_host.v1_pids, "limits");

	cg_limits l;
	cg_limits_init(&l);
	l.memory_max = 64 * MiB;
	l.memory_high = 48 * MiB;
	l.cpu_quota_us = 50000;
	l.cpu_period_us = 200000;
	l.cpu_weight = 100;
	l.pids_max = 50;
	set_limits_ok(c, &l);
	CHECK(read_num(mem, "memory.limit_in_bytes") == 64 * MiB);
	CHECK(read_num(mem, "memory.soft_limit_in_bytes") == 48 * MiB);
	CHECK(read_num(cpu, "cpu.cfs_quota_us") == 50000);
	CHECK(read_num(cpu, "cpu.cfs_period_us") == 200000);
	CHECKF(read_num(cpu, "cpu.shares") == shares_for(100), "cpu.shares %lld for weight 100",
	       (long long)read_num(cpu, "cpu.shares"));
	CHECK(read_num(pids, "pids.max") == 50);
	/* runc's shares→weight mapping brings it back within one */
	int64_t back = 1 + ((read_num(cpu, "cpu.shares") - 2) * 9999) / 262142;
	CHECKF(back >= 99 && back <= 101, "weight 100 -> shares %lld -> weight %lld",
	       (long long)read_num(cpu, "cpu.shares"), (long long)back);
	/* the ends of the weight range */
	cg_limits_init(&l);
	l.cpu_weight = 1;
	set_limits_ok(c, &l);
	CHECK(read_num(cpu, "cpu.shares") == 2);
	l.cpu_weight = 10000;
	set_limits_ok(c, &l);
	CHECK(read_num(cpu, "cpu.shares") == 262144);
	/* untouched fields stayed */
	CHECK(read_num(mem, "memory.limit_in_bytes") == 64 * MiB);

	cg_memory m;
	CHECKF(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	CHECKF(m.max == 64 * MiB && m.high == 48 * MiB, "max %lld high %lld", (long long)m.max,
	       (long long)m.high);
	CHECKF(m.low == -1 && m.min == -1, "low %lld min %lld on v1", (long long)m.low,
	       (long long)m.min);
	int64_t cur = -5, max = -5;
	CHECKF(cg_read_pids(c, &cur, &max, &e) == 0, "%s", e.msg);
	CHECKF(cur == 0 && max == 50, "pids current %lld max %lld", (long long)cur, (long long)max);

	/* no v1 equivalent: one clear error naming the file */
	cg_limits_init(&l);
	l.memory_min = MiB;
	unsupported_names(c, &l, "memory.min");
	cg_limits_init(&l);
	l.memory_low = MiB;
	unsupported_names(c, &l, "memory.low");
	cg_limits_init(&l);
	l.io_max = "8:0 rbps=1048576";
	unsupported_names(c, &l, "io.max");

	/* "max" for unlimited, both ways */
	cg_limits_init(&l);
	l.memory_high = CG_NOLIMIT;
	l.pids_max = CG_NOLIMIT;
	l.cpu_quota_us = CG_NOLIMIT;
	set_limits_ok(c, &l);
	CHECKF(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	CHECK(m.high == CG_NOLIMIT && m.max == 64 * MiB);
	CHECK(cg_read_pids(c, &cur, &max, &e) == 0 && max == CG_NOLIMIT);
	CHECK(read_num(cpu, "cpu.cfs_quota_us") == -1);

	/* an OOM kill, counted and seen by the v1 watcher */
	oom_result r;
	run_oom(c, &r);
	CHECKF(r.me.oom_kill >= 1 && r.me.max > r.me0.max,
	       "memory events: oom_kill %lld, max (failcnt) %lld -> %lld", (long long)r.me.oom_kill,
	       (long long)r.me0.max, (long long)r.me.max);
	CHECKF(r.ev.mem.delta.oom_kill >= 1 && r.ev.mem.total.oom_kill >= 1,
	       "event oom_kill delta %lld total %lld", (long long)r.ev.mem.delta.oom_kill,
	       (long long)r.ev.mem.total.oom_kill);
	CHECKF(cg_read_memory(c, &m, &e) == 0, "%s", e.msg);
	fprintf(stderr, "peak %lld KiB\n", (long long)m.peak / 1024);
	CHECKF(m.peak <= 32 * MiB && m.peak > 16 * MiB, "peak %lld with max 32 MiB",
	       (long long)m.peak);
	return 0;
}

TEST(limits_on_the_hybrid_host_map_to_v1) {
	detect();
	if (cgt_host.layout != CG_LAYOUT_HYBRID) {
		fprintf(stderr, "skipped: not a hybrid host (v2 limits are covered in the VM)\n");
		return;
	}
	start_janitor();
	cg *c = open_cg("limits", true);
	run_rt(2, limits_main, c);
	remove_cg(c);
	remove_top();
	stop_janitor();
}

/* The v1 oom_control eventfd fires when the OOM starts, before the victim
 * is killed and oom_kill counted: the kill must still be reported promptly,
 * not at the watcher's next once-a-second look at failcnt. */
static int oom_latency_main(void *arg) {
	oom_result r;
	run_oom(arg, &r);
	if (scaled(1) == 1)
		CHECKF(r.event_ms - r.died_ms < 250,
		       "the oom_kill event came %lld ms after the OOM-killed child was dead",
		       (long long)(r.event_ms - r.died_ms));
	return 0;
}

TEST(hybrid_oom_kill_event_is_prompt) {
	detect();
	if (cgt_host.layout != CG_LAYOUT_HYBRID) {
		fprintf(stderr, "skipped: not a hybrid host\n");
		return;
	}
	start_janitor();
	cg *c = open_cg("oomlat", true);
	run_rt(2, oom_latency_main, c);
	remove_cg(c);
	remove_top();
	stop_janitor();
}
