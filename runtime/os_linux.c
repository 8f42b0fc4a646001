/*
 * os_linux.c — the few Linux primitives the runtime sleeps on: futex wait
 * and wake, and errno read on the thread we are actually on.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int rt__futex_wait(uint32_t *addr, uint32_t val, int64_t timeout_ns) {
	struct timespec ts, *tp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tp = &ts;
	}
	return (int)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

void rt__futex_wake(uint32_t *addr, int n) {
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* errno's address is thread-local and may be cached across a park by the
 * caller's compiler; this reads it afresh. */
RT_NOINLINE int rt__errno(void) {
	__asm__ volatile("" ::: "memory");
	return errno;
}
