/*
 * harness.c — the runner behind TEST(): forks a child per case, runs up to
 * $TEST_JOBS (default 2) at once with a timeout each, shows the output of
 * failed cases, and prints "N passed, N failed" (exit 1 on any failure).
 * Arguments filter cases by substring.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_TESTS         256
#define DEFAULT_TIMEOUT_S 60

typedef struct {
	const char *name, *file;
	test_fn fn;
	pid_t pid;
	struct timespec start;
	char out[64];
	int status;
} test_case;

static test_case tests[MAX_TESTS];
static int ntests;

void harness_register(const char *name, test_fn fn, const char *file) {
	if (ntests < MAX_TESTS)
		tests[ntests++] = (test_case){.name = name, .fn = fn, .file = file};
}

long scaled(long n) {
	const char *e = getenv("MOONSHIM_TEST_SCALE");
	long s = e ? atol(e) : 1;
	if (s < 1)
		s = 1;
	return n / s > 0 ? n / s : 1;
}

void run_rt(int procs, int (*fn)(void *), void *arg) {
	rt_config cfg = {.procs = procs, .quiet_leaks = false};
	int r = rt_main(&cfg, fn, arg);
	CHECKF(r == 0, "main goroutine returned %d", r);
	CHECKF(rt_exit_leaks() == 0, "%d goroutine(s) leaked", rt_exit_leaks());
}

static double elapsed_ms(struct timespec *a) {
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static void start(test_case *t) {
	snprintf(t->out, sizeof t->out, "/tmp/moonshim-test-%d-%s.log", getpid(), t->name);
	clock_gettime(CLOCK_MONOTONIC, &t->start);
	fflush(NULL);
	t->pid = fork();
	if (t->pid == 0) {
		FILE *f = freopen(t->out, "w", stderr);
		(void)f;
		setvbuf(stderr, NULL, _IONBF, 0);
		alarm(DEFAULT_TIMEOUT_S);
		t->fn();
		fflush(NULL);
		_exit(0);
	}
}

static void show_output(test_case *t) {
	FILE *f = fopen(t->out, "r");
	if (!f)
		return;
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof line, f) && n++ < 60)
		fprintf(stdout, "    | %s", line);
	fclose(f);
}

static bool selected(const char *name, int argc, char **argv) {
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

int main(int argc, char **argv) {
	const char *j = getenv("TEST_JOBS");
	int jobs = j ? atoi(j) : 2;
	if (jobs < 1)
		jobs = 1;
	const char *suite = getenv("TEST_SUITE") ? getenv("TEST_SUITE") : "runtime";
	setvbuf(stdout, NULL, _IOLBF, 0);
	int next = 0, running = 0, passed = 0, failed = 0;
	for (;;) {
		while (running < jobs && next < ntests) {
			test_case *t = &tests[next++];
			if (!selected(t->name, argc, argv))
				continue;
			start(t);
			running++;
		}
		if (!running)
			break;
		int st;
		pid_t pid = wait(&st);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < next; i++) {
			test_case *t = &tests[i];
			if (t->pid != pid)
				continue;
			t->pid = 0;
			running--;
			double ms = elapsed_ms(&t->start);
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				passed++;
				printf("ok   %s/%s (%.0f ms)\n", suite, t->name, ms);
				if (getenv("TEST_VERBOSE")) /* the numbers a passing case printed */
					show_output(t);
			} else {
				failed++;
				if (WIFSIGNALED(st))
					printf("FAIL %s/%s (%.0f ms): killed by signal %d%s\n",
					       suite, t->name, ms, WTERMSIG(st),
					       WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
				else
					printf("FAIL %s/%s (%.0f ms): exit %d\n", suite, t->name,
					       ms, WEXITSTATUS(st));
				show_output(t);
			}
			unlink(t->out);
		}
	}
	printf("%s: %d passed, %d failed\n", suite, passed, failed);
	return failed ? 1 : 0;
}
