/* debug_test.c — what a person debugging sees: a stack overflow names the
 * goroutine, leaks are reported with label and wait reason, dumps list every
 * goroutine, schedtrace prints Go's SCHED line, SIGQUIT dumps and goes on. */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* Run fn in a child process with stderr captured; returns its wait status. */
static int run_child(void (*fn)(void), char *out, size_t outsz) {
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]);
		fn();
		_exit(0);
	}
	close(pfd[1]);
	size_t n = 0;
	ssize_t r;
	while (n < outsz - 1 && (r = read(pfd[0], out + n, outsz - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
	return st;
}

/* ─── stack overflow ─────────────────────────────────────────────────── */

static volatile int go_on = 1; /* keeps the compiler from proving the recursion endless */

static int recurse(int depth) {
	volatile char frame[512];
	frame[0] = (char)depth;
	return go_on ? recurse(depth + 1) + frame[0] : 0;
}

static void deep(void *arg) {
	recurse(0);
}

static int overflow_main(void *arg) {
	rt_go(deep, NULL, "deep-recursion");
	rt_sleep(5000000000LL);
	return 0;
}

static void overflow_child(void) {
	rt_config cfg = {.procs = 1, .quiet_leaks = true};
	rt_main(&cfg, overflow_main, NULL);
}

TEST(stack_overflow_names_the_goroutine) {
	static char out[16384];
	int st = run_child(overflow_child, out, sizeof out);
	CHECKF(WIFSIGNALED(st), "child exited with %d", st);
#ifndef __SANITIZE_ADDRESS__
	CHECKF(strstr(out, "\"deep-recursion\" overflowed its stack"), "stderr: %s", out);
	CHECKF(strstr(out, "debug_test.c"), "no creation site: %s", out);
#else
	CHECKF(strstr(out, "deep-recursion") || strstr(out, "stack-overflow"), "stderr: %s", out);
#endif
}

/* ─── leak report at exit ────────────────────────────────────────────── */

static rt_chan *never;

static void leaky(void *arg) {
	rt_chan_recv(never, NULL);
}

static int leak_main(void *arg) {
	never = rt_chan_new(0, 0);
	rt_go(leaky, NULL, "leaky-receiver");
	rt_sleep(1000000);
	return 0;
}

static void leak_child(void) {
	rt_config cfg = {.procs = 2};
	rt_main(&cfg, leak_main, NULL);
	_exit(rt_exit_leaks());
}

TEST(leak_report_names_blocked_goroutine) {
	static char out[16384];
	int st = run_child(leak_child, out, sizeof out);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d, stderr: %s", st, out);
	CHECKF(strstr(out, "1 goroutine(s) still alive"), "stderr: %s", out);
	CHECKF(strstr(out, "[chan receive,") && strstr(out, "\"leaky-receiver\""), "stderr: %s",
	       out);
	CHECKF(strstr(out, "debug_test.c:"), "no creation site: %s", out);
}

/* ─── dump and leak report on demand ─────────────────────────────────── */

static rt_mutex held = RT_MUTEX_INIT;
static rt_chan *sel_a;

static void sleeper(void *arg) {
	rt_sleep(10000000000LL);
}
static void locker(void *arg) {
	rt_mutex_lock(&held);
	rt_mutex_unlock(&held);
}
static void selecter(void *arg) {
	rt_case c = {.c = sel_a, .dir = RT_RECV};
	rt_select(&c, 1, RT_FOREVER);
}
static void reader(void *arg) {
	char c;
	rt_read(arg, &c, 1, RT_FOREVER);
}

static int dump_main(void *arg) {
	int fds[2], pfd[2];
	CHECK(pipe(fds) == 0 && pipe2(pfd, O_NONBLOCK) == 0);
	rt_pollfd *pd = rt_poll_open(pfd[0], NULL);
	sel_a = rt_chan_new(0, 0);
	rt_mutex_lock(&held);
	rt_go(sleeper, NULL, "the-sleeper");
	rt_go(locker, NULL, "the-locker");
	rt_go(selecter, NULL, "the-selecter");
	rt_go(reader, pd, "the-reader");
	rt_sleep(20000000);
	rt_dump(fds[1]);
	CHECK(rt_leak_report(fds[1]) == 4);
	close(fds[1]);
	static char out[16384];
	ssize_t n = read(fds[0], out, sizeof out - 1);
	out[n > 0 ? n : 0] = 0;
	const char *want[] = {"[sleep,",
	                      "\"the-sleeper\"",
	                      "[sync.Mutex.Lock,",
	                      "\"the-locker\"",
	                      "[select,",
	                      "\"the-selecter\"",
	                      "[IO wait,",
	                      "\"the-reader\"",
	                      "[running]",
	                      "\"main\"",
	                      "found 4 blocked goroutine(s)"};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		CHECKF(strstr(out, want[i]), "no %s in:\n%s", want[i], out);
	/* let them all finish: no leaks at exit */
	rt_mutex_unlock(&held);
	rt_chan_close(sel_a);
	CHECK(write(pfd[1], "x", 1) == 1);
	for (int i = 0; i < 100 && rt_goroutines() > 2; i++)
		rt_sleep(1000000);
	CHECK(rt_goroutines() == 2); /* the sleeper is still asleep */
	return 0;
}

static void dump_child(void) {
	rt_config cfg = {.procs = 2, .quiet_leaks = true};
	int r = rt_main(&cfg, dump_main, NULL);
	_exit(r == 0 && rt_exit_leaks() == 1 ? 0 : 1);
}

TEST(dump_lists_goroutines_with_wait_reasons) {
	static char out[16384];
	int st = run_child(dump_child, out, sizeof out);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, out);
}

/* ─── schedtrace in Go's format ──────────────────────────────────────── */

static bool go_sched_line(const char *l) {
	int t, gmp, idle, thr, spin, need, idlet, rq, a, b, used = 0;
	if (sscanf(l,
	           "SCHED %dms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
	           "needspinning=%d idlethreads=%d runqueue=%d [%d %d]%n",
	           &t, &gmp, &idle, &thr, &spin, &need, &idlet, &rq, &a, &b, &used) != 10)
		return false;
	return gmp == 2 && l[used] == 0 && idle >= 0 && idle <= 2 && thr >= 2;
}

static void busy(void *arg) {
	int64_t until = rt_now() + 300000000;
	while (rt_now() < until) {
		if ((intptr_t)arg % 2)
			rt_sleep(1000000);
		else
			rt_yield();
	}
}

static int trace_main(void *arg) {
	for (intptr_t i = 0; i < 8; i++)
		rt_go(busy, (void *)i, "busy");
	rt_sleep(350000000);
	rt_sched_sample s;
	char line[512];
	rt_sched_sample_get(&s);
	rt_sched_format(&s, line, sizeof line);
	CHECKF(go_sched_line(line), "rt_sched_format: %s", line);
	return 0;
}

static void trace_child(void) {
	setenv("MOONSHIM_DEBUG", "schedtrace=50", 1);
	rt_config cfg = {.procs = 2};
	_exit(rt_main(&cfg, trace_main, NULL));
}

TEST(schedtrace_prints_go_format) {
	static char out[65536];
	int st = run_child(trace_child, out, sizeof out);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, out);
	int good = 0;
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		CHECKF(strncmp(l, "SCHED ", 6) || go_sched_line(l), "not Go's format: %s", l);
		good += go_sched_line(l);
	}
	CHECKF(good >= 3, "%d SCHED lines", good);
}

/* ─── SIGQUIT dumps and carries on ───────────────────────────────────── */

static int quit_main(void *arg) {
	rt_go(sleeper, NULL, "quit-sleeper");
	rt_sleep(50000000);
	kill(getpid(), SIGQUIT);
	rt_sleep(100000000);
	return 0;
}

static void quit_child(void) {
	rt_config cfg = {.procs = 2, .quiet_leaks = true};
	_exit(rt_main(&cfg, quit_main, NULL));
}

TEST(sigquit_dumps_and_carries_on) {
	static char out[16384];
	int st = run_child(quit_child, out, sizeof out);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, out);
	CHECKF(strstr(out, "goroutine dump") && strstr(out, "\"quit-sleeper\""), "stderr: %s", out);
}
