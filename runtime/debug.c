/*
 * debug.c — goroutine dumps (on demand and on SIGQUIT) and the leak report.
 * Dumps read other goroutines' fields without stopping them: every field
 * shown is written atomically, so a line may be a moment stale but never
 * torn.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S rt__sched

int rt__dump_requested;
static struct sigaction old_quit;
static bool quit_installed;

void rt__sysmon_wake(void);

static void on_sigquit(int sig) {
	(void)sig;
	__atomic_store_n(&rt__dump_requested, 1, __ATOMIC_RELEASE);
	rt__sysmon_wake(); /* futex wake: async-signal-safe */
}

void rt__debug_init(void) {
	rt__dump_requested = 0;
	quit_installed = false;
	if (S.cfg.no_sigquit_dump)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigquit;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	quit_installed = sigaction(SIGQUIT, &sa, &old_quit) == 0;
}

void rt__debug_fini(void) {
	if (quit_installed)
		sigaction(SIGQUIT, &old_quit, NULL);
	quit_installed = false;
}

const char *rt__status_name(rt_g *g) {
	switch (arl(&g->status)) {
	case G_DEAD:
		return "dead";
	case G_RUNNABLE:
		return "runnable";
	case G_RUNNING:
		return "running";
	case G_SYSCALL:
		return "syscall";
	default: {
		const char *r = arl(&g->wait_reason);
		return r ? r : "waiting";
	}
	}
}

void rt__dump_g(int fd, rt_g *g, int64_t now) {
	char line[512];
	int st = arl(&g->status);
	int n;
	if (st == G_WAITING || st == G_SYSCALL) {
		int64_t since = arl(&g->wait_since);
		n = snprintf(line, sizeof line,
		             "goroutine %llu [%s, %lld ms]:", (unsigned long long)arl(&g->id),
		             rt__status_name(g),
		             (long long)(since && now > since ? (now - since) / 1000000 : 0));
	} else {
		n = snprintf(line, sizeof line,
		             "goroutine %llu [%s]:", (unsigned long long)arl(&g->id),
		             rt__status_name(g));
	}
	if (n < 0 || n >= (int)sizeof line)
		n = (int)sizeof line - 1;
	n +=
	    snprintf(line + n, sizeof line - (size_t)n, " \"%s\" created by goroutine %llu at %s\n",
	             arl(&g->label) ? arl(&g->label) : "", (unsigned long long)arl(&g->parent),
	             arl(&g->where) ? arl(&g->where) : "?");
	if (n >= (int)sizeof line)
		n = (int)sizeof line - 1;
	ssize_t r = write(fd, line, (size_t)n);
	(void)r;
}

void rt_dump(int fd) {
	int64_t now = rt__nanotime();
	char head[128];
	int n = snprintf(head, sizeof head, "moonshim: goroutine dump, %d live\n", rt_goroutines());
	ssize_t r = write(fd, head, (size_t)n);
	(void)r;
	rt__lock(&S.glock);
	for (rt_g *g = S.allgs; g; g = g->allnext)
		if (arl(&g->status) != G_DEAD)
			rt__dump_g(fd, g, now);
	rt__unlock(&S.glock);
}

int rt_goroutine_info(rt_ginfo *out, int max) {
	int64_t now = rt__nanotime();
	int n = 0;
	rt__lock(&S.glock);
	for (rt_g *g = S.allgs; g; g = g->allnext) {
		int st = arl(&g->status);
		if (st == G_DEAD)
			continue;
		if (n < max) {
			int64_t since = arl(&g->wait_since);
			const char *label = arl(&g->label), *where = arl(&g->where);
			out[n] = (rt_ginfo){
			    .id = arl(&g->id),
			    .label = label ? label : "",
			    .where = where ? where : "?",
			    .state = rt__status_name(g),
			    .waiting = st == G_WAITING,
			    .wait_ns = st == G_WAITING && since && now > since ? now - since : 0};
		}
		n++;
	}
	rt__unlock(&S.glock);
	return n;
}

int rt_leak_report(int fd) {
	int64_t now = rt__nanotime();
	rt_g *self = rt__getg();
	int count = 0;
	rt__lock(&S.glock);
	for (rt_g *g = S.allgs; g; g = g->allnext)
		if (g != self && arl(&g->status) == G_WAITING)
			count++;
	if (count) {
		char head[128];
		int n = snprintf(head, sizeof head, "moonshim: found %d blocked goroutine(s):\n",
		                 count);
		ssize_t r = write(fd, head, (size_t)n);
		(void)r;
		for (rt_g *g = S.allgs; g; g = g->allnext)
			if (g != self && arl(&g->status) == G_WAITING)
				rt__dump_g(fd, g, now);
	}
	rt__unlock(&S.glock);
	return count;
}
