/*
 * fixture.h — what the benchmarks that watch real cgroups share (prefix
 * bf_): private cgroups removed on every exit path, children whose exit is
 * the cgroup event being timed, the 1 s polling loop they are compared
 * with, and the statistics they print. Used by cgroupbench
 * (bench/cgroup_bench.c) and luabench (bench/lua_bench.c).
 *
 * Every cgroup is moonshim-bench-<pid>-N at the cgroup2 root (and the same
 * name in the v1 hierarchies of a hybrid host). bf_init registers a
 * cleanup that kills what runs in them and removes them at exit, on
 * SIGINT/SIGTERM/SIGHUP/SIGPIPE, and after a failure; bench/leftovers.sh
 * catches what a SIGKILLed benchmark left.
 */
#ifndef MOONSHIM_BENCH_FIXTURE_H
#define MOONSHIM_BENCH_FIXTURE_H

#include "cgroup.h"

#include <stdint.h>
#include <sys/types.h>

#define MS  ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

/* ─── clock, random numbers, statistics ─────────────────────────────── */

/* CLOCK_MONOTONIC, the clock of rt_now() and of cg_event.at. */
int64_t bf_mono_ns(void);
/* Sleep until an absolute bf_mono_ns() time. Outside the runtime only: in
 * a goroutine this would block its M (use rt_sleep_until there). */
void bf_sleep_until(int64_t t);
/* Uniform in [0, n); seeded by bf_init. */
int64_t bf_random_ns(int64_t n);
/* Sorts v. The median (mean of the middle two for an even count). */
double bf_median(int64_t *v, int n);
/* Nearest-rank percentile of sorted v (call bf_median first). */
int64_t bf_percentile(const int64_t *v, int n, int p);
/* How many of the n values exceed limit. */
int bf_count_over(const int64_t *v, int n, int64_t limit);

/* ─── private cgroups ───────────────────────────────────────────────── */

#define BF_MAX_CGROUPS 20
#define BF_MAX_HELPERS 4

extern cg_host bf_host;
/* Processes outside our cgroups (moonshim watch, a polling loop): the
 * cleanup SIGKILLs and reaps those still set. */
extern volatile pid_t bf_helpers[BF_MAX_HELPERS];

/* Detect the host, register the cleanup, seed the random numbers. prog
 * names the program in messages. 0, or 1 after printing why. */
int bf_init(const char *prog);
/* The process that called bf_init (its forks are not). */
pid_t bf_main_pid(void);
/* Create cgroup number n (0 ≤ n < BF_MAX_CGROUPS); NULL after printing
 * why. Closing the cg does not remove it: the cleanup does. */
cg *bf_new_cgroup(int n);
/* The unified directory of cgroup n (made by bf_new_cgroup). */
const char *bf_cgroup_dir(int n);
/* Reap a child that has exited or was killed (in a goroutine too). */
void bf_reap(pid_t pid);

/* ─── exit children: the cgroup event being timed ───────────────────────
 * A child in the cgroup writes its CLOCK_MONOTONIC time into a pipe just
 * before it _exits; the exit empties the cgroup (populated 1→0 in
 * cgroup.events), which is the event. The child execs this program
 * (`PROG exit-child EXIT_AT FD`, which main hands to bf_exit_child_main)
 * rather than staying a fork: tearing down a fork of the runtime process's
 * large address space (before the cgroup empties) took ~300 µs by itself.
 *
 * The kernel sends at most one notification per file every 10 ms
 * (CGROUP_FILE_NOTIFY_MIN_INTV, rounded up to jiffies: 12 ms at HZ=250)
 * and holds back a closer one until then. Children live BF_CHILD_LIFE_NS
 * and rounds are BF_GAP_NS apart, so the 1→0 notification is never held
 * back: we measure the watcher, not the kernel's rate limit. */

#define BF_CHILD_LIFE_NS (20 * MS)
#define BF_GAP_NS        (15 * MS)

typedef struct bf_exit_child {
	pid_t pid;
	int stamp_fd; /* the pipe's read end: the child's exit stamp */
} bf_exit_child;

/* `PROG exit-child EXIT_AT FD`: a benchmark child's whole life. */
int bf_exit_child_main(char **argv);
/* Start a child in c that sleeps until exit_at, stamps and exits. */
int bf_spawn_exit_child(cg *c, int64_t exit_at, bf_exit_child *ch);
/* Reap the child (it has left its cgroup) and return its stamp, or -1. */
int64_t bf_finish_exit_child(bf_exit_child *ch);

/* Rounds of one exit child each in c, BF_GAP_NS apart. In each,
 * seen(arg, i) returns 0 once the watcher under test has seen that child's
 * exit (recording when, for the caller), or nonzero after printing why;
 * stamps[i] is when the child exited. Works in a goroutine and in a plain
 * thread. 0, or 1 on the first failure. */
int bf_exit_rounds(cg *c, int rounds, int (*seen)(void *arg, int round), void *arg,
                   int64_t *stamps);

/* populated from cgroup.events read through fd, or -1. */
int64_t bf_read_populated(int fd);

/* The oomd-style loop, outside the runtime: every second on a fixed
 * schedule, pread cgroup.events of BF_POLL_SLOTS cgroups (numbers first..)
 * with an exit child each, until `want` exits were seen; lat[] is each
 * from the exit to the read that showed populated 0, *missed the exits
 * that came and went between two reads. 0, or 1 after printing why. */
#define BF_POLL_SLOTS 4
int bf_poll_exits(int first, int want, int64_t *lat, int *n, int *missed);

#endif
