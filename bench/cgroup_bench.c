/*
 * cgroup_bench.c — moonshim's cgroup watcher against the 1 s polling loop
 * that oomd and systemd-oomd use. `cgroupbench CASE [ARGS]` runs one case
 * and prints one "RESULT CASE key=value ..." line, plus "INFO ..." lines
 * that say what was measured; bench/run_cgroup.sh turns them into ratios
 * and verdicts against the targets.
 *
 *   cgroup_event_latency          a process exits (populated 1→0) → the
 *                                 subscriber goroutine holds the cg_event
 *   psi_onset                     CPU pressure starts → the first
 *                                 CG_EV_PRESSURE event
 *   watch_idle_cpu MOONSHIM [S]   CPU per watched calm cgroup of
 *                                 `moonshim watch` over S seconds
 *                                 (default $BENCH_IDLE_SECS, else 60)
 *
 * Needs root and a cgroup2 mount. Every cgroup is private
 * (moonshim-bench-<pid>-N at the cgroup2 root, and the same name in the v1
 * hierarchies of a hybrid host) and is removed on exit with whatever runs in
 * it killed first — also on failure and on SIGINT/SIGTERM/SIGHUP/SIGPIPE.
 */
#define _GNU_SOURCE
#include "cgroup.h"
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS  ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* ─── Clock, random numbers, statistics ──────────────────────────────── */

/* CLOCK_MONOTONIC, the clock of rt_now() and of cg_event.at. */
static int64_t mono_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* Sleep until an absolute mono_ns() time. Outside the runtime only: in a
 * goroutine this would block its M (use rt_sleep_until there). */
static void sleep_until(int64_t t) {
	struct timespec ts = {.tv_sec = t / SEC, .tv_nsec = t % SEC};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
	}
}

static uint64_t rng_state;

static uint64_t splitmix(void) {
	uint64_t x = (rng_state += 0x9E3779B97F4A7C15ULL);
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/* Uniform in [0, n). */
static int64_t random_ns(int64_t n) {
	return (int64_t)(splitmix() % (uint64_t)n);
}

static int cmp_i64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts v. The median (mean of the middle two for an even count). */
static double median(int64_t *v, int n) {
	qsort(v, (size_t)n, sizeof *v, cmp_i64);
	return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

/* How many of the n values exceed limit. */
static int count_over(const int64_t *v, int n, int64_t limit) {
	int k = 0;
	for (int i = 0; i < n; i++)
		k += v[i] > limit;
	return k;
}

/* Nearest-rank percentile of sorted v (call median first). */
static int64_t percentile(const int64_t *v, int n, int p) {
	int k = (n * p + 99) / 100;
	return v[k < 1 ? 0 : k - 1];
}

/* ─── Private cgroups and their cleanup ──────────────────────────────── */

#define MAX_CGROUPS 20
#define MAX_HELPERS 4

/* What cleanup needs, as plain paths built before the cgroup is made: the
 * cleanup also runs in a signal handler, where only syscalls are safe. */
typedef struct {
	char kill_file[PATH_MAX + 96]; /* <unified dir>/cgroup.kill */
	char dirs[4][PATH_MAX + 64];   /* unified, then v1 memory, cpu, pids ("" if none) */
	bool live;
} made_cgroup;

static cg_host host;
static pid_t bench_pid;
static made_cgroup made[MAX_CGROUPS];
static int nmade;
/* Processes outside our cgroups (moonshim watch, a polling loop), killed
 * by the cleanup if still running. */
static volatile pid_t helpers[MAX_HELPERS];

/* Create cgroup number n (0 ≤ n < MAX_CGROUPS); NULL after printing why. */
static cg *new_cgroup(int n) {
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-bench-%d-%d", (int)bench_pid, n);
	const char *roots[4] = {host.unified, NULL, NULL, NULL};
	if (host.layout == CG_LAYOUT_HYBRID) {
		roots[1] = host.v1_memory;
		roots[2] = host.v1_cpu;
		roots[3] = host.v1_pids;
	}
	made_cgroup *m = &made[n];
	for (int i = 0; i < 4; i++) {
		m->dirs[i][0] = 0;
		if (roots[i] && roots[i][0])
			snprintf(m->dirs[i], sizeof m->dirs[i], "%s/%s", roots[i], rel);
	}
	snprintf(m->kill_file, sizeof m->kill_file, "%s/%s/cgroup.kill", host.unified, rel);
	m->live = true; /* before mkdir: a half-made cgroup is cleaned up too */
	if (n >= nmade)
		nmade = n + 1;
	cg_err e = {0};
	cg *c = cg_open(&host, rel, true, &e);
	if (!c)
		fprintf(stderr, "cgroupbench: %s\n", e.msg);
	return c;
}

/* End the helpers, kill everything in our cgroups (cgroup.kill) and remove
 * them. Only syscalls (it runs in the signal handler too); idempotent.
 * Returns how many directories could not be removed. */
static int cleanup_all(void) {
	if (getpid() != bench_pid)
		return 0; /* a forked child that got here: the parent cleans up */
	for (int i = 0; i < MAX_HELPERS; i++)
		if (helpers[i] > 0) {
			kill(helpers[i], SIGKILL);
			waitpid(helpers[i], NULL, 0);
			helpers[i] = 0;
		}
	for (int i = 0; i < nmade; i++) {
		int fd = made[i].live ? open(made[i].kill_file, O_WRONLY | O_CLOEXEC) : -1;
		if (fd >= 0) {
			(void)!write(fd, "1", 1);
			close(fd);
		}
	}
	/* killed processes leave their cgroup within milliseconds; until then
	 * rmdir says EBUSY: retry for up to 3 s */
	int left = 0;
	for (int tries = 0; tries < 300; tries++) {
		while (waitpid(-1, NULL, WNOHANG) > 0) {
		}
		left = 0;
		for (int i = 0; i < nmade; i++) {
			if (!made[i].live)
				continue;
			int busy = 0;
			for (int d = 0; d < 4; d++) {
				char *dir = made[i].dirs[d];
				if (dir[0] && (rmdir(dir) == 0 || errno == ENOENT))
					dir[0] = 0;
				busy += dir[0] != 0;
			}
			made[i].live = busy > 0;
			left += busy;
		}
		if (!left)
			break;
		struct timespec ts = {0, 10 * MS};
		nanosleep(&ts, NULL);
	}
	return left;
}

static void cleanup_at_exit(void) {
	if (cleanup_all())
		for (int i = 0; i < nmade; i++)
			for (int d = 0; d < 4; d++)
				if (made[i].dirs[d][0])
					fprintf(stderr, "cgroupbench: could not remove %s\n",
					        made[i].dirs[d]);
}

static void on_signal(int sig) {
	cleanup_all();
	_exit(128 + sig);
}

/* Reap a child that has exited or was killed: short, but a blocking call
 * all the same, so a goroutine says so to the runtime. */
static void reap(pid_t pid) {
	bool in_goroutine = rt_self() != 0;
	if (in_goroutine)
		rt_syscall_enter();
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
	}
	if (in_goroutine)
		rt_syscall_exit();
}

/* ─── cgroup_event_latency ──────────────────────────────────────────────
 * A child in a fresh cgroup writes its CLOCK_MONOTONIC time into a pipe
 * just before it _exits; the exit empties the cgroup (populated 1→0 in
 * cgroup.events). From that stamp:
 *   moonshim  until the subscriber goroutine has received the
 *             CG_EV_POPULATED event from the channel given to cg_watch_start
 *   poll_1s   a loop that preads cgroup.events every second, as oomd does,
 *             until the read that shows populated 0. Children exit at a
 *             random phase of its second; it looks at several cgroups at
 *             once (one child each) so that its samples take ~12 s.
 *   floor     for scale, outside the runtime: a plain thread blocked in
 *             poll(POLLPRI) on the file, until its pread shows 0 — what the
 *             kernel alone costs (the exit, kernfs's notification work item,
 *             the wake-ups).
 * The child execs this program (`cgroupbench exit-child`) rather than
 * staying a fork: a fork of the runtime process has a large address space,
 * and tearing that down (before the cgroup empties) took ~300 µs by itself.
 *
 * The kernel sends at most one notification per file every 10 ms
 * (CGROUP_FILE_NOTIFY_MIN_INTV, rounded up to jiffies: 12 ms at HZ=250)
 * and holds back a closer one until then. Children live 20 ms and rounds
 * are 15 ms apart, so the 1→0 notification is never held back: we measure
 * the watcher, not the kernel's rate limit. */

#define EV_ROUNDS        200
#define EV_FLOOR_ROUNDS  100
#define EV_CHILD_LIFE_NS (20 * MS)
#define EV_GAP_NS        (15 * MS)
#define EV_POLL_SAMPLES  24
#define EV_POLL_SLOTS    4
#define EV_POLL_MARGIN   (10 * MS) /* a child outlives the tick after its birth by this */

static int64_t ev_lat[EV_ROUNDS], ev_seen[EV_ROUNDS], ev_floor[EV_FLOOR_ROUNDS];
static int64_t ev_poll[EV_POLL_SAMPLES];

typedef struct {
	pid_t pid;
	int stamp_fd; /* the pipe's read end: the child's exit stamp */
} exit_child;

/* `cgroupbench exit-child EXIT_AT FD`: a benchmark child's whole life. */
static int exit_child_main(char **argv) {
	int64_t exit_at = strtoll(argv[2], NULL, 10), now;
	sleep_until(exit_at);
	now = mono_ns();
	(void)!write(atoi(argv[3]), &now, sizeof now);
	_exit(0);
}

/* Start a child in c that sleeps until exit_at, stamps and exits. */
static int spawn_exit_child(cg *c, int64_t exit_at, exit_child *ch) {
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
		perror("cgroupbench: pipe");
		return 1;
	}
	char at[24], fd[16];
	snprintf(at, sizeof at, "%lld", (long long)exit_at);
	snprintf(fd, sizeof fd, "%d", p[1]);
	char *const argv[] = {"cgroupbench", "exit-child", at, fd, NULL};
	cg_err e = {0};
	pid_t pid = cg_fork_into(c, NULL, &e);
	if (pid == 0) { /* only syscalls: a fork of a threaded process */
		fcntl(p[1], F_SETFD, 0);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		fprintf(stderr, "cgroupbench: %s\n", e.msg);
		return 1;
	}
	*ch = (exit_child){pid, p[0]};
	return 0;
}

/* Reap the child (it has left its cgroup) and return its stamp, or -1. */
static int64_t finish_exit_child(exit_child *ch) {
	int64_t stamp = -1;
	if (read(ch->stamp_fd, &stamp, sizeof stamp) != (ssize_t)sizeof stamp)
		stamp = -1;
	close(ch->stamp_fd);
	reap(ch->pid);
	ch->pid = 0;
	if (stamp < 0)
		fprintf(stderr, "cgroupbench: a child exited without its stamp\n");
	return stamp;
}

/* populated from cgroup.events read through fd, or -1. */
static int64_t read_populated(int fd) {
	char buf[256];
	ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
	int64_t populated = -1;
	if (r > 0) {
		buf[r] = 0;
		cg_parse_kv(buf, "populated", &populated, NULL);
	}
	return populated;
}

/* The kernel's floor: poll(2) on our own fd in this plain thread. */
static int event_latency_floor(cg *c) {
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/cgroup.events", cg_path(c));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cgroupbench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc = 0;
	for (int i = 0; i < EV_FLOOR_ROUNDS && !rc; i++) {
		sleep_until(mono_ns() + EV_GAP_NS);
		exit_child ch;
		if ((rc = spawn_exit_child(c, mono_ns() + EV_CHILD_LIFE_NS, &ch)))
			break;
		int64_t populated, seen = 0;
		while ((populated = read_populated(fd)) != 0 && !rc) {
			struct pollfd p = {.fd = fd, .events = POLLPRI};
			if (populated < 0 || poll(&p, 1, 5000) != 1) {
				fprintf(stderr, "cgroupbench: %s: no change within 5 s\n", path);
				rc = 1;
			}
		}
		seen = mono_ns();
		int64_t stamp = finish_exit_child(&ch);
		rc = rc || stamp < 0;
		ev_floor[i] = seen - stamp;
	}
	close(fd);
	return rc;
}

static int event_latency_moonshim(void *arg) {
	cg *c = arg;
	cg_err e = {0};
	rt_chan *out = rt_chan_new(sizeof(cg_event), 64);
	cg_watch *w = cg_watch_start(c, NULL, out, &e);
	if (!w) {
		fprintf(stderr, "cgroupbench: cg_watch_start: %s\n", e.msg);
		return 1;
	}
	int rc = 0;
	for (int i = 0; i < EV_ROUNDS && !rc; i++) {
		rt_sleep(EV_GAP_NS);
		exit_child ch;
		if ((rc = spawn_exit_child(c, rt_now() + EV_CHILD_LIFE_NS, &ch)))
			break;
		/* populated 1 comes first; wait for the 0 */
		int64_t received = 0, seen = 0;
		while (!received && !rc) {
			cg_event ev;
			rt_case rcv = {.c = out, .dir = RT_RECV, .elem = &ev};
			if (rt_select(&rcv, 1, rt_deadline_in(5 * SEC)) != 0) {
				fprintf(stderr,
				        "cgroupbench: no populated 0 event 5 s into round %d\n", i);
				rc = 1;
			} else if (ev.kind == CG_EV_POPULATED && ev.value == 0) {
				received = rt_now();
				seen = ev.at;
			} else if (ev.kind == CG_EV_ERROR || ev.kind == CG_EV_GONE) {
				fprintf(stderr, "cgroupbench: watcher: %s\n", ev.msg);
				rc = 1;
			}
		}
		int64_t stamp = finish_exit_child(&ch);
		rc = rc || stamp < 0;
		ev_lat[i] = received - stamp;
		ev_seen[i] = seen - stamp;
	}
	cg_watch_stop(w);
	rt_chan_free(out);
	return rc;
}

/* The oomd-style loop, outside the runtime: every second on a fixed
 * schedule, pread each cgroup.events. A child is born right after a tick
 * and exits at a uniformly random point of the second after the next
 * tick, which therefore sees it populated. */
static int event_latency_poll(int *n_out, int *missed) {
	struct {
		cg *c;
		int fd; /* cgroup.events */
		exit_child ch;
		bool seen; /* the poller has seen this child's cgroup populated */
	} slot[EV_POLL_SLOTS] = {0};
	cg_err e = {0};
	int rc = 0, n = 0;
	int64_t tick = mono_ns() + 20 * MS;
	for (int i = 0; i < EV_POLL_SLOTS && !rc; i++) {
		if (!(slot[i].c = new_cgroup(1 + i)) ||
		    (slot[i].fd = cg_fd(slot[i].c, "cgroup.events", &e)) < 0) {
			if (slot[i].c)
				fprintf(stderr, "cgroupbench: %s\n", e.msg);
			rc = 1;
			break;
		}
		rc = spawn_exit_child(slot[i].c, tick + EV_POLL_MARGIN + random_ns(SEC),
		                      &slot[i].ch);
	}
	for (; !rc && n < EV_POLL_SAMPLES; tick += SEC) {
		sleep_until(tick);
		for (int i = 0; i < EV_POLL_SLOTS && !rc; i++) {
			int64_t populated = read_populated(slot[i].fd), now = mono_ns();
			if (populated < 0) {
				fprintf(stderr, "cgroupbench: cannot read %s/cgroup.events\n",
				        cg_path(slot[i].c));
				rc = 1;
			} else if (populated == 1) {
				slot[i].seen = true;
			} else {
				/* the child is gone: a sample, unless it came and went
				 * between two reads (a real poller misses those) */
				int64_t stamp = finish_exit_child(&slot[i].ch);
				if (stamp < 0)
					rc = 1;
				else if (slot[i].seen && n < EV_POLL_SAMPLES)
					ev_poll[n++] = now - stamp;
				else if (!slot[i].seen)
					(*missed)++;
				slot[i].seen = false;
				rc = rc ||
				     spawn_exit_child(slot[i].c,
				                      tick + SEC + EV_POLL_MARGIN + random_ns(SEC),
				                      &slot[i].ch);
			}
		}
	}
	for (int i = 0; i < EV_POLL_SLOTS; i++) {
		if (slot[i].ch.pid > 0) {
			cg_kill(slot[i].c, SIGKILL, NULL);
			close(slot[i].ch.stamp_fd);
			reap(slot[i].ch.pid);
		}
		cg_close(slot[i].c);
	}
	*n_out = n;
	return rc;
}

static int cgroup_event_latency(int argc, char **argv) {
	cg *c = new_cgroup(0);
	if (!c || event_latency_floor(c))
		return 1;
	rt_config cfg = {.procs = 2};
	if (rt_main(&cfg, event_latency_moonshim, c))
		return 1;
	cg_close(c);
	int npoll = 0, missed = 0;
	if (event_latency_poll(&npoll, &missed) || npoll == 0)
		return 1;
	double m = median(ev_lat, EV_ROUNDS), seen = median(ev_seen, EV_ROUNDS);
	double floor = median(ev_floor, EV_FLOOR_ROUNDS), p = median(ev_poll, npoll);
	printf("INFO cgroup_event_latency: moonshim, %d exits: received median %.1f us, p99 "
	       "%.1f us, max %.1f us, %d over 1 ms; its watcher read the change at median %.1f "
	       "us, p99 %.1f us\n",
	       EV_ROUNDS, m / 1e3, (double)percentile(ev_lat, EV_ROUNDS, 99) / 1e3,
	       (double)ev_lat[EV_ROUNDS - 1] / 1e3, count_over(ev_lat, EV_ROUNDS, MS), seen / 1e3,
	       (double)percentile(ev_seen, EV_ROUNDS, 99) / 1e3);
	printf("INFO cgroup_event_latency: floor (plain poll(2) thread, no runtime), %d exits: "
	       "median %.1f us, p99 %.1f us, %d over 1 ms\n",
	       EV_FLOOR_ROUNDS, floor / 1e3,
	       (double)percentile(ev_floor, EV_FLOOR_ROUNDS, 99) / 1e3,
	       count_over(ev_floor, EV_FLOOR_ROUNDS, MS));
	printf("INFO cgroup_event_latency: poll_1s, %d exits over %d cgroups at random phase: "
	       "median %.0f us, p99 %.0f us, min %.0f us (%d exits never seen populated)\n",
	       npoll, EV_POLL_SLOTS, p / 1e3, (double)percentile(ev_poll, npoll, 99) / 1e3,
	       (double)ev_poll[0] / 1e3, missed);
	printf("RESULT cgroup_event_latency moonshim_us=%.1f moonshim_p99_us=%.1f poll_us=%.0f "
	       "poll_p99_us=%.0f\n",
	       m / 1e3, (double)percentile(ev_lat, EV_ROUNDS, 99) / 1e3, p / 1e3,
	       (double)percentile(ev_poll, npoll, 99) / 1e3);
	return 0;
}

/* ─── psi_onset ─────────────────────────────────────────────────────────
 * Four busy loops start in a fresh cgroup on this 2-CPU machine, so some
 * of them always wait: the cgroup's cpu "some" stall grows ~1 ms per ms.
 * Timed from just before the first fork to the moment each detector
 * reports:
 *   moonshim    cg_watch with cpu:some:20ms:1s. Where the kernel refuses a
 *               1 s window (unprivileged: 2 s multiples only) this is the
 *               polling fallback (50 ms calm, 10 ms active).
 *   poll_1s     a thread that reads cpu.pressure every second, as oomd
 *               does, and fires when `total` grew ≥ 20 ms between reads.
 *   trigger_2s  cg_watch with cpu:some:20ms:2s: the kernel's own trigger.
 * moonshim and poll_1s watch the same runs. trigger_2s gets runs of its
 * own: the kernel checks an unprivileged trigger only in its 2 s averaging
 * work, and only if no read of the pressure file (which updates the
 * averages too) got there first. So readers postpone it — a 1 s reader:
 * 2.5–6.5 s onsets, or none; 10 ms reads, as the fallback does while
 * stalling: none within 8 s; the watcher's own samples every half window:
 * 2.0–3.0 s by phase here, where cg_fork_into also puts the busy loops in
 * a v1 cpu cgroup of their own (in a unified-only cgroup they crowd out
 * the kernel's worker: 2.7–8 s, or none).
 * Every run has a fresh cgroup, watch and poller thread, and waits a
 * random 1–2 s (trigger runs: 0.3–2.3 s) before the busy loops start, so
 * the phases of the 1 s poller and of the watcher's own sampling vary,
 * and every detector starts calm.
 *
 * A fresh cgroup per run is needed, not just tidy: on this kernel, once
 * cgroup.kill was written, every clone3(CLONE_INTO_CGROUP) child of that
 * cgroup is SIGKILLed at birth (a plain fork + cgroup.procs is not), so
 * cg_fork_into after cg_kill(SIGKILL) of the same cgroup gives dead
 * children. */

#define PSI_RUNS      8 /* of each kind */
#define PSI_BUSY      4
#define PSI_DEADLINE  (8 * SEC)
#define PSI_FALLBACK  "cpu:some:20ms:1s"
#define PSI_TRIGGER   "cpu:some:20ms:2s"
#define PSI_THRESHOLD 20000 /* µs, both rules' threshold */

typedef struct {
	int fd;                   /* the run's cpu.pressure, our own fd */
	int stop_fd;              /* eventfd: readable = end the thread */
	_Atomic int64_t fired_at; /* 0: not yet */
} psi_poller;

/* The "some" total of a pressure file, or -1. */
static int64_t some_total(int fd) {
	char buf[256];
	ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
	if (r <= 0)
		return -1;
	buf[r] = 0;
	cg_pressure p;
	cg_err e;
	return cg_parse_pressure(buf, &p, &e) || !p.some.present ? -1 : (int64_t)p.some.total;
}

/* A plain thread, no rt_ calls: the 1 s loop is another program's view,
 * independent of moonshim's scheduler. The cgroup is empty until the run
 * starts, so any growth it sees belongs to the run. */
static void *psi_poll_thread(void *arg) {
	psi_poller *p = arg;
	int64_t prev = -1;
	for (int64_t tick = mono_ns();; tick += SEC) {
		int64_t total = some_total(p->fd), now = mono_ns();
		if (total >= 0) {
			if (prev >= 0 && total - prev >= PSI_THRESHOLD &&
			    !atomic_load(&p->fired_at))
				atomic_store(&p->fired_at, now);
			prev = total;
		}
		struct pollfd stop = {.fd = p->stop_fd, .events = POLLIN};
		for (int64_t left; (left = tick + SEC - mono_ns()) > 0;) {
			struct timespec ts = {.tv_sec = left / SEC, .tv_nsec = left % SEC};
			if (ppoll(&stop, 1, &ts, NULL) > 0)
				return NULL;
		}
	}
}

/* "123" (ms), or "none" for 0: that detector did not fire in time. */
static const char *fmt_ms(char buf[16], int64_t ns) {
	if (ns <= 0)
		return "none";
	snprintf(buf, 16, "%.0f", (double)ns / 1e6);
	return buf;
}

typedef struct {
	int64_t moonshim[PSI_RUNS], poll[PSI_RUNS], trigger[PSI_RUNS]; /* ns after start */
	int nm, np, nt;
	cg_psi_mode mode[2]; /* how each rule was detected */
	char notice[256];
	char runs[3][PSI_RUNS * 8]; /* each run's onsets, in ms: moonshim, poll_1s, trigger_2s */
} psi_results;

/* One run of cgroup number `n` watched by `rule` and, if poller, the 1 s
 * polling thread. Onsets stay 0 where a detector did not fire in time. */
static int psi_run(int n, const char *rule, bool poller_too, psi_results *res, cg_psi_mode *mode,
                   int64_t *watch_onset, int64_t *poll_onset) {
	cg_err e = {0};
	cg_psi_spec spec;
	if (cg_psi_parse(rule, &spec, &e)) {
		fprintf(stderr, "cgroupbench: %s\n", e.msg);
		return 1;
	}
	cg *c = new_cgroup(n);
	if (!c)
		return 1;
	psi_poller poller = {.fd = -1, .stop_fd = -1};
	pthread_t thread;
	if (poller_too) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof path, "%s/cpu.pressure", cg_path(c));
		poller.fd = open(path, O_RDONLY | O_CLOEXEC);
		poller.stop_fd = eventfd(0, EFD_CLOEXEC);
		if (poller.fd < 0 || poller.stop_fd < 0 ||
		    pthread_create(&thread, NULL, psi_poll_thread, &poller)) {
			fprintf(stderr, "cgroupbench: poller for %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	rt_chan *out = rt_chan_new(sizeof(cg_event), 64);
	cg_watch_opts o = {.psi = &spec, .npsi = 1};
	cg_watch *w = cg_watch_start(c, &o, out, &e);
	int rc = 0;
	if (!w) {
		fprintf(stderr, "cgroupbench: cg_watch_start: %s\n", e.msg);
		rc = 1;
	}
	cg_event ev;
	rt_case rcv = {.c = out, .dir = RT_RECV, .elem = &ev};
	/* calm while the watch starts (a NOTICE if the window is refused), for
	 * a random time: at least a second with the poller (it needs one calm
	 * read), over a whole 2 s trigger window without */
	int64_t calm = poller_too ? SEC + random_ns(SEC) : 300 * MS + random_ns(2 * SEC);
	int64_t deadline = rt_deadline_in(calm);
	while (!rc && rt_select(&rcv, 1, deadline) == 0) {
		if (ev.kind == CG_EV_NOTICE)
			snprintf(res->notice, sizeof res->notice, "%s", ev.msg);
		if (ev.kind == CG_EV_ERROR || ev.kind == CG_EV_PRESSURE) {
			fprintf(stderr, "cgroupbench: unexpected %s event while calm: %s\n",
			        cg_event_name(ev.kind), ev.msg);
			rc = 1;
		}
	}
	pid_t kids[PSI_BUSY] = {0};
	int64_t start = rt_now();
	for (int i = 0; i < PSI_BUSY && !rc; i++) {
		kids[i] = cg_fork_into(c, NULL, &e);
		if (kids[i] == 0)
			for (;;) /* busy, and only that: a fork of a threaded process */
				__asm__ volatile("" ::: "memory");
		if (kids[i] < 0) {
			fprintf(stderr, "cgroupbench: %s\n", e.msg);
			kids[i] = 0;
			rc = 1;
		}
	}
	deadline = start + PSI_DEADLINE;
	while (!rc && (!*watch_onset || (poller_too && !atomic_load(&poller.fired_at)))) {
		int64_t now = rt_now();
		if (now >= deadline)
			break;
		/* wake every 10 ms to look at the poller thread's result too */
		if (rt_select(&rcv, 1, now + 10 * MS < deadline ? now + 10 * MS : deadline) != 0)
			continue;
		int64_t received = rt_now();
		if (ev.kind == CG_EV_ERROR) {
			fprintf(stderr, "cgroupbench: watcher: %s\n", ev.msg);
			rc = 1;
		} else if (ev.kind == CG_EV_PRESSURE && !*watch_onset) {
			*watch_onset = received - start;
			*mode = ev.psi.mode;
		}
	}
	cg_kill(c, SIGKILL, NULL);
	for (int i = 0; i < PSI_BUSY; i++)
		if (kids[i] > 0)
			reap(kids[i]);
	cg_watch_stop(w);
	rt_chan_free(out);
	if (poller_too) {
		int64_t fired = atomic_load(&poller.fired_at);
		*poll_onset = fired ? fired - start : 0;
		(void)!write(poller.stop_fd, &(uint64_t){1}, sizeof(uint64_t));
		pthread_join(thread, NULL);
		close(poller.fd);
		close(poller.stop_fd);
	}
	cg_close(c);
	return rc;
}

/* " 38 36 41" (ms, "none" where a detector did not fire) */
static void append_ms(char *list, size_t n, int64_t ns) {
	char one[16];
	size_t len = strlen(list);
	snprintf(list + len, n - len, " %s", fmt_ms(one, ns));
}

static int psi_onset_main(void *arg) {
	psi_results *res = arg;
	for (int run = 0; run < PSI_RUNS; run++) {
		int64_t moonshim = 0, polled = 0;
		if (psi_run(run, PSI_FALLBACK, true, res, &res->mode[0], &moonshim, &polled))
			return 1;
		if (moonshim)
			res->moonshim[res->nm++] = moonshim;
		if (polled)
			res->poll[res->np++] = polled;
		append_ms(res->runs[0], sizeof res->runs[0], moonshim);
		append_ms(res->runs[1], sizeof res->runs[1], polled);
	}
	for (int run = 0; run < PSI_RUNS; run++) {
		int64_t trigger = 0;
		if (psi_run(PSI_RUNS + run, PSI_TRIGGER, false, res, &res->mode[1], &trigger, NULL))
			return 1;
		if (trigger)
			res->trigger[res->nt++] = trigger;
		append_ms(res->runs[2], sizeof res->runs[2], trigger);
	}
	return 0;
}

static int psi_onset(int argc, char **argv) {
	static psi_results res;
	rt_config cfg = {.procs = 2};
	if (rt_main(&cfg, psi_onset_main, &res))
		return 1;
	if (res.notice[0])
		printf("INFO psi_onset: %s\n", res.notice);
	if (!res.nm) {
		fprintf(stderr, "cgroupbench: %s never fired\n", PSI_FALLBACK);
		return 1;
	}
	char t[16], p[16];
	double m = median(res.moonshim, res.nm);
	int64_t tm = res.nt ? (int64_t)median(res.trigger, res.nt) : 0;
	int64_t pm = res.np ? (int64_t)median(res.poll, res.np) : 0;
	printf("INFO psi_onset: onsets in ms, moonshim:%s; poll_1s:%s; trigger_2s:%s\n",
	       res.runs[0], res.runs[1], res.runs[2]);
	printf("INFO psi_onset: %d+%d runs of %d busy loops on %ld CPUs; fired in %d/%d/%d runs "
	       "(moonshim/poll_1s/trigger_2s); moonshim max %.1f ms; trigger_2s detected as %s\n",
	       PSI_RUNS, PSI_RUNS, PSI_BUSY, sysconf(_SC_NPROCESSORS_ONLN), res.nm, res.np, res.nt,
	       (double)res.moonshim[res.nm - 1] / 1e6,
	       res.mode[1] == CG_PSI_TRIGGER ? "a kernel trigger" : "polling");
	printf("RESULT psi_onset moonshim_ms=%.1f moonshim_mode=%s trigger_2s_ms=%s poll_ms=%s\n",
	       m / 1e6, res.mode[0] == CG_PSI_TRIGGER ? "trigger" : "poll", fmt_ms(t, tm),
	       fmt_ms(p, pm));
	return 0;
}

/* ─── watch_idle_cpu ────────────────────────────────────────────────────
 * `moonshim watch` on calm, empty cgroups with the command line:
 * two 1 s PSI rules (where 1 s windows are refused, each is polled every
 * 50 ms), a sample line per cgroup every second, for S seconds. Processes
 * running side by side over the same S seconds:
 *   one      moonshim watch on 1 cgroup
 *   multi    moonshim watch on 10 cgroups at once: the per-cgroup cost,
 *            with the process's fixed cost (runtime threads, start-up)
 *            shared — the number the target is about
 *   poll_1s  a 1 s loop over the same 10 cgroups reading and parsing what
 *            oomd reads: cpu.pressure, memory.pressure, cgroup.events
 *   trigger  for comparison, moonshim watch on the same 10 cgroups with
 *            2 s rules, which the kernel accepts as triggers: no polling
 * Each one's user+sys CPU time (wait4) over its wall time, per cgroup.
 * Start-up and exit are included: that is what the process costs. */

#define IDLE_MULTI 10
#define IDLE_PROCS 4

static const char *const fallback_rules[] = {"cpu:some:20ms:1s", "memory:some:100ms:1s"};
static const char *const trigger_rules[] = {"cpu:some:40ms:2s", "memory:some:200ms:2s"};

typedef struct {
	const char *name;
	int first, ncg;           /* cgroups first..first+ncg-1 */
	const char *const *rules; /* moonshim's two --psi rules; NULL: the poller */
	pid_t pid;
	int out_fd; /* moonshim's JSON lines (a deleted temporary file) */
	int64_t started;
	double cpu_s, wall_s;
	int status;
} idle_proc;

static int fork_helper(idle_proc *p, int slot) {
	p->started = mono_ns();
	p->pid = fork();
	if (p->pid < 0) {
		perror("cgroupbench: fork");
		return 1;
	}
	if (p->pid > 0)
		helpers[slot] = p->pid;
	return 0;
}

static int spawn_watch(idle_proc *p, int slot, const char *moonshim, int secs) {
	char dur[32], tmpl[] = "/tmp/moonshim-bench-XXXXXX";
	snprintf(dur, sizeof dur, "%ds", secs);
	const char *argv[2 + 2 * IDLE_MULTI + 4 + 4 + 1];
	int k = 0;
	argv[k++] = moonshim;
	argv[k++] = "watch";
	for (int i = p->first; i < p->first + p->ncg; i++) {
		argv[k++] = "--cgroup";
		argv[k++] = made[i].dirs[0];
	}
	for (int i = 0; i < 2; i++) {
		argv[k++] = "--psi";
		argv[k++] = p->rules[i];
	}
	argv[k++] = "--interval";
	argv[k++] = "1s";
	argv[k++] = "--duration";
	argv[k++] = dur;
	argv[k] = NULL;
	if ((p->out_fd = mkstemp(tmpl)) < 0) {
		perror("cgroupbench: mkstemp");
		return 1;
	}
	unlink(tmpl);
	if (fork_helper(p, slot))
		return 1;
	if (p->pid == 0) {
		dup2(p->out_fd, 1);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the benchmark */
		if (getppid() == bench_pid)
			execv(moonshim, (char *const *)argv);
		_exit(127);
	}
	return 0;
}

/* The 1 s polling loop (a forked child, no exec): oomd's reads. */
static _Noreturn void idle_poll_loop(const idle_proc *p, int64_t end) {
	static const char *const files[3] = {"cpu.pressure", "memory.pressure", "cgroup.events"};
	int fds[IDLE_MULTI][3];
	for (int i = 0; i < p->ncg; i++)
		for (int f = 0; f < 3; f++) {
			char path[PATH_MAX + 96];
			snprintf(path, sizeof path, "%s/%s", made[p->first + i].dirs[0], files[f]);
			if ((fds[i][f] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				_exit(1);
		}
	for (int64_t tick = mono_ns(); tick < end; tick += SEC) {
		for (int i = 0; i < p->ncg; i++)
			for (int f = 0; f < 3; f++) {
				char buf[256];
				ssize_t r = pread(fds[i][f], buf, sizeof buf - 1, 0);
				if (r <= 0)
					_exit(1);
				buf[r] = 0;
				cg_pressure pr;
				int64_t populated;
				cg_err e;
				if (f < 2 ? cg_parse_pressure(buf, &pr, &e)
				          : cg_parse_kv(buf, "populated", &populated, &e))
					_exit(1);
			}
		sleep_until(tick + SEC);
	}
	_exit(0);
}

/* moonshim's output: did every cgroup start, without an error event?
 * Also how many samples it printed and how many rules fell back to polling. */
static bool check_watch_output(idle_proc *p, int *samples, int *polling) {
	int starts = 0, errors = 0;
	*samples = *polling = 0;
	lseek(p->out_fd, 0, SEEK_SET);
	FILE *f = fdopen(p->out_fd, "r");
	char *line = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0) {
		starts += strstr(line, "\"event\":\"start\"") != NULL;
		*samples += strstr(line, "\"event\":\"sample\"") != NULL;
		*polling += strstr(line, "\"event\":\"notice\"") && strstr(line, "polling");
		if (strstr(line, "\"event\":\"error\"") && errors++ == 0)
			fprintf(stderr, "cgroupbench: moonshim watch (%s): %s", p->name, line);
	}
	free(line);
	if (f)
		fclose(f);
	if (starts != p->ncg)
		fprintf(stderr, "cgroupbench: moonshim watch (%s) started %d of %d cgroups\n",
		        p->name, starts, p->ncg);
	return starts == p->ncg && errors == 0;
}

static int watch_idle_cpu(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: cgroupbench watch_idle_cpu MOONSHIM [SECONDS]\n");
		return 2;
	}
	const char *env = getenv("BENCH_IDLE_SECS");
	int secs = argc > 3 ? atoi(argv[3]) : env ? atoi(env) : 60;
	if (secs < 2) {
		fprintf(stderr, "cgroupbench: watch_idle_cpu needs at least 2 s\n");
		return 2;
	}
	if (access(argv[2], X_OK) != 0) {
		fprintf(stderr, "cgroupbench: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (int i = 0; i < 1 + IDLE_MULTI; i++) {
		cg *c = new_cgroup(i);
		if (!c)
			return 1;
		cg_close(c); /* moonshim and the poller open the directories themselves */
	}
	idle_proc procs[IDLE_PROCS] = {
	    {.name = "moonshim, 1 cgroup", .first = 0, .ncg = 1, .rules = fallback_rules},
	    {.name = "moonshim, 10 cgroups",
	     .first = 1,
	     .ncg = IDLE_MULTI,
	     .rules = fallback_rules},
	    {.name = "poll_1s, 10 cgroups", .first = 1, .ncg = IDLE_MULTI, .out_fd = -1},
	    {.name = "moonshim, 10 cgroups, 2 s rules (kernel triggers)",
	     .first = 1,
	     .ncg = IDLE_MULTI,
	     .rules = trigger_rules},
	};
	int64_t end = mono_ns() + secs * SEC;
	for (int i = 0; i < IDLE_PROCS; i++) {
		if (procs[i].rules ? spawn_watch(&procs[i], i, argv[2], secs)
		                   : fork_helper(&procs[i], i))
			return 1;
		if (procs[i].pid == 0)
			idle_poll_loop(&procs[i], end);
	}
	for (int left = IDLE_PROCS; left > 0;) {
		int status;
		struct rusage ru;
		pid_t pid = wait4(-1, &status, 0, &ru);
		if (pid < 0) {
			perror("cgroupbench: wait4");
			return 1;
		}
		for (int i = 0; i < IDLE_PROCS; i++)
			if (procs[i].pid == pid) {
				procs[i].wall_s = (double)(mono_ns() - procs[i].started) / 1e9;
				procs[i].cpu_s =
				    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
				procs[i].status = status;
				helpers[i] = 0;
				left--;
			}
	}
	int rc = 0, samples[IDLE_PROCS] = {0}, polling[IDLE_PROCS] = {0};
	for (int i = 0; i < IDLE_PROCS; i++) {
		if (!WIFEXITED(procs[i].status) || WEXITSTATUS(procs[i].status)) {
			fprintf(stderr, "cgroupbench: %s: exit status 0x%x\n", procs[i].name,
			        procs[i].status);
			rc = 1;
		}
		if (procs[i].rules && !check_watch_output(&procs[i], &samples[i], &polling[i]))
			rc = 1;
	}
	if (rc)
		return rc;
	double pct[IDLE_PROCS];
	for (int i = 0; i < IDLE_PROCS; i++) {
		pct[i] = procs[i].cpu_s / procs[i].wall_s * 100 / procs[i].ncg;
		printf("INFO watch_idle_cpu: %s: %.1f ms CPU over %.1f s = %.4f%% of a core, "
		       "%.4f%% per cgroup",
		       procs[i].name, procs[i].cpu_s * 1e3, procs[i].wall_s, pct[i] * procs[i].ncg,
		       pct[i]);
		if (procs[i].rules)
			printf("; %d sample lines, %d of %d PSI rules polled", samples[i],
			       polling[i], 2 * procs[i].ncg);
		printf("\n");
	}
	printf("RESULT watch_idle_cpu moonshim_pct=%.4f one_pct=%.4f poll_pct=%.4f psi=%s\n",
	       pct[1], pct[0], pct[2], polling[1] ? "poll" : "trigger");
	return 0;
}

/* ─── driver ─────────────────────────────────────────────────────────── */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} cases[] = {
    {"cgroup_event_latency", cgroup_event_latency},
    {"psi_onset", psi_onset},
    {"watch_idle_cpu", watch_idle_cpu},
};

int main(int argc, char **argv) {
	if (argc == 4 && !strcmp(argv[1], "exit-child"))
		return exit_child_main(argv);
	if (argc < 2) {
		fprintf(stderr, "usage: cgroupbench cgroup_event_latency|psi_onset|"
		                "watch_idle_cpu MOONSHIM [SECONDS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* INFO lines as they come */
	bench_pid = getpid();
	rng_state = (uint64_t)mono_ns() ^ ((uint64_t)bench_pid << 32);
	cg_err e = {0};
	if (cg_host_detect(&host, "/proc/self/mounts", &e)) {
		fprintf(stderr, "cgroupbench: %s\n", e.msg);
		return 1;
	}
	atexit(cleanup_at_exit);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL); /* e.g. piped into head: still clean up */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!strcmp(argv[1], cases[i].name)) {
			int rc = cases[i].fn(argc, argv);
			if (!rc && rt_exit_leaks()) {
				fprintf(stderr, "cgroupbench: %d goroutines leaked\n",
				        rt_exit_leaks());
				rc = 1;
			}
			return rc;
		}
	fprintf(stderr, "cgroupbench: no case %s\n", argv[1]);
	return 2;
}
