/* debug_test.c — what debugging shows: overflow/leak reports, dumps, schedtrace, SIGQUIT. */
#define _GNU_SOURCE
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define MS 1000000LL

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* ─── child processes with their stderr captured ─────────────────────── */

typedef struct {
	pid_t pid;
	int fd; /* read end of the child's stderr */
	bool eof;
	size_t len;
	char out[1 << 18];
} child;

static int64_t mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fork (before any rt_main in this process); the child runs fn(arg) with
 * stderr on a pipe and exits with its result. */
static child *child_start(int (*fn)(void *), void *arg) {
	child *c = calloc(1, sizeof *c);
	CHECK(c);
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fflush(NULL);
	c->pid = fork();
	CHECK(c->pid >= 0);
	if (c->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		alarm(20);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		_exit(fn(arg));
	}
	close(p[1]);
	c->fd = p[0];
	return c;
}

/* Collect the child's stderr until `needle` shows up (NULL: until EOF) or
 * timeout_ms passes; true if it was found (or EOF reached). */
static bool child_read_until(child *c, const char *needle, int timeout_ms) {
	int64_t end = mono_ms() + timeout_ms;
	for (;;) {
		if (needle ? strstr(c->out, needle) != NULL : c->eof)
			return true;
		if (c->eof)
			return false;
		int64_t left = end - mono_ms();
		if (left <= 0)
			return false;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		char tmp[4096];
		ssize_t n = read(c->fd, tmp, sizeof tmp);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			c->eof = true;
			continue;
		}
		size_t room = sizeof c->out - 1 - c->len;
		size_t k = (size_t)n < room ? (size_t)n : room;
		memcpy(c->out + c->len, tmp, k);
		c->len += k;
		c->out[c->len] = 0;
	}
}

/* Read the rest (10 s at most, then SIGKILL) and reap: the wait status. */
static int child_finish(child *c) {
	if (!child_read_until(c, NULL, 10000))
		kill(c->pid, SIGKILL);
	int st = 0;
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	close(c->fd);
	return st;
}

static const char *status_str(int st) {
	static char buf[64];
	if (WIFSIGNALED(st))
		snprintf(buf, sizeof buf, "killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
	return buf;
}

/* The line of `text` that contains `needle` (copied into line), or NULL. */
static char *line_with(const char *text, const char *needle, char *line, size_t n) {
	const char *hit = strstr(text, needle);
	if (!hit)
		return NULL;
	const char *b = hit, *e = hit;
	while (b > text && b[-1] != '\n')
		b--;
	while (*e && *e != '\n')
		e++;
	snprintf(line, n, "%.*s", (int)(e - b), b);
	return line;
}

/* Run one report function (rt_dump or rt_leak_report) into a memfd and
 * return what it wrote (in buf) and returned. */
static int capture(int (*report)(int fd), char *buf, size_t n) {
	int fd = memfd_create("report", MFD_CLOEXEC);
	CHECK(fd >= 0);
	int r = report(fd);
	ssize_t k = pread(fd, buf, n - 1, 0);
	close(fd);
	buf[k > 0 ? k : 0] = 0;
	return r;
}

static int dump_report(int fd) {
	rt_dump(fd);
	return 0;
}

static int count_lines(const char *out, const char *a, const char *b);

/* ─── stack overflow ─────────────────────────────────────────────────── */

static volatile int keep_going = 1; /* the compiler cannot prove the recursion endless */

static int recurse(int depth) {
	volatile char frame[512]; /* a real frame per call ... */
	frame[depth % 512] = (char)depth;
	if (!keep_going)
		return frame[0];
	return recurse(depth + 1) + frame[depth % 512]; /* ... and no tail call */
}

static void deep(void *arg) {
	recurse(0);
}

static int overflow_main(void *arg) {
	rt_go(deep, NULL, "deep-recursion");
	rt_sleep(5000 * MS);
	return 0;
}

static int overflow_child(void *arg) {
	rt_config cfg = {.procs = 1, .quiet_leaks = true};
	rt_main(&cfg, overflow_main, NULL);
	fprintf(stderr, "survived an endless recursion\n");
	return 0;
}

TEST(debug_stack_overflow_names_the_goroutine) {
	child *c = child_start(overflow_child, NULL);
	int st = child_finish(c);
	char line[1024];
	bool ours = line_with(c->out, "\"deep-recursion\" overflowed its stack", line, sizeof line);
	bool by_signal = WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGABRT);
	if (UNDER_ASAN && !ours) {
		/* ASan's handler got there first: its report is fine too */
		CHECKF(strstr(c->out, "stack-overflow"), "%s, stderr:\n%s", status_str(st), c->out);
		CHECKF(WIFSIGNALED(st) || WEXITSTATUS(st) != 0, "%s, stderr:\n%s", status_str(st),
		       c->out);
	} else {
		CHECKF(by_signal, "the child should die of SIGSEGV or SIGABRT: %s, stderr:\n%s",
		       status_str(st), c->out);
		CHECKF(ours, "no overflow report naming \"deep-recursion\" in stderr:\n%s", c->out);
		CHECKF(strstr(line, "debug_test.c:"), "no creation site in: %s", line);
	}
	free(c);
}

/* ─── the leak report at exit ────────────────────────────────────────── */

static rt_chan *never;

static void leaky(void *arg) {
	int v;
	rt_chan_recv(never, &v); /* nobody ever sends */
}

static int blocked_now(void) {
	static char buf[65536];
	return capture(rt_leak_report, buf, sizeof buf);
}

static int leak_main(void *arg) {
	never = rt_chan_new(sizeof(int), 0);
	rt_go(leaky, NULL, "leaky-receiver");
	for (int i = 0; i < 2000 && blocked_now() < 1; i++)
		rt_sleep(1 * MS);
	return 7;
}

static int leak_child(void *arg) {
	rt_config cfg = {.procs = 2, .quiet_leaks = false};
	int r = rt_main(&cfg, leak_main, NULL);
	fprintf(stderr, "first: rt_main=%d leaks=%d\n", r, rt_exit_leaks());
	/* the runtime starts again; quiet_leaks counts without printing */
	cfg.quiet_leaks = true;
	r = rt_main(&cfg, leak_main, NULL);
	fprintf(stderr, "second: rt_main=%d leaks=%d\n", r, rt_exit_leaks());
	return 0;
}

TEST(debug_leak_report_at_exit_names_blocked_goroutine) {
	child *c = child_start(leak_child, NULL);
	int st = child_finish(c);
	const char *out = c->out;
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s, stderr:\n%s", status_str(st), out);
	CHECKF(strstr(out, "first: rt_main=7 leaks=1\n"), "rt_exit_leaks() after a leak:\n%s", out);
	CHECKF(strstr(out, "second: rt_main=7 leaks=1\n"), "second run:\n%s", out);
	char line[1024];
	CHECKF(strstr(out, "1 goroutine(s) still alive"), "no leak report header:\n%s", out);
	CHECKF(line_with(out, "\"leaky-receiver\"", line, sizeof line), "no leaked label:\n%s",
	       out);
	CHECKF(strstr(line, "[chan receive,"), "wrong wait reason: %s", line);
	CHECKF(strstr(line, "debug_test.c:"), "no creation site: %s", line);
	CHECKF(!strstr(out, "\"main\""), "the main goroutine reported as a leak:\n%s", out);
	/* printed once: the quiet run counted the leak without a report */
	CHECKF(count_lines(out, "still alive", NULL) == 1, "quiet_leaks=true still printed:\n%s",
	       out);
	free(c);
}

/* ─── rt_dump: every goroutine with its label and wait reason ────────── */

static struct {
	rt_chan *recv_ch, *send_ch, *sel_a, *sel_b;
	rt_mutex mu;
	rt_pollfd *pd;
	int pfd[2];
	int released;
	rt_waitgroup wg;
} D;

static void d_sleeper(void *arg) {
	while (!__atomic_load_n(&D.released, __ATOMIC_ACQUIRE))
		rt_sleep(20 * MS);
	rt_wg_done(&D.wg);
}
static void d_receiver(void *arg) {
	int v;
	CHECK(rt_chan_recv(D.recv_ch, &v) && v == 1);
	rt_wg_done(&D.wg);
}
static void d_sender(void *arg) {
	int v = 2;
	rt_chan_send(D.send_ch, &v);
	rt_wg_done(&D.wg);
}
static void d_selecter(void *arg) {
	rt_case cs[2] = {{.c = D.sel_a, .dir = RT_RECV}, {.c = D.sel_b, .dir = RT_RECV}};
	CHECK(rt_select(cs, 2, RT_FOREVER) == 0 && !cs[0].ok);
	rt_wg_done(&D.wg);
}
static void d_locker(void *arg) {
	rt_mutex_lock(&D.mu);
	rt_mutex_unlock(&D.mu);
	rt_wg_done(&D.wg);
}
static void d_reader(void *arg) {
	char c;
	CHECK(rt_read(D.pd, &c, 1, RT_FOREVER) == 1);
	rt_wg_done(&D.wg);
}

/* clang-format off */
static const struct {
	rt_fn fn;
	const char *label, *reason;
} dumped[] = {
	{d_sleeper, "dump-sleeper", "sleep"},
	{d_receiver, "dump-receiver", "chan receive"},
	{d_sender, "dump-sender", "chan send"},
	{d_selecter, "dump-selecter", "select"},
	{d_locker, "dump-locker", "sync.Mutex.Lock"},
	{d_reader, "dump-reader", "IO wait"},
};
/* clang-format on */
#define NDUMPED ((int)(sizeof dumped / sizeof dumped[0]))

static bool skip_digits(const char **p) {
	if (!isdigit((unsigned char)**p))
		return false;
	while (isdigit((unsigned char)**p))
		(*p)++;
	return true;
}

static bool skip_lit(const char **p, const char *s) {
	size_t n = strlen(s);
	if (strncmp(*p, s, n))
		return false;
	*p += n;
	return true;
}

/* `goroutine <id> [<reason>, <n> ms]: "<label>" created by goroutine <parent> at <file>:<line>` */
static bool dump_line_ok(const char *l, const char *label, const char *reason,
                         unsigned long long parent) {
	char mid[160], tail[200];
	snprintf(mid, sizeof mid, " [%s, ", reason);
	snprintf(tail, sizeof tail, " ms]: \"%s\" created by goroutine %llu at ", label, parent);
	const char *p = l;
	if (!skip_lit(&p, "goroutine ") || !skip_digits(&p) || !skip_lit(&p, mid) ||
	    !skip_digits(&p) || !skip_lit(&p, tail))
		return false;
	const char *site = strstr(p, "debug_test.c:"); /* where rt_go was called */
	if (!site)
		return false;
	p = site + strlen("debug_test.c:");
	return skip_digits(&p) && *p == 0;
}

static bool dump_complete(const char *out, char *missing, size_t n) {
	char line[1024], want[128];
	for (int i = 0; i < NDUMPED; i++) {
		snprintf(want, sizeof want, "\"%s\"", dumped[i].label);
		if (!line_with(out, want, line, sizeof line) ||
		    !dump_line_ok(line, dumped[i].label, dumped[i].reason, rt_self())) {
			snprintf(missing, n, "%s [%s]", dumped[i].label, dumped[i].reason);
			return false;
		}
	}
	return true;
}

static int dump_main(void *arg) {
	D.recv_ch = rt_chan_new(sizeof(int), 0);
	D.send_ch = rt_chan_new(sizeof(int), 0);
	D.sel_a = rt_chan_new(sizeof(int), 0);
	D.sel_b = rt_chan_new(sizeof(int), 0);
	D.mu = (rt_mutex)RT_MUTEX_INIT;
	D.wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	CHECK(pipe2(D.pfd, O_CLOEXEC | O_NONBLOCK) == 0);
	int err = 0;
	D.pd = rt_poll_open(D.pfd[0], &err);
	CHECKF(D.pd, "rt_poll_open: %s", strerror(-err));
	rt_mutex_lock(&D.mu);
	rt_wg_add(&D.wg, NDUMPED);
	for (int i = 0; i < NDUMPED; i++)
		rt_go(dumped[i].fn, NULL, dumped[i].label);

	/* the sleeper wakes every 20 ms: retry until a dump catches all asleep */
	const size_t size = 1 << 20;
	char *out = malloc(size), missing[200] = "";
	CHECK(out);
	bool ok = false;
	for (int i = 0; i < 3000 && !ok; i++) {
		if (i)
			rt_sleep(1 * MS);
		capture(dump_report, out, size);
		ok = dump_complete(out, missing, sizeof missing);
	}
	CHECKF(ok, "rt_dump has no proper line for %s:\n%s", missing, out);
	char line[1024], head[64];
	int live = rt_goroutines();
	CHECKF(live == NDUMPED + 1, "rt_goroutines() = %d", live);
	snprintf(head, sizeof head, "goroutine dump, %d live\n", live);
	CHECKF(strstr(out, head), "no \"%s\" header:\n%s", head, out);
	int lines = 0;
	for (const char *p = out; (p = strstr(p, "\ngoroutine ")); p++)
		lines++;
	CHECKF(lines == live, "%d goroutine lines for %d live:\n%s", lines, live, out);
	CHECKF(line_with(out, "\"main\"", line, sizeof line) && strstr(line, "[running]"),
	       "the caller is not shown running:\n%s", out);

	/* let every one of them finish */
	__atomic_store_n(&D.released, 1, __ATOMIC_RELEASE);
	rt_mutex_unlock(&D.mu);
	int v = 1;
	rt_chan_send(D.recv_ch, &v);
	CHECK(rt_chan_recv(D.send_ch, &v) && v == 2);
	rt_chan_close(D.sel_a);
	CHECK(write(D.pfd[1], "x", 1) == 1);
	rt_wg_wait(&D.wg);
	free(out);
	rt_poll_close(D.pd);
	close(D.pfd[0]);
	close(D.pfd[1]);
	rt_chan_free(D.recv_ch);
	rt_chan_free(D.send_ch);
	rt_chan_free(D.sel_a);
	rt_chan_free(D.sel_b);
	return 0;
}
TEST(debug_dump_lists_labels_and_wait_reasons) {
	run_rt(2, dump_main, NULL);
}

/* ─── rt_leak_report on demand: counts what is blocked right now ─────── */

#define BLOCKED 5

static struct {
	rt_chan *ch;
	int stop;
	rt_waitgroup wg;
} L;

static void l_blocked(void *arg) {
	int v;
	rt_chan_recv(L.ch, &v);
	rt_wg_done(&L.wg);
}

static void l_busy(void *arg) {
	while (!__atomic_load_n(&L.stop, __ATOMIC_ACQUIRE))
		rt_yield(); /* runnable or running, never blocked */
	rt_wg_done(&L.wg);
}

static int count_lines(const char *out, const char *a, const char *b) {
	int n = 0;
	const char *p = out;
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char line[1024];
		snprintf(line, sizeof line, "%.*s", (int)len, p);
		if (strstr(line, a) && (!b || strstr(line, b)))
			n++;
		p += len + (e ? 1 : 0);
	}
	return n;
}

static int leak_report_main(void *arg) {
	L.ch = rt_chan_new(sizeof(int), 0);
	L.wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	rt_wg_add(&L.wg, BLOCKED + 1);
	rt_go(l_busy, NULL, "busy-yielder");
	for (int i = 0; i < BLOCKED; i++)
		rt_go(l_blocked, NULL, "blocked-receiver");
	const size_t size = 1 << 20;
	char *out = malloc(size);
	CHECK(out);
	int n = 0;
	for (int i = 0; i < 3000; i++) {
		n = capture(rt_leak_report, out, size);
		CHECKF(n <= BLOCKED, "rt_leak_report counted %d, only %d are blocked:\n%s", n,
		       BLOCKED, out);
		if (n == BLOCKED)
			break;
		rt_sleep(1 * MS);
	}
	CHECKF(n == BLOCKED, "rt_leak_report returned %d with %d goroutines blocked", n, BLOCKED);
	CHECKF(strstr(out, "found 5 blocked goroutine(s)"), "no header:\n%s", out);
	CHECKF(count_lines(out, "\"blocked-receiver\"", "[chan receive,") == BLOCKED,
	       "not 5 lines for the receivers:\n%s", out);
	CHECKF(!strstr(out, "busy-yielder") && !strstr(out, "\"main\""),
	       "a goroutine that is not blocked is reported:\n%s", out);

	rt_chan_close(L.ch);
	__atomic_store_n(&L.stop, 1, __ATOMIC_RELEASE);
	rt_wg_wait(&L.wg);
	n = capture(rt_leak_report, out, size);
	CHECKF(n == 0 && out[0] == 0, "after release: %d, \"%s\"", n, out);
	free(out);
	rt_chan_free(L.ch);
	return 0;
}
TEST(debug_leak_report_counts_blocked_goroutines) {
	run_rt(2, leak_report_main, NULL);
}

/* ─── schedtrace: Go's SCHED line ────────────────────────────────────── */

static bool lit(const char **p, const char *s) {
	return skip_lit(p, s);
}

static bool num(const char **p, long *v) {
	if (!isdigit((unsigned char)**p))
		return false;
	char *e;
	*v = strtol(*p, &e, 10);
	*p = e;
	return true;
}

/* Exactly "SCHED <n>ms: gomaxprocs=<procs> idleprocs=<n> threads=<n>
 * spinningthreads=<n> needspinning=<n> idlethreads=<n> runqueue=<n> [<n> <n>]"
 * with sane values; *uptime gets the ms. */
static bool go_sched_line(const char *l, int procs, long *uptime) {
	static const char *const keys[] = {
	    "ms: gomaxprocs=", " idleprocs=",   " threads=", " spinningthreads=",
	    " needspinning=",  " idlethreads=", " runqueue="};
	long v[8], q;
	const char *p = l;
	if (!lit(&p, "SCHED ") || !num(&p, &v[0]))
		return false;
	for (int i = 0; i < 7; i++)
		if (!lit(&p, keys[i]) || !num(&p, &v[i + 1]))
			return false;
	if (!lit(&p, " ["))
		return false;
	for (int i = 0; i < procs; i++)
		if ((i && !lit(&p, " ")) || !num(&p, &q))
			return false;
	if (!lit(&p, "]") || *p)
		return false;
	long gomaxprocs = v[1], idleprocs = v[2], threads = v[3], spinning = v[4],
	     idlethreads = v[6];
	if (gomaxprocs != procs || idleprocs > procs || threads < 1 || spinning > threads ||
	    idlethreads > threads)
		return false;
	if (uptime)
		*uptime = v[0];
	return true;
}

static int64_t st_end;
static rt_waitgroup st_wg;

static void st_sleepy(void *arg) {
	while (rt_now() < st_end)
		rt_sleep(2 * MS);
	rt_wg_done(&st_wg);
}

static void st_yielder(void *arg) {
	while (rt_now() < st_end)
		rt_yield();
	rt_wg_done(&st_wg);
}

static int trace_main(void *arg) {
	st_end = rt_now() + 300 * MS;
	st_wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	rt_wg_add(&st_wg, 8);
	for (int i = 0; i < 4; i++) {
		rt_go(st_sleepy, NULL, "trace-sleeper");
		rt_go(st_yielder, NULL, "trace-yielder");
	}
	rt_sleep(100 * MS);
	/* the same line through the API, while the work runs */
	rt_sched_sample s;
	char line[512], msg[700];
	rt_sched_sample_get(&s);
	int n = rt_sched_format(&s, line, sizeof line);
	int k = snprintf(msg, sizeof msg, "API %s|%d|%d|%lld\n", line, n, s.gomaxprocs,
	                 (long long)s.uptime_ms);
	CHECK(write(2, msg, (size_t)k) == k); /* one write: sysmon writes lines too */
	rt_wg_wait(&st_wg);
	return 0;
}

static int trace_child(void *arg) {
	setenv("MOONSHIM_DEBUG", "schedtrace=50", 1);
	rt_config cfg = {.procs = 2};
	return rt_main(&cfg, trace_main, NULL);
}

TEST(debug_schedtrace_prints_go_sched_lines) {
	child *c = child_start(trace_child, NULL);
	int st = child_finish(c);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s, stderr:\n%s", status_str(st), c->out);
	int good = 0;
	long first = -1, last = -1, t;
	bool api = false;
	char *save = NULL;
	for (char *l = strtok_r(c->out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "SCHED", 5)) {
			CHECKF(go_sched_line(l, 2, &t), "not Go's SCHED format: \"%s\"", l);
			CHECKF(t >= last, "SCHED times go backwards: %ld after %ld", t, last);
			if (first < 0)
				first = t;
			last = t;
			good++;
		} else if (!strncmp(l, "API ", 4)) {
			/* "API <line>|<returned length>|<gomaxprocs>|<uptime_ms>" */
			char *bar = strchr(l, '|');
			CHECKF(bar, "%s", l);
			*bar = 0;
			int len = 0, procs = 0;
			long long up = 0;
			CHECKF(sscanf(bar + 1, "%d|%d|%lld", &len, &procs, &up) == 3, "%s",
			       bar + 1);
			CHECKF(go_sched_line(l + 4, 2, &t), "rt_sched_format: \"%s\"", l + 4);
			CHECKF(len == (int)strlen(l + 4),
			       "rt_sched_format returned %d for %zu chars", len, strlen(l + 4));
			CHECKF(procs == 2 && t == up,
			       "sample gomaxprocs=%d uptime=%lld, line says %ld", procs, up, t);
			api = true;
		}
	}
	CHECKF(good >= 3, "%d SCHED lines in ~300 ms at schedtrace=50:\n%s", good, c->out);
	CHECKF(last - first >= 100, "SCHED lines span only %ld ms", last - first);
	CHECKF(api, "no rt_sched_format line from the child");
	free(c);
}

/* ─── SIGQUIT: a dump on stderr, then business as usual ──────────────── */

static int q_ready[2], q_ctl[2], q_done;
static rt_chan *q_ch;
static rt_waitgroup q_wg;

/* TSan runs an asynchronous signal's handler only when the thread it hit
 * next enters an intercepted libc call, and the runtime's idle waits are
 * raw futex/epoll_pwait2 syscalls: an idle runtime would sit on SIGQUIT.
 * Under TSan keep the P's busy with intercepted calls. */
static void q_busy(void *arg) {
	while (!__atomic_load_n(&q_done, __ATOMIC_ACQUIRE)) {
		usleep(100);
		rt_yield();
	}
	rt_wg_done(&q_wg);
}

static void q_watcher(void *arg) {
	int v;
	CHECK(rt_chan_recv(q_ch, &v) && v == 42);
	rt_wg_done(&q_wg);
}

static int quit_main(void *arg) {
	q_ch = rt_chan_new(sizeof(int), 0);
	q_wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	rt_wg_add(&q_wg, 1);
	rt_go(q_watcher, NULL, "quit-watcher");
	for (int i = 0; UNDER_TSAN && i < 2; i++) {
		rt_wg_add(&q_wg, 1);
		rt_go(q_busy, NULL, "quit-busy");
	}
	CHECK(fcntl(q_ctl[0], F_SETFL, O_NONBLOCK) == 0);
	int err = 0;
	rt_pollfd *ctl = rt_poll_open(q_ctl[0], &err);
	CHECKF(ctl, "rt_poll_open: %s", strerror(-err));
	CHECK(write(q_ready[1], "r", 1) == 1); /* the runtime (and its handler) is up */
	char c;
	/* the parent answers once it has seen the dump */
	ssize_t n = rt_read(ctl, &c, 1, rt_deadline_in(15000 * MS));
	rt_poll_close(ctl);
	__atomic_store_n(&q_done, 1, __ATOMIC_RELEASE);
	if (n != 1)
		return 3;
	/* still scheduling after the dump */
	int v = 42;
	rt_chan_send(q_ch, &v);
	rt_wg_wait(&q_wg);
	rt_sleep(5 * MS);
	const char msg[] = "after the dump: still running\n";
	CHECK(write(2, msg, sizeof msg - 1) == (ssize_t)sizeof msg - 1);
	rt_chan_free(q_ch);
	return 0;
}

static int quit_child(void *arg) {
	close(q_ready[0]);
	close(q_ctl[1]);
	rt_config cfg = {.procs = 2, .quiet_leaks = false};
	int r = rt_main(&cfg, quit_main, NULL);
	close(q_ctl[0]);
	close(q_ready[1]);
	return r ? 10 + r : rt_exit_leaks() ? 20 : 0;
}

TEST(debug_sigquit_dumps_and_carries_on) {
	signal(SIGPIPE, SIG_IGN); /* the child may be gone when we answer it */
	CHECK(pipe2(q_ready, O_CLOEXEC) == 0 && pipe2(q_ctl, O_CLOEXEC) == 0);
	child *c = child_start(quit_child, NULL);
	close(q_ready[1]);
	close(q_ctl[0]);
	struct pollfd pfd = {.fd = q_ready[0], .events = POLLIN};
	char b;
	bool ready = poll(&pfd, 1, 10000) == 1 && read(q_ready[0], &b, 1) == 1;
	bool dumped = false;
	if (ready) {
		usleep(50000); /* a short delay, then the signal from outside */
		/* Under TSan a signal that lands on an idle M (parked in a raw
		 * futex) waits for that thread's next intercepted call, which may
		 * never come: ask again, as a user at a terminal would. */
		for (int tries = 0; !dumped && tries < (UNDER_TSAN ? 5 : 1); tries++) {
			CHECK(kill(c->pid, SIGQUIT) == 0);
			dumped =
			    child_read_until(c, "\"quit-watcher\"", UNDER_TSAN ? 2000 : 10000) &&
			    child_read_until(c, "\"main\"", 2000);
		}
	}
	CHECK(write(q_ctl[1], "g", 1) == 1);
	int st = child_finish(c);
	close(q_ready[0]);
	close(q_ctl[1]);
	const char *out = c->out;
	CHECKF(ready, "the child never got its runtime going: %s, stderr:\n%s", status_str(st),
	       out);
	CHECKF(dumped, "no goroutine dump after SIGQUIT; %s, stderr:\n%s", status_str(st), out);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "SIGQUIT should dump and carry on, the child ended with %s; stderr:\n%s",
	       status_str(st), out);
	const char *head = strstr(out, "goroutine dump");
	CHECKF(head, "no \"goroutine dump\" header:\n%s", out);
	char line[1024];
	CHECKF(line_with(head, "\"quit-watcher\"", line, sizeof line) &&
	           strstr(line, "[chan receive,"),
	       "the dump should show quit-watcher in chan receive:\n%s", out);
	CHECKF(line_with(head, "\"main\"", line, sizeof line) && strstr(line, "[IO wait,"),
	       "the dump should show main in IO wait:\n%s", out);
	const char *after = strstr(out, "after the dump: still running");
	CHECKF(after && after > head, "the child did not carry on after the dump:\n%s", out);
	free(c);
}
