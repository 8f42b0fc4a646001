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
 * Needs root and a cgroup2 mount. Every cgroup is private and is removed
 * on exit with whatever runs in it killed first — also on failure and on
 * SIGINT/SIGTERM/SIGHUP/SIGPIPE (bench/fixture.h).
 */
#define _GNU_SOURCE
#include "cgroup.h"
#include "fixture.h"
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

/* ─── cgroup_event_latency ──────────────────────────────────────────────
 * Exit children (fixture.h) in a fresh cgroup; from each child's stamp:
 *   moonshim  until the subscriber goroutine has received the
 *             CG_EV_POPULATED 0 event from the channel given to
 *             cg_watch_start
 *   poll_1s   a loop that preads cgroup.events every second, as oomd does,
 *             until the read that shows populated 0 (bf_poll_exits).
 *             Children exit at a random phase of its second; it looks at
 *             several cgroups at once (one child each) so that its samples
 *             take ~12 s.
 *   floor     for scale, outside the runtime: a plain thread blocked in
 *             poll(POLLPRI) on the file, until its pread shows 0 — what the
 *             kernel alone costs (the exit, kernfs's notification work item,
 *             the wake-ups). */

#define EV_ROUNDS       200
#define EV_FLOOR_ROUNDS 100
#define EV_POLL_SAMPLES 24

static int64_t ev_lat[EV_ROUNDS], ev_seen[EV_ROUNDS], ev_floor[EV_FLOOR_ROUNDS];
static int64_t ev_stamp[EV_ROUNDS];
static int64_t ev_poll[EV_POLL_SAMPLES];

typedef struct {
	int fd;       /* floor: our own cgroup.events */
	rt_chan *out; /* moonshim: the watcher's channel */
} ev_run;

/* The kernel's floor: poll(2) on our own fd in this plain thread. */
static int floor_seen(void *arg, int round) {
	ev_run *r = arg;
	int64_t populated;
	while ((populated = bf_read_populated(r->fd)) != 0) {
		struct pollfd p = {.fd = r->fd, .events = POLLPRI};
		if (populated < 0 || poll(&p, 1, 5000) != 1) {
			fprintf(stderr, "cgroupbench: cgroup.events: no change within 5 s\n");
			return 1;
		}
	}
	ev_floor[round] = bf_mono_ns();
	return 0;
}

static int event_latency_floor(cg *c) {
	cg_err e = {0};
	ev_run r = {.fd = cg_fd(c, "cgroup.events", &e)};
	if (r.fd < 0) {
		fprintf(stderr, "cgroupbench: %s\n", e.msg);
		return 1;
	}
	if (bf_exit_rounds(c, EV_FLOOR_ROUNDS, floor_seen, &r, ev_stamp))
		return 1;
	for (int i = 0; i < EV_FLOOR_ROUNDS; i++)
		ev_floor[i] -= ev_stamp[i];
	return 0;
}

/* populated 1 comes first; wait for the 0 */
static int moonshim_seen(void *arg, int round) {
	ev_run *r = arg;
	for (;;) {
		cg_event ev;
		rt_case rcv = {.c = r->out, .dir = RT_RECV, .elem = &ev};
		if (rt_select(&rcv, 1, rt_deadline_in(5 * SEC)) != 0) {
			fprintf(stderr, "cgroupbench: no populated 0 event 5 s into round %d\n",
			        round);
			return 1;
		}
		if (ev.kind == CG_EV_POPULATED && ev.value == 0) {
			ev_lat[round] = rt_now();
			ev_seen[round] = ev.at;
			return 0;
		}
		if (ev.kind == CG_EV_ERROR || ev.kind == CG_EV_GONE) {
			fprintf(stderr, "cgroupbench: watcher: %s\n", ev.msg);
			return 1;
		}
	}
}

static int event_latency_moonshim(void *arg) {
	cg *c = arg;
	cg_err e = {0};
	ev_run r = {.out = rt_chan_new(sizeof(cg_event), 64)};
	cg_watch *w = cg_watch_start(c, NULL, r.out, &e);
	if (!w) {
		fprintf(stderr, "cgroupbench: cg_watch_start: %s\n", e.msg);
		return 1;
	}
	int rc = bf_exit_rounds(c, EV_ROUNDS, moonshim_seen, &r, ev_stamp);
	for (int i = 0; i < EV_ROUNDS && !rc; i++) {
		ev_lat[i] -= ev_stamp[i];
		ev_seen[i] -= ev_stamp[i];
	}
	cg_watch_stop(w);
	rt_chan_free(r.out);
	return rc;
}

static int cgroup_event_latency(int argc, char **argv) {
	cg *c = bf_new_cgroup(0);
	if (!c || event_latency_floor(c))
		return 1;
	rt_config cfg = {.procs = 2};
	if (rt_main(&cfg, event_latency_moonshim, c))
		return 1;
	cg_close(c);
	int npoll = 0, missed = 0;
	if (bf_poll_exits(1, EV_POLL_SAMPLES, ev_poll, &npoll, &missed) || npoll == 0)
		return 1;
	double m = bf_median(ev_lat, EV_ROUNDS), seen = bf_median(ev_seen, EV_ROUNDS);
	double floor = bf_median(ev_floor, EV_FLOOR_ROUNDS), p = bf_median(ev_poll, npoll);
	printf("INFO cgroup_event_latency: moonshim, %d exits: received median %.1f us, p99 "
	       "%.1f us, max %.1f us, %d over 1 ms; its watcher read the change at median %.1f "
	       "us, p99 %.1f us\n",
	       EV_ROUNDS, m / 1e3, (double)bf_percentile(ev_lat, EV_ROUNDS, 99) / 1e3,
	       (double)ev_lat[EV_ROUNDS - 1] / 1e3, bf_count_over(ev_lat, EV_ROUNDS, MS),
	       seen / 1e3, (double)bf_percentile(ev_seen, EV_ROUNDS, 99) / 1e3);
	printf("INFO cgroup_event_latency: floor (plain poll(2) thread, no runtime), %d exits: "
	       "median %.1f us, p99 %.1f us, %d over 1 ms\n",
	       EV_FLOOR_ROUNDS, floor / 1e3,
	       (double)bf_percentile(ev_floor, EV_FLOOR_ROUNDS, 99) / 1e3,
	       bf_count_over(ev_floor, EV_FLOOR_ROUNDS, MS));
	printf("INFO cgroup_event_latency: poll_1s, %d exits over %d cgroups at random phase: "
	       "median %.0f us, p99 %.0f us, min %.0f us (%d exits never seen populated)\n",
	       npoll, BF_POLL_SLOTS, p / 1e3, (double)bf_percentile(ev_poll, npoll, 99) / 1e3,
	       (double)ev_poll[0] / 1e3, missed);
	printf("RESULT cgroup_event_latency moonshim_us=%.1f moonshim_p99_us=%.1f poll_us=%.0f "
	       "poll_p99_us=%.0f\n",
	       m / 1e3, (double)bf_percentile(ev_lat, EV_ROUNDS, 99) / 1e3, p / 1e3,
	       (double)bf_percentile(ev_poll, npoll, 99) / 1e3);
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
	for (int64_t tick = bf_mono_ns();; tick += SEC) {
		int64_t total = some_total(p->fd), now = bf_mono_ns();
		if (total >= 0) {
			if (prev >= 0 && total - prev >= PSI_THRESHOLD &&
			    !atomic_load(&p->fired_at))
				atomic_store(&p->fired_at, now);
			prev = total;
		}
		struct pollfd stop = {.fd = p->stop_fd, .events = POLLIN};
		for (int64_t left; (left = tick + SEC - bf_mono_ns()) > 0;) {
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
	cg *c = bf_new_cgroup(n);
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
	int64_t calm = poller_too ? SEC + bf_random_ns(SEC) : 300 * MS + bf_random_ns(2 * SEC);
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
			bf_reap(kids[i]);
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
	double m = bf_median(res.moonshim, res.nm);
	int64_t tm = res.nt ? (int64_t)bf_median(res.trigger, res.nt) : 0;
	int64_t pm = res.np ? (int64_t)bf_median(res.poll, res.np) : 0;
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
	p->started = bf_mono_ns();
	p->pid = fork();
	if (p->pid < 0) {
		perror("cgroupbench: fork");
		return 1;
	}
	if (p->pid > 0)
		bf_helpers[slot] = p->pid;
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
		argv[k++] = bf_cgroup_dir(i);
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
		if (getppid() == bf_main_pid())
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
			snprintf(path, sizeof path, "%s/%s", bf_cgroup_dir(p->first + i), files[f]);
			if ((fds[i][f] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				_exit(1);
		}
	for (int64_t tick = bf_mono_ns(); tick < end; tick += SEC) {
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
		bf_sleep_until(tick + SEC);
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
		cg *c = bf_new_cgroup(i);
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
	int64_t end = bf_mono_ns() + secs * SEC;
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
				procs[i].wall_s = (double)(bf_mono_ns() - procs[i].started) / 1e9;
				procs[i].cpu_s =
				    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
				procs[i].status = status;
				bf_helpers[i] = 0;
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
		return bf_exit_child_main(argv);
	if (argc < 2) {
		fprintf(stderr, "usage: cgroupbench cgroup_event_latency|psi_onset|"
		                "watch_idle_cpu MOONSHIM [SECONDS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* INFO lines as they come */
	if (bf_init("cgroupbench"))
		return 1;
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
