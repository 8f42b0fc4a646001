/* goparse_test.c — the Go parsers on real text: SCHED lines of Go 1.19,
 * 1.20 and the newest runtime, the torn and scheddetail lines of §1.1–1.2,
 * gctrace lines, and the goroutine profiles captured from a leaking service
 * (debug=1, debug=2, ../shared/reference/goroutine-leaks.md §1.3–1.4, §5);
 * the SCHED, scheddetail, gctrace and goroutine-profile output of Go 1.19,
 * 1.26 and 1.27 captured by tests/go/capture-formats.sh (tests/go/formats);
 * then every prefix of them and random mutations, which must never crash,
 * leak, or pass for whole. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/go/goparse.h"
#include "captures.h"

#include <errno.h>
#include <string.h>

static gp_sched S; /* 16 KB: not on the stack */

static gp_sched_kind sched(const char *line) {
	return gp_parse_sched(line, strlen(line), &S);
}

static bool q_is(const int64_t *q, int n, int64_t a, int64_t b, int64_t c, int64_t d) {
	return n == 4 && q[0] == a && q[1] == b && q[2] == c && q[3] == d;
}

/* ─── SCHED ──────────────────────────────────────────────────────────── */

TEST(sched_go119_lines) {
	CHECK(sched("SCHED 0ms: gomaxprocs=4 idleprocs=3 threads=3 spinningthreads=0 idlethreads=0 "
	            "runqueue=0 [0 0 0 0]") == GP_SCHED_OK);
	CHECK(S.ms == 0 && S.gomaxprocs == 4 && S.idleprocs == 3 && S.threads == 3);
	CHECK(S.needspinning == -1 && S.nticks == 0 && q_is(S.runq, S.nprocs, 0, 0, 0, 0));
	CHECK(sched("SCHED 5538ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 "
	            "idlethreads=0 runqueue=402 [100 199 99 100]") == GP_SCHED_OK);
	CHECK(S.ms == 5538 && S.runqueue == 402 && q_is(S.runq, S.nprocs, 100, 199, 99, 100));
	CHECK(sched("SCHED 1508ms: gomaxprocs=4 idleprocs=4 threads=201 spinningthreads=0 "
	            "idlethreads=1 runqueue=0 [0 0 0 0]") == GP_SCHED_OK);
	CHECK(S.threads == 201 && S.idlethreads == 1 && S.idleprocs == 4);
	/* the intended line of the torn sample (§1.1) */
	CHECK(sched("SCHED 1521ms: gomaxprocs=4 idleprocs=2 threads=7 spinningthreads=1 "
	            "idlethreads=3 runqueue=0 [0 0 0 0]\n") == GP_SCHED_OK);
	CHECK(S.ms == 1521 && S.spinningthreads == 1 && S.idlethreads == 3);
}

TEST(sched_go120_and_newest_lines) {
	CHECK(sched("SCHED 1007ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 "
	            "needspinning=1 idlethreads=0 runqueue=590 [ 158 92 78 78 ] "
	            "schedticks=[ 53 52 51 52 ]") == GP_SCHED_OK);
	CHECK(S.ms == 1007 && S.needspinning == 1 && S.runqueue == 590);
	CHECK(q_is(S.runq, S.nprocs, 158, 92, 78, 78) &&
	      q_is(S.schedticks, S.nticks, 53, 52, 51, 52));
	CHECK(
	    sched("SCHED 0ms: gomaxprocs=4 idleprocs=3 threads=2 spinningthreads=0 needspinning=0 "
	          "idlethreads=0 runqueue=0 [ 0 0 0 0 ] schedticks=[ 0 0 0 0 ]") == GP_SCHED_OK);
	CHECK(S.needspinning == 0 && S.threads == 2 && S.nticks == 4);
	/* Go 1.20–1.24: needspinning, unpadded brackets, no schedticks (the
	 * 1.19 sample with the field the runtime added between the two) */
	CHECK(sched("SCHED 200ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 "
	            "needspinning=1 idlethreads=0 runqueue=363 [14 58 10 189]") == GP_SCHED_OK);
	CHECK(S.needspinning == 1 && q_is(S.runq, S.nprocs, 14, 58, 10, 189));
	/* field order is not relied on */
	CHECK(sched("SCHED 7ms: runqueue=1 [2] threads=3 gomaxprocs=1 idleprocs=0 idlethreads=0 "
	            "spinningthreads=0") == GP_SCHED_OK);
	CHECK(S.gomaxprocs == 1 && S.nprocs == 1 && S.runq[0] == 2 && S.runqueue == 1);
}

TEST(sched_torn_sample_is_torn) {
	/* §1.1, real: a SCHED line written token by token, interleaved with the app's log */
	static const char *const torn[] = {
	    "SCHED 09:01:31.904626 app worker=1 msg=139293",
	    "ms: gomaxprocs=09:01:31.904632 app worker=1 msg=139295",
	    " idleprocs=09:01:31.904638 app worker=1 msg=139297",
	    " threads=09:01:31.904643 app worker=1 msg=139299",
	    " spinningthreads=1 idlethreads=3 runqueue=0 [0 0 0 0]",
	};
	for (size_t i = 0; i < sizeof torn / sizeof *torn; i++)
		CHECKF(sched(torn[i]) == GP_SCHED_TORN, "%s", torn[i]);
	/* the app's own lines in between are not ours */
	CHECK(sched("152109:01:31.904629 app worker=1 msg=139294") == GP_NOT_SCHED);
	CHECK(sched("709:01:31.904645 app worker=1 msg=139300") == GP_NOT_SCHED);
	CHECK(sched("2024/01/01 12:00:00 listening on :8080") == GP_NOT_SCHED);
	CHECK(sched("") == GP_NOT_SCHED);
	/* SCHED not at the start: an app fragment glued in front of a whole line */
	CHECK(sched("app worker=1 msg=1SCHED 1521ms: gomaxprocs=4 idleprocs=2 threads=7 "
	            "spinningthreads=1 idlethreads=3 runqueue=0 [0 0 0 0]") == GP_SCHED_TORN);
	/* ... and an app line glued after one */
	CHECK(sched("SCHED 1521ms: gomaxprocs=4 idleprocs=2 threads=7 spinningthreads=1 "
	            "idlethreads=3 runqueue=0 [0 0 0 0]09:01:31 app") == GP_SCHED_TORN);
}

TEST(sched_detail_lines) {
	CHECK(sched("SCHED 1000ms: gomaxprocs=4 idleprocs=4 threads=54 spinningthreads=0 "
	            "idlethreads=1 runqueue=0 gcwaiting=0 nmidlelocked=50 stopwait=0 "
	            "sysmonwait=0") == GP_SCHED_DETAIL);
	CHECK(S.threads == 54 && S.nprocs == 0);
	CHECK(sched("SCHED 1011ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 "
	            "idlethreads=0 runqueue=385 gcwaiting=0 nmidlelocked=0 stopwait=0 "
	            "sysmonwait=0") == GP_SCHED_DETAIL);
	/* Go 1.26+: the header's gcwaiting and sysmonwait are booleans, M and G
	 * lines say nil (tests/go/formats/go1.26.8/sched-detail.txt) */
	CHECK(
	    sched("SCHED 0ms: gomaxprocs=4 idleprocs=3 threads=2 spinningthreads=0 needspinning=0 "
	          "idlethreads=0 runqueue=0 gcwaiting=false nmidlelocked=0 stopwait=0 "
	          "sysmonwait=true") == GP_SCHED_DETAIL);
	CHECK(S.gomaxprocs == 4 && S.needspinning == 0 && S.nprocs == 0);
	CHECK(
	    sched("SCHED 0ms: gomaxprocs=4 idleprocs=3 threads=2 spinningthreads=0 needspinning=0 "
	          "idlethreads=0 runqueue=0 gcwaiting=fals") == GP_SCHED_TORN);
	CHECK(
	    sched("SCHED 0ms: gomaxprocs=4 idleprocs=3 threads=2 spinningthreads=0 needspinning=0 "
	          "idlethreads=0 runqueue=0 nmidlelocked=false") == GP_SCHED_TORN);
	static const char *const detail[] = {
	    "  M2: p=nil curg=nil mallocing=0 throwing=0 preemptoff= locks=0 dying=0 "
	    "spinning=false "
	    "blocked=true lockedg=nil",
	    "  G26: status=4(sync.Mutex.Lock) m=nil lockedm=nil",
	    "  P1: status=1 schedtick=325 syscalltick=0 m=0 runqsize=184 gfreecnt=42 timerslen=0",
	    "  M1: p=-1 curg=-1 mallocing=0 throwing=0 preemptoff= locks=2 dying=0 spinning=false "
	    "blocked=false lockedg=-1",
	    "  G2: status=4(force gc (idle)) m=-1 lockedm=-1",
	    "  G1560: status=1() m=-1 lockedm=-1",
	    "  M51: p=-1 curg=-1 mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=false "
	    "blocked=true lockedg=51",
	    "  G6: status=4(sleep) m=-1 lockedm=5",
	};
	for (size_t i = 0; i < sizeof detail / sizeof *detail; i++)
		CHECKF(sched(detail[i]) == GP_SCHED_DETAIL, "%s", detail[i]);
}

static gp_sched_kind sched_n(const char *s, size_t n) {
	return gp_parse_sched(s, n, &S);
}

TEST(sched_hostile_lines) {
	/* numbers past int64, past int, a list past GP_MAX_PROCS, a P count over it */
	CHECK(sched("SCHED 99999999999999999999999ms: gomaxprocs=1 idleprocs=0 threads=1 "
	            "spinningthreads=0 idlethreads=0 runqueue=0 [0]") == GP_SCHED_TORN);
	CHECK(sched("SCHED 1ms: gomaxprocs=1 idleprocs=0 threads=99999999999 spinningthreads=0 "
	            "idlethreads=0 runqueue=0 [0]") == GP_SCHED_TORN);
	CHECK(sched("SCHED 1ms: gomaxprocs=1 idleprocs=0 threads=1 spinningthreads=0 "
	            "idlethreads=0 runqueue=0 [99999999999999999999]") == GP_SCHED_TORN);
	char big[16384];
	int n = snprintf(big, sizeof big,
	                 "SCHED 1ms: gomaxprocs=%d idleprocs=0 threads=1 spinningthreads=0 "
	                 "idlethreads=0 runqueue=0 [",
	                 GP_MAX_PROCS + 1);
	for (int i = 0; i <= GP_MAX_PROCS; i++)
		n += snprintf(big + n, sizeof big - (size_t)n, i ? " 7" : "7");
	snprintf(big + n, sizeof big - (size_t)n, "]");
	CHECK(sched(big) == GP_SCHED_TORN);
	/* exactly GP_MAX_PROCS is fine */
	n = snprintf(big, sizeof big,
	             "SCHED 1ms: gomaxprocs=%d idleprocs=0 threads=1 spinningthreads=0 "
	             "idlethreads=0 runqueue=0 [",
	             GP_MAX_PROCS);
	for (int i = 0; i < GP_MAX_PROCS; i++)
		n += snprintf(big + n, sizeof big - (size_t)n, i ? " 7" : "7");
	snprintf(big + n, sizeof big - (size_t)n, "]");
	CHECK(sched(big) == GP_SCHED_OK && S.nprocs == GP_MAX_PROCS &&
	      S.runq[GP_MAX_PROCS - 1] == 7);
	/* fewer entries than Ps, a duplicate key, a missing key, idle > Ps */
	CHECK(sched("SCHED 1ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
	            "runqueue=0 [0 0 0]") == GP_SCHED_TORN);
	CHECK(sched("SCHED 1ms: gomaxprocs=1 gomaxprocs=1 idleprocs=0 threads=5 spinningthreads=0 "
	            "idlethreads=0 runqueue=0 [0]") == GP_SCHED_TORN);
	CHECK(sched("SCHED 1ms: gomaxprocs=1 idleprocs=0 spinningthreads=0 idlethreads=0 "
	            "runqueue=0 [0]") == GP_SCHED_TORN);
	CHECK(sched("SCHED 1ms: gomaxprocs=1 idleprocs=2 threads=5 spinningthreads=0 idlethreads=0 "
	            "runqueue=0 [0]") == GP_SCHED_TORN);
	/* an embedded NUL anywhere: torn, and nothing read past len */
	const char line[] = "SCHED 5538ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 "
	                    "idlethreads=0 runqueue=402 [100 199 99 100]";
	char buf[sizeof line];
	for (size_t i = 0; i < sizeof line - 1; i++) {
		memcpy(buf, line, sizeof line);
		buf[i] = '\0';
		CHECKF(sched_n(buf, sizeof line - 1) != GP_SCHED_OK, "NUL at %zu", i);
	}
}

/* Every strict prefix of a real line is not intact, and no prefix crashes. */
TEST(sched_every_prefix_is_not_intact) {
	static const char *const lines[] = {
	    "SCHED 5538ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
	    "runqueue=402 [100 199 99 100]",
	    "SCHED 1007ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 needspinning=1 "
	    "idlethreads=0 runqueue=590 [ 158 92 78 78 ] schedticks=[ 53 52 51 52 ]",
	    "SCHED 0ms: gomaxprocs=4 idleprocs=3 threads=3 spinningthreads=0 idlethreads=0 "
	    "runqueue=0 [0 0 0 0]",
	};
	for (size_t l = 0; l < sizeof lines / sizeof *lines; l++) {
		size_t len = strlen(lines[l]);
		for (size_t n = 0; n < len; n++) {
			char *cut = malloc(n ? n : 1); /* exact size: ASan sees any read past n */
			memcpy(cut, lines[l], n);
			CHECKF(sched_n(cut, n) != GP_SCHED_OK, "line %zu cut at %zu", l, n);
			free(cut);
		}
		CHECK(sched(lines[l]) == GP_SCHED_OK);
	}
}

/* ─── gctrace ────────────────────────────────────────────────────────── */

/* Lines in the format of Go's mgc.go (gcMarkTermination), 1.18+ and older. */
TEST(gc_lines) {
	gp_gc g;
	const char *l = "gc 1 @0.019s 1%: 0.016+0.47+0.002 ms clock, 0.064+0.11/0.39/0.10+0.008 ms "
	                "cpu, 4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 4 P";
	CHECK(gp_parse_gc(l, strlen(l), &g));
	CHECK(g.n == 1 && g.procs == 4 && !g.forced && g.cpu_pct == 1);
	CHECK(g.at_s > 0.0189 && g.at_s < 0.0191);
	CHECK(g.clock_ms > 0.487 && g.clock_ms < 0.489);
	CHECK(g.heap_start_mb == 4 && g.heap_end_mb == 4 && g.heap_live_mb == 0 && g.goal_mb == 4);
	l = "gc 12 @3.456s 2%: 0.018+1.2+0.003 ms clock, 0.072+0.50/1.1/0+0.012 ms cpu, 4->5->2 "
	    "MB, "
	    "5 MB goal, 8 P";
	CHECK(gp_parse_gc(l, strlen(l), &g));
	CHECK(g.n == 12 && g.procs == 8 && g.heap_end_mb == 5 && g.heap_live_mb == 2 &&
	      g.goal_mb == 5);
	l = "gc 7 @120.003s 0%: 0.030+0.51+0.004 ms clock, 0.12+0/0.45/0.80+0.017 ms cpu, 3->3->1 "
	    "MB, 4 MB goal, 0 MB stacks, 0 MB globals, 4 P (forced)\n";
	CHECK(gp_parse_gc(l, strlen(l), &g) && g.forced && g.n == 7);
	/* not gctrace, or cut */
	static const char *const bad[] = {
	    "gc 7 @120.003s 0%: 0.030+0.51+0.004 ms clock",
	    "gcfoo",
	    "gc 7 @120.003s 0%: 0.030+0.51 ms clock, 0.12+0/0.45/0.80+0.017 ms cpu, 3->3->1 MB, 4 "
	    "MB goal, 4 P",
	    "scvg: inuse: 4, idle: 0, sys: 4, released: 0, consumed: 4 (MB)",
	    "gc 1 @0.019s 1%: 0.016+0.47+0.002 ms clock, 0.064+0.11/0.39/0.10+0.008 ms cpu, "
	    "4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 4 P trailing",
	    /* no P: Go never runs with none (tests/fuzz/corpus/gctrace/zero-procs) */
	    "gc 7 @120.003s 0%: 0.030+0.51+0.004 ms clock, 0.12+0/0.45/0.80+0.17 ms cpu, 3->3->1 "
	    "MB, 4 MB goal, 0 MB stacks, 0 MB globals, 0 P (forced)",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECKF(!gp_parse_gc(bad[i], strlen(bad[i]), &g), "%s", bad[i]);
	l = "gc 1 @0.019s 1%: 0.016+0.47+0.002 ms clock, 0.064+0.11/0.39/0.10+0.008 ms cpu, "
	    "4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 4 P";
	for (size_t n = 0; n < strlen(l); n++) {
		char *cut = malloc(n ? n : 1);
		memcpy(cut, l, n);
		CHECKF(!gp_parse_gc(cut, n, &g), "cut at %zu", n);
		free(cut);
	}
}

/* ─── pprof goroutine profiles ──────────────────────────────────────── */

/* §1.3, real (the capture's last "..." dropped) */
static const char DEBUG1[] =
    "goroutine profile: total 3440\n"
    "1494 @ 0x43b296 0x40708c 0x406c3d 0x671309 0x46b281\n"
    "#\t0x671308\tmain.fetchWithTimeout.func1+0x48\t/build/leak/main.go:24\n"
    "\n"
    "1494 @ 0x43b296 0x407e9b 0x407998 0x671345 0x46b281\n"
    "#\t0x671344\tmain.waitForResult+0x24\t/build/leak/main.go:36\n"
    "\n"
    "149 @ 0x43b296 0x407e9b 0x407998 0x67167f 0x46b281\n"
    "# labels: {\"handler\":\"upload\", \"tenant\":\"t42\"}\n"
    "#\t0x67167e\tmain.labelledLeak.func1.1+0x1e\t/build/leak/main.go:44\n"
    "\n"
    "149 @ 0x43b296 0x44c1de 0x44c1b5 0x467325 0x472ff2 0x6719fd 0x46b281\n"
    "#\t0x467324\tsync.runtime_Semacquire+0x24\t/usr/lib/go-1.19/src/runtime/sema.go:62\n"
    "#\t0x472ff1\tsync.(*WaitGroup).Wait+0x51\t/usr/lib/go-1.19/src/sync/waitgroup.go:139\n"
    "#\t0x6719fc\tmain.main.func4+0x1c\t\t/build/leak/main.go:78\n"
    "\n"
    "149 @ 0x43b296 0x44c1de 0x44c1b5 0x467445 0x471825 0x671719 0x6716f5 0x46b281\n"
    "#\t0x467444\tsync.runtime_SemacquireMutex+0x24\t/usr/lib/go-1.19/src/runtime/sema.go:77\n"
    "#\t0x471824\tsync.(*Mutex).lockSlow+0x164\t\t/usr/lib/go-1.19/src/sync/mutex.go:171\n"
    "#\t0x671718\tsync.(*Mutex).Lock+0x38\t\t\t/usr/lib/go-1.19/src/sync/mutex.go:90\n"
    "#\t0x6716f4\tmain.main.func3+0x14\t\t\t/build/leak/main.go:77\n"
    "\n"
    "1 @ 0x43b296 0x407e9b 0x4079d8 0x671879 0x43aed2 0x46b281\n"
    "#\t0x671878\tmain.main+0x138\t\t/build/leak/main.go:72\n"
    "#\t0x43aed1\truntime.main+0x211\t/usr/lib/go-1.19/src/runtime/proc.go:250\n"
    "\n";

/* §1.4, real (trimmed as in the reference) */
static const char DEBUG2[] = "goroutine 1 [chan receive]:\n"
                             "main.main()\n"
                             "\t/build/leak/main.go:72 +0x139\n"
                             "\n"
                             "goroutine 7 [select (no cases), 2 minutes, locked to thread]:\n"
                             "main.main.func2()\n"
                             "\t/build/leak/main.go:61 +0x1c\n"
                             "created by main.main\n"
                             "\t/build/leak/main.go:59 +0x9b\n"
                             "\n"
                             "goroutine 18 [chan send, 2 minutes]:\n"
                             "main.fetchWithTimeout.func1()\n"
                             "\t/build/leak/main.go:24 +0x49\n"
                             "created by main.fetchWithTimeout\n"
                             "\t/build/leak/main.go:22 +0x76\n"
                             "\n"
                             "goroutine 19 [chan receive, 2 minutes]:\n"
                             "main.waitForResult(0x0?)\n"
                             "\t/build/leak/main.go:36 +0x25\n"
                             "created by main.main\n"
                             "\t/build/leak/main.go:75 +0x1fc\n"
                             "\n"
                             "goroutine 43 [semacquire, 2 minutes]:\n"
                             "sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)\n"
                             "\t/usr/lib/go-1.19/src/runtime/sema.go:77 +0x25\n"
                             "sync.(*Mutex).lockSlow(0x927d08)\n"
                             "\t/usr/lib/go-1.19/src/sync/mutex.go:171 +0x165\n"
                             "sync.(*Mutex).Lock(...)\n"
                             "\t/usr/lib/go-1.19/src/sync/mutex.go:90\n"
                             "main.main.func3()\n"
                             "\t/build/leak/main.go:77 +0x39\n"
                             "created by main.main\n"
                             "\t/build/leak/main.go:77 +0x21e\n"
                             "\n"
                             "goroutine 44 [semacquire, 2 minutes]:\n"
                             "sync.runtime_Semacquire(0x0?)\n"
                             "\t/usr/lib/go-1.19/src/runtime/sema.go:62 +0x25\n"
                             "sync.(*WaitGroup).Wait(0x0?)\n"
                             "\t/usr/lib/go-1.19/src/sync/waitgroup.go:139 +0x52\n"
                             "main.main.func4()\n"
                             "\t/build/leak/main.go:78 +0x1d\n"
                             "created by main.main\n"
                             "\t/build/leak/main.go:78 +0x25b\n"
                             "\n"
                             "goroutine 3470 [runnable]:\n"
                             "net/http.(*connReader).startBackgroundRead.func2()\n"
                             "\t/usr/lib/go-1.19/src/net/http/server.go:674\n"
                             "runtime.goexit()\n"
                             "\t/usr/lib/go-1.19/src/runtime/asm_amd64.s:1594 +0x1\n"
                             "created by net/http.(*connReader).startBackgroundRead\n"
                             "\t/usr/lib/go-1.19/src/net/http/server.go:674 +0xca\n";

static gp_profile parse(const char *text, size_t len, int max) {
	gp_profile p;
	char msg[256];
	int r = gp_parse_profile(text, len, max, &p, msg, sizeof msg);
	CHECKF(r == 0, "%s", msg);
	return p;
}

static bool site_is(const gp_stack *s, const char *site, const char *fn, const char *wait,
                    bool blocked) {
	gp_site g;
	if (!gp_stack_site(s, &g))
		return false;
	if (strcmp(g.site, site) || strcmp(g.function, fn) || strcmp(g.wait, wait) ||
	    g.blocked != blocked) {
		fprintf(stderr, "site %s function %s wait %s blocked %d\n", g.site, g.function,
		        g.wait, g.blocked);
		return false;
	}
	return true;
}

TEST(profile_debug1_real) {
	gp_profile p = parse(DEBUG1, sizeof DEBUG1 - 1, 0);
	CHECK(p.debug == 1 && p.total == 3440 && p.nstacks == 6);
	/* the capture was trimmed: its records sum to 3436 of 3440 */
	CHECK(p.truncated);
	const gp_stack *s = p.stacks;
	CHECK(s[0].count == 1494 && s[0].nframes == 1 && s[0].runtime_top);
	CHECK(!strcmp(s[0].frames[0].func, "main.fetchWithTimeout.func1"));
	CHECK(!strcmp(s[0].frames[0].file, "/build/leak/main.go") && s[0].frames[0].line == 24);
	CHECK(!strcmp(s[2].labels, "{\"handler\":\"upload\", \"tenant\":\"t42\"}"));
	CHECK(s[3].nframes == 3 && s[3].count == 149 && s[3].state[0] == '\0' && s[3].goid == 0);
	CHECK(!strcmp(s[3].frames[1].func, "sync.(*WaitGroup).Wait") && s[3].frames[1].line == 139);
	CHECK(s[4].nframes == 4 && !strcmp(s[4].frames[3].func, "main.main.func3"));
	CHECK(s[5].count == 1 && !strcmp(s[5].frames[1].func, "runtime.main"));
	/* LeakProf sites: the program's frame, and what it waits on */
	CHECK(site_is(&s[0], "/build/leak/main.go:24", "main.fetchWithTimeout.func1", "parked",
	              true));
	CHECK(site_is(&s[1], "/build/leak/main.go:36", "main.waitForResult", "parked", true));
	CHECK(
	    site_is(&s[2], "/build/leak/main.go:44", "main.labelledLeak.func1.1", "parked", true));
	CHECK(site_is(&s[3], "/build/leak/main.go:78", "main.main.func4", "sync.WaitGroup.Wait",
	              true));
	CHECK(site_is(&s[4], "/build/leak/main.go:77", "main.main.func3", "sync.Mutex.Lock", true));
	CHECK(site_is(&s[5], "/build/leak/main.go:72", "main.main", "parked", true));
	gp_profile_free(&p);

	/* the same body with the total its records add up to: whole */
	char whole[sizeof DEBUG1];
	memcpy(whole, DEBUG1, sizeof DEBUG1);
	memcpy(strstr(whole, "3440"), "3436", 4);
	p = parse(whole, strlen(whole), 0);
	CHECK(!p.truncated && p.total == 3436);
	gp_profile_free(&p);
	/* bounded: two kept, the total still counted */
	p = parse(DEBUG1, sizeof DEBUG1 - 1, 2);
	CHECK(p.nstacks == 2 && p.total == 3440);
	gp_profile_free(&p);
}

TEST(profile_goroutineleak_header) {
	/* §1.6: "goroutineleak profile: total N" with debug=1's records */
	static const char text[] =
	    "goroutineleak profile: total 6\n"
	    "6 @ 0x43b296 0x40708c 0x406c3d 0x671309 0x46b281\n"
	    "#\t0x671308\tapp.(*Server[...]).AggregateResults.func1+0x48\tapp/server.go:37\n"
	    "\n";
	gp_profile p = parse(text, sizeof text - 1, 0);
	CHECK(p.debug == 1 && p.total == 6 && p.nstacks == 1 && !p.truncated);
	CHECK(site_is(&p.stacks[0], "app/server.go:37", "app.(*Server[...]).AggregateResults.func1",
	              "parked", true));
	gp_profile_free(&p);
}

TEST(profile_debug2_real) {
	gp_profile p = parse(DEBUG2, sizeof DEBUG2 - 1, 0);
	CHECK(p.debug == 2 && p.total == 7 && p.nstacks == 7 && !p.truncated);
	const gp_stack *s = p.stacks;
	CHECK(s[0].goid == 1 && !strcmp(s[0].state, "chan receive") && s[0].count == 1);
	CHECK(s[0].nframes == 1 && s[0].frames[0].line == 72 && !s[0].created_by.func);
	CHECK(s[1].goid == 7 && !strcmp(s[1].state, "select (no cases)") && s[1].wait_minutes == 2);
	CHECK(!strcmp(s[1].created_by.func, "main.main") && s[1].created_by.line == 59);
	CHECK(s[1].created_in == 0);
	CHECK(s[2].goid == 18 && !strcmp(s[2].state, "chan send") && s[2].wait_minutes == 2);
	CHECK(!strcmp(s[4].frames[2].func, "sync.(*Mutex).Lock") && s[4].frames[2].line == 90);
	CHECK(s[6].goid == 3470 && !strcmp(s[6].state, "runnable") && s[6].wait_minutes == 0);
	CHECK(s[6].frames[0].line == 674 && !strcmp(s[6].frames[1].func, "runtime.goexit"));
	CHECK(site_is(&s[0], "/build/leak/main.go:72", "main.main", "chan receive", true));
	CHECK(
	    site_is(&s[1], "/build/leak/main.go:61", "main.main.func2", "select (no cases)", true));
	CHECK(site_is(&s[2], "/build/leak/main.go:24", "main.fetchWithTimeout.func1", "chan send",
	              true));
	CHECK(site_is(&s[3], "/build/leak/main.go:36", "main.waitForResult", "chan receive", true));
	CHECK(site_is(&s[4], "/build/leak/main.go:77", "main.main.func3", "sync.Mutex.Lock", true));
	CHECK(site_is(&s[5], "/build/leak/main.go:78", "main.main.func4", "sync.WaitGroup.Wait",
	              true));
	CHECK(site_is(&s[6], "/usr/lib/go-1.19/src/net/http/server.go:674",
	              "net/http.(*connReader).startBackgroundRead.func2", "runnable", false));
	gp_profile_free(&p);
	p = parse(DEBUG2, sizeof DEBUG2 - 1, 3);
	CHECK(p.nstacks == 3 && p.total == 7);
	gp_profile_free(&p);
}

TEST(profile_debug2_newer_headers) {
	/* §5 headers (Go 1.21 created-by, 1.25 synctest, 1.27 labels) with frames of the
	 * §1.4 capture; "...additional frames elided..." and the gp=/m= debug header */
	static const char text[] =
	    "goroutine 37 [chan send (durable), synctest bubble 1]:\n"
	    "main.fetchWithTimeout.func1()\n"
	    "\t/build/leak/main.go:24 +0x49\n"
	    "created by main.start in goroutine 1\n"
	    "\t/build/leak/main.go:22 +0x76\n"
	    "\n"
	    "goroutine 5 [running] {pattern: \"GET /panic\"}:\n"
	    "main.main()\n"
	    "\t/build/leak/main.go:72 +0x139\n"
	    "\n"
	    "goroutine 9 gp=0xc000007a40 m=nil [chan receive (scan), 3 minutes]:\n"
	    "main.waitForResult(0x0?)\n"
	    "\t/build/leak/main.go:36 +0x25\n"
	    "...additional frames elided...\n"
	    "created by main.main in goroutine 1\n"
	    "\t/build/leak/main.go:75 +0x1fc\n";
	gp_profile p = parse(text, sizeof text - 1, 0);
	CHECK(p.nstacks == 3 && !p.truncated);
	const gp_stack *s = p.stacks;
	CHECK(!strcmp(s[0].state, "chan send") && s[0].created_in == 1);
	CHECK(!strcmp(s[0].created_by.func, "main.start") && s[0].created_by.line == 22);
	CHECK(!strcmp(s[1].state, "running") && !strcmp(s[1].labels, "{pattern: \"GET /panic\"}"));
	gp_site g;
	CHECK(!gp_stack_site(&s[1], &g)); /* running: not waiting anywhere */
	CHECK(s[2].goid == 9 && !strcmp(s[2].state, "chan receive") && s[2].wait_minutes == 3);
	CHECK(s[2].nframes == 1 && s[2].created_in == 1);
	gp_profile_free(&p);
}

/* Shaped like a net/http client connection whose response body was never
 * closed (frames as Go 1.19 prints them); a server-side read; a sleeper. */
TEST(profile_sites_io_and_sleep) {
	static const char text[] =
	    "goroutine 25 [IO wait]:\n"
	    "internal/poll.runtime_pollWait(0x7f2c, 0x72)\n"
	    "\t/usr/lib/go-1.19/src/runtime/netpoll.go:305 +0x89\n"
	    "internal/poll.(*pollDesc).wait(0xc000128000?, 0xc000130000?, 0x0)\n"
	    "\t/usr/lib/go-1.19/src/internal/poll/fd_poll_runtime.go:84 +0x32\n"
	    "internal/poll.(*FD).Read(0xc000128000, {0xc000130000, 0x1000, 0x1000})\n"
	    "\t/usr/lib/go-1.19/src/internal/poll/fd_unix.go:167 +0x25a\n"
	    "net.(*netFD).Read(0xc000128000, {0xc000130000?, 0x0?, 0x0?})\n"
	    "\t/usr/lib/go-1.19/src/net/fd_posix.go:55 +0x29\n"
	    "net/http.(*persistConn).Read(0xc000134000, {0xc000130000?, 0x0?, 0x0?})\n"
	    "\t/usr/lib/go-1.19/src/net/http/transport.go:1929 +0x4e\n"
	    "bufio.(*Reader).Peek(0xc000110060, 0x1)\n"
	    "\t/usr/lib/go-1.19/src/bufio/bufio.go:144 +0x5d\n"
	    "net/http.(*persistConn).readLoop(0xc000134000)\n"
	    "\t/usr/lib/go-1.19/src/net/http/transport.go:2093 +0x1ac\n"
	    "created by net/http.(*Transport).dialConn\n"
	    "\t/usr/lib/go-1.19/src/net/http/transport.go:1751 +0x173e\n"
	    "\n"
	    "goroutine 26 [IO wait]:\n"
	    "internal/poll.runtime_pollWait(0x7f2c, 0x72)\n"
	    "\t/usr/lib/go-1.19/src/runtime/netpoll.go:305 +0x89\n"
	    "net.(*netFD).Read(0xc000128000, {0xc000130000?, 0x0?, 0x0?})\n"
	    "\t/usr/lib/go-1.19/src/net/fd_posix.go:55 +0x29\n"
	    "main.serve(0xc000134000)\n"
	    "\t/build/leak/main.go:50 +0x1ac\n"
	    "created by main.main\n"
	    "\t/build/leak/main.go:48 +0x17\n"
	    "\n"
	    "goroutine 27 [sleep]:\n"
	    "time.Sleep(0x3b9aca00)\n"
	    "\t/usr/lib/go-1.19/src/runtime/time.go:195 +0x135\n"
	    "main.poll()\n"
	    "\t/build/leak/main.go:90 +0x25\n"
	    "created by main.main\n"
	    "\t/build/leak/main.go:80 +0x2b\n";
	gp_profile p = parse(text, sizeof text - 1, 0);
	CHECK(p.nstacks == 3);
	CHECK(site_is(&p.stacks[0], "/usr/lib/go-1.19/src/net/http/transport.go:2093",
	              "net/http.(*persistConn).readLoop", "IO wait", true));
	CHECK(site_is(&p.stacks[1], "/usr/lib/go-1.19/src/net/fd_posix.go:55", "net.(*netFD).Read",
	              "IO wait", false));
	CHECK(site_is(&p.stacks[2], "/build/leak/main.go:90", "main.poll", "sleep", false));
	gp_profile_free(&p);
}

TEST(profile_errors_name_the_line) {
	gp_profile p;
	char msg[256];
	CHECK(gp_parse_profile("", 0, 0, &p, msg, sizeof msg) == -EINVAL);
	CHECK(gp_parse_profile("<html>\n", 7, 0, &p, msg, sizeof msg) == -EINVAL);
	CHECK(strstr(msg, "line 1") && strstr(msg, "not a goroutine profile"));
	static const char bad[] = "goroutine profile: total 2\n"
	                          "1 @ 0x43b296\n"
	                          "#\t0x671308\tmain.f+0x48\t/build/leak/main.go:24\n"
	                          "\n"
	                          "garbage here\n"
	                          "\n";
	CHECK(gp_parse_profile(bad, sizeof bad - 1, 0, &p, msg, sizeof msg) == -EINVAL);
	CHECKF(strstr(msg, "line 5"), "%s", msg);
	CHECK(p.nstacks == 0 && p.stacks == NULL);
}

/* Every prefix of both real profiles (a size cap may cut anywhere): no
 * crash, what is kept is whole, and a cut line always reads as truncated. */
static void every_prefix(const char *text, size_t len, int whole_records) {
	for (size_t n = 0; n <= len; n++) {
		char *cut = malloc(n ? n : 1);
		memcpy(cut, text, n);
		gp_profile p;
		char msg[128];
		int r = gp_parse_profile(cut, n, 0, &p, msg, sizeof msg);
		if (n <= (size_t)(strchr(text, '\n') - text)) { /* the header line is cut */
			free(cut);
			if (r == 0)
				gp_profile_free(&p);
			continue;
		}
		CHECKF(r == 0, "cut at %zu: %s", n, msg);
		CHECKF(p.nstacks <= whole_records, "cut at %zu", n);
		if (cut[n - 1] != '\n')
			CHECKF(p.truncated, "cut at %zu", n);
		if (n < len - 1)
			CHECKF(p.truncated || p.nstacks < whole_records, "cut at %zu", n);
		for (int i = 0; i < p.nstacks; i++)
			for (int f = 0; f < p.stacks[i].nframes; f++)
				CHECK(p.stacks[i].frames[f].func && p.stacks[i].frames[f].file);
		gp_profile_free(&p);
		free(cut);
	}
}

TEST(profile_every_prefix) {
	every_prefix(DEBUG1, sizeof DEBUG1 - 1, 6);
	every_prefix(DEBUG2, sizeof DEBUG2 - 1, 7);
}

/* ─── real captures of Go 1.19, 1.26 and 1.27 (tests/go/formats) ────── */

/* tests/go/capture-formats.sh ran tests/go/capture/main.go under each
 * toolchain: GOMAXPROCS=4, schedtrace and gctrace on, the goroutine profile
 * fetched after 65 s. The program's goroutines wait on its "// AT" lines. */
typedef struct capture {
	const char *ver;      /* the directory under tests/go/formats */
	bool newer_sched;     /* needspinning, padded brackets and schedticks (Go 1.20+ / 1.25+) */
	const char *mutex_st; /* the debug=2 state of a goroutine in sync.Mutex.Lock */
	const char *wg_st;    /* ... and in sync.WaitGroup.Wait */
	bool created_in;      /* "created by F in goroutine N" (Go 1.21+) */
	const char *labels2; /* the labelled goroutine's debug=2 header labels (Go 1.27), or NULL */
	int64_t goid_send;   /* the first sender's goroutine id */
} capture;

static const capture CAPTURES[] = {
    {"go1.19.8", false, "semacquire", "semacquire", false, NULL, 6},
    {"go1.26.8", true, "sync.Mutex.Lock", "sync.WaitGroup.Wait", true, NULL, 2},
    {"go1.27.3", true, "sync.Mutex.Lock", "sync.WaitGroup.Wait", true, "{handler: upload}", 23},
};
#define CAPTURE_LINE_SEND     41
#define CAPTURE_LINE_RECEIVE  45
#define CAPTURE_LINE_SELECT   49
#define CAPTURE_LINE_MUTEX    56
#define CAPTURE_LINE_WG       61
#define CAPTURE_LINE_SLEEP    65
#define CAPTURE_LINE_LABELLED 70
#define CAPTURE_LINE_NOCASES  75
#define CAPTURE_LINE_GO_SEND  87 /* main.main's "go send(i)" */
#define CAPTURE_GOROUTINES    15
#define CAPTURE_PROCS         4
#define CAPTURE_MAX_BYTES     (1 << 20)

/* tests/go/formats/VER/NAME, read whole (run from the repository's root,
 * as tests/run.sh does, or with an absolute __FILE__) */
const char *const capture_versions[CAPTURE_VERSIONS] = {"go1.19.8", "go1.26.8", "go1.27.3"};

char *read_capture(const char *ver, const char *name, size_t *len) {
	char path[512];
	const char *slash = strrchr(__FILE__, '/');
	snprintf(path, sizeof path, "%.*s/formats/%s/%s", (int)(slash - __FILE__), __FILE__, ver,
	         name);
	FILE *f = fopen(path, "r");
	CHECKF(f, "%s: %s", path, strerror(errno));
	char *buf = malloc(CAPTURE_MAX_BYTES);
	*len = fread(buf, 1, CAPTURE_MAX_BYTES, f);
	CHECKF(*len > 0 && *len < CAPTURE_MAX_BYTES && !ferror(f), "%s: empty or too big", path);
	fclose(f);
	return buf;
}

/* "/tmp/moonshim-goformats/VER/capture/main.go:LINE" */
static const char *capture_site(const capture *c, int line) {
	static char site[256];
	snprintf(site, sizeof site, "/tmp/moonshim-goformats/%s/capture/main.go:%d", c->ver, line);
	return site;
}

/* Every line of sched-gc.txt is an intact SCHED line or a whole gctrace
 * line, with the values that run had. */
TEST(capture_sched_and_gctrace) {
	CHECK(sizeof CAPTURES / sizeof *CAPTURES == CAPTURE_VERSIONS);
	for (size_t v = 0; v < sizeof CAPTURES / sizeof *CAPTURES; v++) {
		const capture *c = &CAPTURES[v];
		CHECK(!strcmp(c->ver, capture_versions[v]));
		size_t len;
		char *text = read_capture(c->ver, "sched-gc.txt", &len);
		int nsched = 0, ngc = 0;
		int64_t last_ms = -1, last_gc = 0;
		for (char *line = text, *end; line < text + len; line = end + 1) {
			end = memchr(line, '\n', (size_t)(text + len - line));
			CHECKF(end, "%s: last line without a newline", c->ver);
			size_t n = (size_t)(end - line);
			gp_gc g;
			if (n >= 6 && !memcmp(line, "SCHED ", 6)) {
				CHECKF(gp_parse_sched(line, n, &S) == GP_SCHED_OK, "%s: %.*s",
				       c->ver, (int)n, line);
				CHECKF(S.ms > last_ms, "%s: %.*s", c->ver, (int)n, line);
				last_ms = S.ms;
				CHECK(S.gomaxprocs == CAPTURE_PROCS && S.nprocs == CAPTURE_PROCS);
				CHECK(S.idleprocs <= CAPTURE_PROCS && S.threads >= 2 &&
				      S.runqueue >= 0);
				CHECK(S.idlethreads < S.threads && S.spinningthreads <= S.threads);
				if (c->newer_sched)
					CHECKF(S.needspinning >= 0 && S.nticks == CAPTURE_PROCS,
					       "%s", c->ver);
				else
					CHECKF(S.needspinning == -1 && S.nticks == 0, "%s", c->ver);
				nsched++;
			} else {
				CHECKF(gp_parse_gc(line, n, &g), "%s: %.*s", c->ver, (int)n, line);
				CHECK(g.n == last_gc + 1 && g.procs == CAPTURE_PROCS);
				CHECK(g.forced == (g.n == 1)); /* only main's runtime.GC() */
				CHECK(g.at_s > 0 && g.at_s < 120 && g.clock_ms > 0);
				CHECK(g.heap_live_mb <= g.heap_end_mb && g.goal_mb >= 4);
				last_gc = g.n;
				ngc++;
			}
		}
		/* 65 s at schedtrace=1000; a GC at every 4 MB of 10 MB/s (about
		 * 1/s once the heap is at its ~9 MB steady state) */
		CHECKF(nsched >= 60 && nsched <= 70, "%s: %d SCHED lines", c->ver, nsched);
		CHECKF(ngc >= 30, "%s: %d gc lines", c->ver, ngc);
		free(text);
	}
}

/* scheddetail: the header and every P, M and G line, none taken for a
 * summary line; Go 1.26 prints gcwaiting=false, m=nil where 1.19 printed
 * gcwaiting=0, m=-1. */
TEST(capture_scheddetail) {
	for (size_t v = 0; v < sizeof CAPTURES / sizeof *CAPTURES; v++) {
		const capture *c = &CAPTURES[v];
		size_t len;
		char *text = read_capture(c->ver, "sched-detail.txt", &len);
		int headers = 0, ps = 0, gs = 0;
		for (char *line = text, *end; line < text + len; line = end + 1) {
			end = memchr(line, '\n', (size_t)(text + len - line));
			CHECK(end);
			size_t n = (size_t)(end - line);
			CHECKF(gp_parse_sched(line, n, &S) == GP_SCHED_DETAIL, "%s: %.*s", c->ver,
			       (int)n, line);
			if (!memcmp(line, "SCHED ", 6)) {
				CHECK(S.gomaxprocs == CAPTURE_PROCS && S.nprocs == 0 &&
				      S.threads >= 2);
				headers++;
			}
			ps += !memcmp(line, "  P", 3);
			gs += !memcmp(line, "  G", 3);
		}
		CHECKF(headers >= 2 && ps == headers * CAPTURE_PROCS, "%s: %d headers, %d P lines",
		       c->ver, headers, ps);
		/* the first tick can come before main started its goroutines */
		CHECKF(gs >= CAPTURE_GOROUTINES, "%s: %d G lines", c->ver, gs);
		free(text);
	}
}

static const gp_stack *stack_at(const gp_profile *p, const char *site) {
	for (int i = 0; i < p->nstacks; i++) {
		gp_site g;
		if (gp_stack_site(&p->stacks[i], &g) && !strcmp(g.site, site))
			return &p->stacks[i];
	}
	return NULL;
}

/* debug=1: one record per distinct stack, counts summing to the total; each
 * waiting goroutine of the program found at its line, with its wait. */
TEST(capture_goroutine_debug1) {
	for (size_t v = 0; v < sizeof CAPTURES / sizeof *CAPTURES; v++) {
		const capture *c = &CAPTURES[v];
		size_t len;
		char *text = read_capture(c->ver, "goroutine-debug1.txt", &len);
		gp_profile p = parse(text, len, 0);
		CHECKF(p.debug == 1 && p.total == CAPTURE_GOROUTINES && !p.truncated, "%s", c->ver);
		int64_t sum = 0;
		for (int i = 0; i < p.nstacks; i++)
			sum += p.stacks[i].count;
		CHECKF(sum == CAPTURE_GOROUTINES, "%s: %lld", c->ver, (long long)sum);
		static const struct {
			int line;
			int64_t count;
			const char *fn, *wait;
		} want[] = {
		    {CAPTURE_LINE_SEND, 3, "main.send", "parked"},
		    {CAPTURE_LINE_RECEIVE, 2, "main.receive", "parked"},
		    {CAPTURE_LINE_SELECT, 1, "main.selectTwo", "parked"},
		    {CAPTURE_LINE_MUTEX, 1, "main.lock", "sync.Mutex.Lock"},
		    {CAPTURE_LINE_WG, 1, "main.waitGroup", "sync.WaitGroup.Wait"},
		    {CAPTURE_LINE_SLEEP, 1, "main.sleep", "sleep"},
		    {CAPTURE_LINE_LABELLED, 1, "main.labelledReceive.func1", "parked"},
		    {CAPTURE_LINE_NOCASES, 1, "main.noCases", "parked"},
		};
		for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
			const char *site = capture_site(c, want[k].line);
			const gp_stack *s = stack_at(&p, site);
			CHECKF(s, "%s: no stack at %s", c->ver, site);
			CHECKF(s->count == want[k].count, "%s: %s", c->ver, site);
			CHECKF(site_is(s, site, want[k].fn, want[k].wait,
			               strcmp(want[k].wait, "sleep")),
			       "%s: %s", c->ver, site);
			if (want[k].line == CAPTURE_LINE_LABELLED)
				CHECKF(s->labels && !strcmp(s->labels, "{\"handler\":\"upload\"}"),
				       "%s", c->ver);
			else
				CHECKF(!s->labels, "%s: %s", c->ver, site);
		}
		gp_profile_free(&p);
		free(text);
	}
}

/* debug=2: one record per goroutine with its state, minutes waited and
 * creator; the states and header forms differ between the versions. */
TEST(capture_goroutine_debug2) {
	for (size_t v = 0; v < sizeof CAPTURES / sizeof *CAPTURES; v++) {
		const capture *c = &CAPTURES[v];
		size_t len;
		char *text = read_capture(c->ver, "goroutine-debug2.txt", &len);
		gp_profile p = parse(text, len, 0);
		CHECKF(p.debug == 2 && p.total == CAPTURE_GOROUTINES &&
		           p.nstacks == CAPTURE_GOROUTINES && !p.truncated,
		       "%s: %lld", c->ver, (long long)p.total);
		/* the goroutine writing the profile, then main in IO wait */
		CHECK(!strcmp(p.stacks[0].state, "running"));
		CHECK(p.stacks[1].goid == 1 && !strcmp(p.stacks[1].state, "IO wait"));
		static const struct {
			int line;
			const char *fn, *state, *wait;
		} want[] = {
		    {CAPTURE_LINE_SEND, "main.send", "chan send", "chan send"},
		    {CAPTURE_LINE_RECEIVE, "main.receive", "chan receive", "chan receive"},
		    {CAPTURE_LINE_SELECT, "main.selectTwo", "select", "select"},
		    {CAPTURE_LINE_MUTEX, "main.lock", NULL, "sync.Mutex.Lock"},
		    {CAPTURE_LINE_WG, "main.waitGroup", NULL, "sync.WaitGroup.Wait"},
		    {CAPTURE_LINE_SLEEP, "main.sleep", "sleep", "sleep"},
		    {CAPTURE_LINE_LABELLED, "main.labelledReceive.func1", "chan receive",
		     "chan receive"},
		    {CAPTURE_LINE_NOCASES, "main.noCases", "select (no cases)",
		     "select (no cases)"},
		};
		for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
			const char *site = capture_site(c, want[k].line);
			const gp_stack *s = stack_at(&p, site);
			CHECKF(s, "%s: no goroutine at %s", c->ver, site);
			const char *state = want[k].state                        ? want[k].state
			                    : want[k].line == CAPTURE_LINE_MUTEX ? c->mutex_st
			                                                         : c->wg_st;
			CHECKF(!strcmp(s->state, state), "%s: %s: state %s", c->ver, site,
			       s->state);
			CHECKF(s->wait_minutes == 1 && s->count == 1, "%s: %s", c->ver, site);
			CHECKF(site_is(s, site, want[k].fn, want[k].wait,
			               strcmp(want[k].wait, "sleep")),
			       "%s: %s", c->ver, site);
			CHECKF(!strcmp(s->created_by.func, "main.main"), "%s: %s", c->ver, site);
			CHECKF(s->created_in == (c->created_in ? 1 : 0), "%s: %s", c->ver, site);
			bool labelled = want[k].line == CAPTURE_LINE_LABELLED;
			if (labelled && c->labels2)
				CHECKF(s->labels && !strcmp(s->labels, c->labels2), "%s: labels %s",
				       c->ver, s->labels ? s->labels : "(none)");
			else
				CHECKF(!s->labels, "%s: %s: labels %s", c->ver, site, s->labels);
		}
		/* the three senders: consecutive ids, one "go" statement */
		const gp_stack *s = stack_at(&p, capture_site(c, CAPTURE_LINE_SEND));
		CHECKF(s->goid == c->goid_send, "%s: goroutine %lld", c->ver, (long long)s->goid);
		CHECK(s->created_by.line == CAPTURE_LINE_GO_SEND);
		int senders = 0;
		for (int i = 0; i < p.nstacks; i++)
			if (p.stacks[i].created_by.func &&
			    p.stacks[i].created_by.line == CAPTURE_LINE_GO_SEND) {
				CHECK(p.stacks[i].goid == c->goid_send + senders);
				senders++;
			}
		CHECK(senders == 3);
		gp_profile_free(&p);
		free(text);
	}
}

/* every prefix of the real debug=1 and debug=2 texts (the size cap may cut
 * anywhere) */
TEST(capture_every_prefix) {
	for (size_t v = 0; v < sizeof CAPTURES / sizeof *CAPTURES; v++) {
		size_t len;
		char *text = read_capture(CAPTURES[v].ver, "goroutine-debug2.txt", &len);
		every_prefix(text, len, CAPTURE_GOROUTINES);
		free(text);
		text = read_capture(CAPTURES[v].ver, "goroutine-debug1.txt", &len);
		gp_profile p = parse(text, len, 0);
		every_prefix(text, len, p.nstacks);
		gp_profile_free(&p);
		free(text);
	}
}

/* ─── mutations (run under ASan by the go-asan suite) ───────────────── */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void) {
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t mutate(const char *src, size_t len, char *dst, size_t cap) {
	size_t n = len < cap ? len : cap;
	memcpy(dst, src, n);
	int edits = 1 + (int)(next_rand() % 8);
	static const char pieces[][12] = {"\n",  "\t",          " ",          "[",  "]",
	                                  "(",   ")",           ":",          "\0", "0x",
	                                  "+0x", "99999999999", "goroutine ", "# ", "..."};
	for (int e = 0; e < edits && n; e++) {
		size_t at = next_rand() % n;
		switch (next_rand() % 4) {
		case 0: /* flip a byte */
			dst[at] = (char)next_rand();
			break;
		case 1: { /* delete a run */
			size_t k = 1 + next_rand() % 16;
			k = k > n - at ? n - at : k;
			memmove(dst + at, dst + at + k, n - at - k);
			n -= k;
			break;
		}
		case 2: { /* insert a piece of the grammar */
			const char *pc = pieces[next_rand() % (sizeof pieces / sizeof *pieces)];
			size_t k = pc[0] ? strlen(pc) : 1;
			if (n + k > cap)
				break;
			memmove(dst + at + k, dst + at, n - at);
			memcpy(dst + at, pc, k);
			n += k;
			break;
		}
		default: /* cut */
			n = at;
		}
	}
	return n;
}

TEST(mutations_never_crash) {
	static const char *const sched_lines[] = {
	    "SCHED 5538ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 idlethreads=0 "
	    "runqueue=402 [100 199 99 100]",
	    "SCHED 1007ms: gomaxprocs=4 idleprocs=0 threads=5 spinningthreads=0 needspinning=1 "
	    "idlethreads=0 runqueue=590 [ 158 92 78 78 ] schedticks=[ 53 52 51 52 ]",
	};
	const char *gc = "gc 1 @0.019s 1%: 0.016+0.47+0.002 ms clock, 0.064+0.11/0.39/0.10+0.008 "
	                 "ms cpu, 4->4->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 4 P";
	size_t cap = sizeof DEBUG2 * 2;
	char *buf = malloc(cap);
	long rounds = scaled(30000);
	for (long i = 0; i < rounds; i++) {
		const char *src = i % 4 == 0   ? DEBUG1
		                  : i % 4 == 1 ? DEBUG2
		                  : i % 4 == 2 ? gc
		                               : sched_lines[i % 8 == 3];
		size_t n = mutate(src, strlen(src), buf, cap);
		char *exact = malloc(n ? n : 1); /* exact size, so ASan catches an overread */
		memcpy(exact, buf, n);
		gp_profile p;
		char msg[64];
		if (gp_parse_profile(exact, n, 4, &p, msg, sizeof msg) == 0) {
			CHECK(p.nstacks <= 4);
			for (int k = 0; k < p.nstacks; k++) {
				gp_site g;
				gp_stack_site(&p.stacks[k], &g);
			}
			gp_profile_free(&p);
		}
		gp_gc g;
		gp_parse_gc(exact, n, &g);
		gp_parse_sched(exact, n, &S);
		free(exact);
	}
	free(buf);
}
