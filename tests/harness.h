/*
 * harness.h — the test harness: TEST(name) registers a case; the runner
 * forks one child per case (a crash or hang fails that case only), runs
 * cases in parallel, and ends with "N passed, N failed".
 */
#ifndef MOONSHIM_HARNESS_H
#define MOONSHIM_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "rt.h"

typedef void (*test_fn)(void);
void harness_register(const char *name, test_fn fn, const char *file);

#define TEST(name)                                                                                 \
	static void name(void);                                                                    \
	__attribute__((constructor)) static void reg_##name(void) {                                \
		harness_register(#name, name, __FILE__);                                           \
	}                                                                                          \
	static void name(void)

/* Fail the case with a message naming the line. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			fflush(stderr);                                                            \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)
#define CHECKF(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			fflush(stderr);                                                            \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* n divided by $MOONSHIM_TEST_SCALE (sanitizer and qemu runs shrink loads). */
long scaled(long n);
/* Run fn as the main goroutine on `procs` P's and check that it returned 0
 * and leaked no goroutine. */
void run_rt(int procs, int (*fn)(void *), void *arg);

#include <unistd.h>
#endif
