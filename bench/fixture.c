/*
 * fixture.c — private cgroups, exit children and the 1 s poller for the
 * benchmarks that watch real cgroups (see fixture.h).
 */
#define _GNU_SOURCE
#include "fixture.h"

#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RMDIR_TRIES    300 /* rmdir retries, RMDIR_RETRY_NS apart: 3 s */
#define RMDIR_RETRY_NS (10 * MS)
#define SEEN_TIMEOUT   (5 * SEC)
#define POLL_MARGIN    (10 * MS) /* a child outlives the tick after its birth by this */

static const char *prog = "bench";

/* ─── clock, random numbers, statistics ─────────────────────────────── */

int64_t bf_mono_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

void bf_sleep_until(int64_t t) {
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

int64_t bf_random_ns(int64_t n) {
	return (int64_t)(splitmix() % (uint64_t)n);
}

static int cmp_i64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

double bf_median(int64_t *v, int n) {
	qsort(v, (size_t)n, sizeof *v, cmp_i64);
	return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

int bf_count_over(const int64_t *v, int n, int64_t limit) {
	int k = 0;
	for (int i = 0; i < n; i++)
		k += v[i] > limit;
	return k;
}

int64_t bf_percentile(const int64_t *v, int n, int p) {
	int k = (n * p + 99) / 100;
	return v[k < 1 ? 0 : k - 1];
}

/* ─── private cgroups and their cleanup ─────────────────────────────── */

/* What cleanup needs, as plain paths built before the cgroup is made: the
 * cleanup also runs in a signal handler, where only syscalls are safe. */
#define BF_HIERARCHIES (4 + CG_V1_MORE)

typedef struct {
	char kill_file[PATH_MAX + 96]; /* <unified dir>/cgroup.kill */
	/* unified, then v1 memory, cpu, pids and every other v1 hierarchy cg_open
	 * joins ("" if none) */
	char dirs[BF_HIERARCHIES][PATH_MAX + 64];
	bool live;
} made_cgroup;

cg_host bf_host;
volatile pid_t bf_helpers[BF_MAX_HELPERS];
static pid_t main_pid;
static made_cgroup made[BF_MAX_CGROUPS];
static int nmade;

pid_t bf_main_pid(void) {
	return main_pid;
}

cg *bf_new_cgroup(int n) {
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-bench-%d-%d", (int)main_pid, n);
	const char *roots[BF_HIERARCHIES] = {bf_host.unified};
	if (bf_host.layout == CG_LAYOUT_HYBRID) {
		roots[1] = bf_host.v1_memory;
		roots[2] = bf_host.v1_cpu;
		roots[3] = bf_host.v1_pids;
		for (int i = 0; i < CG_V1_MORE; i++)
			roots[4 + i] = bf_host.v1_more[i];
	}
	made_cgroup *m = &made[n];
	for (int i = 0; i < BF_HIERARCHIES; i++) {
		m->dirs[i][0] = 0;
		if (roots[i] && roots[i][0])
			snprintf(m->dirs[i], sizeof m->dirs[i], "%s/%s", roots[i], rel);
	}
	snprintf(m->kill_file, sizeof m->kill_file, "%s/%s/cgroup.kill", bf_host.unified, rel);
	m->live = true; /* before mkdir: a half-made cgroup is cleaned up too */
	if (n >= nmade)
		nmade = n + 1;
	cg_err e = {0};
	cg *c = cg_open(&bf_host, rel, true, &e);
	if (!c)
		fprintf(stderr, "%s: %s\n", prog, e.msg);
	return c;
}

const char *bf_cgroup_dir(int n) {
	return made[n].dirs[0];
}

/* End the helpers, kill everything in our cgroups (cgroup.kill) and remove
 * them. Only syscalls (it runs in the signal handler too); idempotent.
 * Returns how many directories could not be removed. */
static int cleanup_all(void) {
	if (getpid() != main_pid)
		return 0; /* a forked child that got here: the parent cleans up */
	for (int i = 0; i < BF_MAX_HELPERS; i++)
		if (bf_helpers[i] > 0) {
			kill(bf_helpers[i], SIGKILL);
			waitpid(bf_helpers[i], NULL, 0);
			bf_helpers[i] = 0;
		}
	for (int i = 0; i < nmade; i++) {
		int fd = made[i].live ? open(made[i].kill_file, O_WRONLY | O_CLOEXEC) : -1;
		if (fd >= 0) {
			(void)!write(fd, "1", 1);
			close(fd);
		}
	}
	/* killed processes leave their cgroup within milliseconds; until then
	 * rmdir says EBUSY */
	int left = 0;
	for (int tries = 0; tries < RMDIR_TRIES; tries++) {
		while (waitpid(-1, NULL, WNOHANG) > 0) {
		}
		left = 0;
		for (int i = 0; i < nmade; i++) {
			if (!made[i].live)
				continue;
			int busy = 0;
			for (int d = 0; d < BF_HIERARCHIES; d++) {
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
		struct timespec ts = {0, RMDIR_RETRY_NS};
		nanosleep(&ts, NULL);
	}
	return left;
}

static void cleanup_at_exit(void) {
	if (cleanup_all())
		for (int i = 0; i < nmade; i++)
			for (int d = 0; d < BF_HIERARCHIES; d++)
				if (made[i].dirs[d][0])
					fprintf(stderr, "%s: could not remove %s\n", prog,
					        made[i].dirs[d]);
}

static void on_signal(int sig) {
	cleanup_all();
	_exit(128 + sig);
}

int bf_init(const char *name) {
	prog = name;
	main_pid = getpid();
	rng_state = (uint64_t)bf_mono_ns() ^ ((uint64_t)main_pid << 32);
	cg_err e = {0};
	if (cg_host_detect(&bf_host, "/proc/self/mounts", &e)) {
		fprintf(stderr, "%s: %s\n", prog, e.msg);
		return 1;
	}
	atexit(cleanup_at_exit);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL); /* e.g. piped into head: still clean up */
	return 0;
}

/* Short, but a blocking call all the same, so a goroutine says so to the
 * runtime. */
void bf_reap(pid_t pid) {
	bool in_goroutine = rt_self() != 0;
	if (in_goroutine)
		rt_syscall_enter();
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
	}
	if (in_goroutine)
		rt_syscall_exit();
}

/* ─── exit children ─────────────────────────────────────────────────── */

int bf_exit_child_main(char **argv) {
	int64_t exit_at = strtoll(argv[2], NULL, 10), now;
	bf_sleep_until(exit_at);
	now = bf_mono_ns();
	(void)!write(atoi(argv[3]), &now, sizeof now);
	_exit(0);
}

int bf_spawn_exit_child(cg *c, int64_t exit_at, bf_exit_child *ch) {
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
		fprintf(stderr, "%s: pipe: %s\n", prog, strerror(errno));
		return 1;
	}
	char at[24], fd[16];
	snprintf(at, sizeof at, "%lld", (long long)exit_at);
	snprintf(fd, sizeof fd, "%d", p[1]);
	char *const argv[] = {(char *)prog, "exit-child", at, fd, NULL};
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
		fprintf(stderr, "%s: %s\n", prog, e.msg);
		return 1;
	}
	*ch = (bf_exit_child){pid, p[0]};
	return 0;
}

int64_t bf_finish_exit_child(bf_exit_child *ch) {
	int64_t stamp = -1;
	if (read(ch->stamp_fd, &stamp, sizeof stamp) != (ssize_t)sizeof stamp)
		stamp = -1;
	close(ch->stamp_fd);
	bf_reap(ch->pid);
	ch->pid = 0;
	if (stamp < 0)
		fprintf(stderr, "%s: a child exited without its stamp\n", prog);
	return stamp;
}

int bf_exit_rounds(cg *c, int rounds, int (*seen)(void *arg, int round), void *arg,
                   int64_t *stamps) {
	bool in_goroutine = rt_self() != 0;
	int rc = 0;
	for (int i = 0; i < rounds && !rc; i++) {
		if (in_goroutine)
			rt_sleep(BF_GAP_NS);
		else
			bf_sleep_until(bf_mono_ns() + BF_GAP_NS);
		bf_exit_child ch;
		if ((rc = bf_spawn_exit_child(c, bf_mono_ns() + BF_CHILD_LIFE_NS, &ch)))
			break;
		if ((rc = seen(arg, i))) { /* said why; the child's stamp does not matter */
			kill(ch.pid, SIGKILL);
			bf_reap(ch.pid);
			close(ch.stamp_fd);
			break;
		}
		rc = (stamps[i] = bf_finish_exit_child(&ch)) < 0;
	}
	return rc;
}

int64_t bf_read_populated(int fd) {
	char buf[256];
	ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
	int64_t populated = -1;
	if (r > 0) {
		buf[r] = 0;
		cg_parse_kv(buf, "populated", &populated, NULL);
	}
	return populated;
}

/* ─── the 1 s poller ────────────────────────────────────────────────────
 * A child is born right after a tick and exits at a uniformly random point
 * of the second after the next tick, which therefore sees it populated. */

int bf_poll_exits(int first, int want, int64_t *lat, int *n_out, int *missed) {
	struct {
		cg *c;
		int fd; /* cgroup.events */
		bf_exit_child ch;
		bool seen; /* the poller has seen this child's cgroup populated */
	} slot[BF_POLL_SLOTS] = {0};
	cg_err e = {0};
	int rc = 0, n = 0;
	int64_t tick = bf_mono_ns() + 20 * MS;
	for (int i = 0; i < BF_POLL_SLOTS && !rc; i++) {
		if (!(slot[i].c = bf_new_cgroup(first + i)) ||
		    (slot[i].fd = cg_fd(slot[i].c, "cgroup.events", &e)) < 0) {
			if (slot[i].c)
				fprintf(stderr, "%s: %s\n", prog, e.msg);
			rc = 1;
			break;
		}
		rc = bf_spawn_exit_child(slot[i].c, tick + POLL_MARGIN + bf_random_ns(SEC),
		                         &slot[i].ch);
	}
	for (; !rc && n < want; tick += SEC) {
		bf_sleep_until(tick);
		for (int i = 0; i < BF_POLL_SLOTS && !rc; i++) {
			int64_t populated = bf_read_populated(slot[i].fd), now = bf_mono_ns();
			if (populated < 0) {
				fprintf(stderr, "%s: cannot read %s/cgroup.events\n", prog,
				        cg_path(slot[i].c));
				rc = 1;
			} else if (populated == 1) {
				slot[i].seen = true;
			} else {
				/* the child is gone: a sample, unless it came and went
				 * between two reads (a real poller misses those) */
				int64_t stamp = bf_finish_exit_child(&slot[i].ch);
				if (stamp < 0)
					rc = 1;
				else if (slot[i].seen && n < want)
					lat[n++] = now - stamp;
				else if (!slot[i].seen)
					(*missed)++;
				slot[i].seen = false;
				rc = rc || bf_spawn_exit_child(slot[i].c,
				                               tick + SEC + POLL_MARGIN +
				                                   bf_random_ns(SEC),
				                               &slot[i].ch);
			}
		}
	}
	for (int i = 0; i < BF_POLL_SLOTS; i++) {
		if (slot[i].ch.pid > 0) {
			cg_kill(slot[i].c, SIGKILL, NULL);
			close(slot[i].ch.stamp_fd);
			bf_reap(slot[i].ch.pid);
		}
		cg_close(slot[i].c);
	}
	*n_out = n;
	return rc;
}
