/* watch_cmd_test.c — the `moonshim watch` program end to end: it shows a
 * process's exit (populated 1→0) within milliseconds as a JSON line, and
 * exits 0 on SIGTERM; bad options get one clear message and status 2. */
#define _GNU_SOURCE
#include "harness.h"

#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

/* build/moonshim next to build/tests/, or /tests/moonshim in the VM */
static const char *moonshim_bin(void) {
	static char path[PATH_MAX + 16];
	const char *env = getenv("MOONSHIM_BIN");
	if (env)
		return env;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(n > 0);
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(path, sizeof path, "%s/../moonshim", self);
	if (access(path, X_OK) == 0)
		return path;
	snprintf(path, sizeof path, "%s/moonshim", self);
	CHECKF(access(path, X_OK) == 0, "no moonshim binary next to %s (set MOONSHIM_BIN)", self);
	return path;
}

static int64_t mono_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct {
	int fd;
	char buf[65536];
	size_t len;
} reader;

/* The next line holding every one of `want` (NULL-ended), within ms. */
static bool next_line(reader *r, const char *const *want, int ms, char *line, size_t n) {
	int64_t deadline = mono_ns() + (int64_t)ms * 1000000;
	for (;;) {
		char *nl;
		while ((nl = memchr(r->buf, '\n', r->len))) {
			size_t l = (size_t)(nl - r->buf);
			snprintf(line, n, "%.*s", (int)l, r->buf);
			memmove(r->buf, nl + 1, r->len - l - 1);
			r->len -= l + 1;
			bool all = true;
			for (int i = 0; want[i]; i++)
				all = all && strstr(line, want[i]);
			if (all)
				return true;
		}
		int left = (int)((deadline - mono_ns()) / 1000000);
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return false;
		ssize_t got = read(r->fd, r->buf + r->len, sizeof r->buf - r->len - 1);
		if (got <= 0)
			return false;
		r->len += (size_t)got;
	}
}

static pid_t start_watch(const char *const *args, int *out_fd) {
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execv(args[0], (char *const *)args);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

TEST(watch_cmd_shows_exit_within_ms) {
	cg_host host;
	cg_err e = {0};
	CHECKF(cg_host_detect(&host, "/proc/self/mounts", &e) == 0, "%s", e.msg);
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-test-%d", getpid());
	cg *c = cg_open(&host, rel, true, &e);
	CHECKF(c, "%s", e.msg);
	const char *args[] = {moonshim_bin(), "watch", "--cgroup", cg_path(c),
	                      "--interval",   "0",     NULL};
	static reader r;
	pid_t w = start_watch(args, &r.fd);
	char line[4096];
	CHECKF(
	    next_line(&r, (const char *[]){"\"event\":\"start\"", NULL}, 5000, line, sizeof line),
	    "no start line");
	pid_t kid = cg_fork_into(c, NULL, &e);
	CHECKF(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		pause();
		_exit(0);
	}
	CHECKF(next_line(&r, (const char *[]){"\"event\":\"populated\"", "\"value\":1", NULL}, 5000,
	                 line, sizeof line),
	       "no populated 1 line");
	int64_t killed = mono_ns();
	kill(kid, SIGKILL);
	CHECKF(next_line(&r, (const char *[]){"\"event\":\"populated\"", "\"value\":0", NULL}, 5000,
	                 line, sizeof line),
	       "no populated 0 line");
	waitpid(kid, NULL, 0);
	const char *m = strstr(line, "\"mono_ns\":");
	CHECKF(m, "%s", line);
	int64_t seen = strtoll(m + 10, NULL, 10);
	fprintf(stderr, "populated 1->0 printed %lld us after SIGKILL: %s\n",
	        (long long)(seen - killed) / 1000, line);
	CHECK(seen >= killed);
	if (scaled(100) == 100)
		CHECKF(seen - killed < 100000000, "%lld ms", (long long)(seen - killed) / 1000000);
	kill(w, SIGTERM);
	int st;
	CHECK(waitpid(w, &st, 0) == w);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "watch exit status %#x", st);
	close(r.fd);
	for (int i = 0; i < 100 && cg_remove(c, &e) == -EBUSY; i++)
		usleep(10000);
	CHECKF(cg_remove(c, &e) == 0, "%s", e.msg);
	cg_close(c);
}

TEST(watch_cmd_rejects_bad_options_clearly) {
	static reader r;
	char line[4096];
	const char *bad_rule[] = {moonshim_bin(), "watch",          "--cgroup", "x",
	                          "--psi",        "memory:some:1s", NULL};
	pid_t w = start_watch(bad_rule, &r.fd);
	CHECK(next_line(&r, (const char *[]){"memory:some:1s", "RESOURCE:some|full", NULL}, 5000,
	                line, sizeof line));
	int st;
	CHECK(waitpid(w, &st, 0) == w && WIFEXITED(st) && WEXITSTATUS(st) == 2);
	close(r.fd);
	r.len = 0;
	const char *missing[] = {moonshim_bin(), "watch", "--cgroup", "no-such-cgroup-here", NULL};
	w = start_watch(missing, &r.fd);
	CHECK(next_line(&r, (const char *[]){"\"event\":\"error\"", "no-such-cgroup-here", NULL},
	                5000, line, sizeof line));
	CHECK(waitpid(w, &st, 0) == w && WIFEXITED(st) && WEXITSTATUS(st) == 1);
	close(r.fd);
}

/* Pure v2 (the VM): `moonshim watch` shows memory.high events while a
 * child keeps touching more memory than memory.high allows. */
TEST(watch_cmd_shows_memory_high_events_on_v2) {
	cg_host host;
	cg_err e = {0};
	CHECKF(cg_host_detect(&host, "/proc/self/mounts", &e) == 0, "%s", e.msg);
	if (host.layout != CG_LAYOUT_V2) {
		fprintf(stderr, "skipped: memory.high throttles only on pure v2\n");
		return;
	}
	char rel[64];
	snprintf(rel, sizeof rel, "moonshim-test-%d", getpid());
	cg *c = cg_open(&host, rel, true, &e);
	CHECKF(c, "%s", e.msg);
	cg_limits l;
	cg_limits_init(&l);
	l.memory_high = 8 << 20;
	CHECKF(cg_set_limits(c, &l, &e) == 0, "%s", e.msg);
	const char *args[] = {moonshim_bin(), "watch", "--cgroup", cg_path(c),
	                      "--interval",   "0",     NULL};
	static reader r;
	pid_t w = start_watch(args, &r.fd);
	char line[4096];
	CHECKF(
	    next_line(&r, (const char *[]){"\"event\":\"start\"", NULL}, 5000, line, sizeof line),
	    "no start line");
	pid_t kid = cg_fork_into(c, NULL, &e);
	CHECKF(kid >= 0, "%s", e.msg);
	if (kid == 0) {
		size_t n = 32 << 20;
		char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (int round = 0; p != MAP_FAILED && round < 1000; round++)
			for (size_t i = 0; i < n; i += 4096)
				p[i] = (char)round;
		_exit(0);
	}
	bool got = next_line(&r, (const char *[]){"\"event\":\"memory\"", "\"delta\":{", NULL},
	                     20000, line, sizeof line);
	cg_kill(c, SIGKILL, NULL);
	waitpid(kid, NULL, 0);
	kill(w, SIGTERM);
	waitpid(w, NULL, 0);
	close(r.fd);
	CHECKF(got, "no memory event line");
	fprintf(stderr, "%s\n", line);
	const char *d = strstr(line, "\"delta\":{");
	const char *h = strstr(d, "\"high\":");
	CHECKF(h && atoll(h + 7) > 0, "no high delta in %s", line);
	for (int i = 0; i < 100 && cg_remove(c, &e) == -EBUSY; i++)
		usleep(10000);
	CHECKF(cg_remove(c, &e) == 0, "%s", e.msg);
	cg_close(c);
}
