/*
 * goparse.h — what a Go program tells about itself, parsed (prefix gp_):
 * the runtime's SCHED lines (GODEBUG=schedtrace=N) and gctrace lines
 * (GODEBUG=gctrace=1) from its stderr, and the pprof goroutine profile
 * (/debug/pprof/goroutine?debug=1 and debug=2, /debug/pprof/goroutineleak).
 * Formats: docs/go-watch.md §1.
 *
 * Pure functions over text: no I/O, no allocation but what the result
 * owns; every input may be hostile (torn, truncated, huge), and a parser
 * says "not mine" or "torn" rather than guessing.
 */
#ifndef MOONSHIM_GOPARSE_H
#define MOONSHIM_GOPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GP_MAX_PROCS  1024 /* per-P lists longer than this: torn */
#define GP_MAX_FRAMES 256  /* frames kept per stack (Go prints at most 100, then elides) */

/* ─── SCHED lines ───────────────────────────────────────────────────── */

typedef struct gp_sched {
	int64_t
	    ms; /* ms since the runtime's first schedtrace (drifts; a decrease: a new process) */
	int gomaxprocs, idleprocs, threads, spinningthreads, idlethreads;
	int needspinning; /* Go >= 1.20; -1 when absent */
	int64_t runqueue; /* global run queue */
	int nprocs;       /* entries in runq (== gomaxprocs on an intact line) */
	int64_t runq[GP_MAX_PROCS];
	int nticks; /* schedticks=[...] (Go ~1.25+), 0 when absent */
	int64_t schedticks[GP_MAX_PROCS];
} gp_sched;

typedef enum {
	GP_NOT_SCHED = 0, /* not a SCHED line (the application's own output) */
	GP_SCHED_OK,      /* an intact summary line, *out filled */
	GP_SCHED_TORN,    /* starts like one but is not whole (interleaved writes) */
	GP_SCHED_DETAIL,  /* a scheddetail line (P0:, M1:, G1:, or its SCHED header) */
} gp_sched_kind;

/* One line without its newline. Field order is not relied on (key=value
 * tokens; both "[1 2]" and "[ 1 2 ]"; optional needspinning and
 * schedticks); a line is intact only if every field of its version is
 * there and the per-P list has gomaxprocs entries (padded brackets and
 * schedticks came in the same runtime change: one without the other is a
 * line cut short).
 * Also TORN: a line that does not start with "SCHED " but carries a piece
 * of one ("SCHED <digit>" further in, or a runtime key such as
 * " idlethreads=" / "gomaxprocs="): a fragment of an interleaved line.
 * On DETAIL for the "SCHED …: … gcwaiting=…" header, *out holds the
 * summary fields it carries (nprocs 0); on TORN, *out is unspecified. */
gp_sched_kind gp_parse_sched(const char *line, size_t len, gp_sched *out);

/* ─── gctrace lines ─────────────────────────────────────────────────── */

/* "gc 12 @3.456s 2%: 0.018+1.2+0.003 ms clock, ... 4->5->2 MB, 5 MB goal, ... 8 P" */
typedef struct gp_gc {
	int64_t n;       /* GC number */
	double at_s;     /* seconds since start */
	double cpu_pct;  /* share of CPU spent in GC since start */
	double clock_ms; /* wall time of the three phases, summed */
	double heap_start_mb, heap_end_mb, heap_live_mb, goal_mb;
	int procs;
	bool forced; /* "(forced)" */
} gp_gc;

/* true if the line is a whole gctrace line (out filled). */
bool gp_parse_gc(const char *line, size_t len, gp_gc *out);

/* ─── pprof goroutine profiles ──────────────────────────────────────── */

typedef struct gp_frame {
	char *func; /* "main.leak.func1", "net/http.(*persistConn).readLoop" */
	char *file; /* "/build/leak/main.go" */
	int line;
} gp_frame;

/* One stack: debug=1 groups goroutines with the same stack (count > 1);
 * debug=2 has one goroutine per record, with its state. */
typedef struct gp_stack {
	int64_t count;
	char state[48];   /* debug=2: "chan receive", "select", "semacquire", "IO wait"... ("" at
	                     debug=1) */
	int wait_minutes; /* debug=2: ", N minutes" (0 when absent) */
	int64_t goid;     /* debug=2: goroutine N (0 at debug=1) */
	gp_frame *frames; /* innermost first */
	int nframes;
	gp_frame created_by; /* "created by F in goroutine N" (func NULL when absent) */
	int64_t created_in;  /* the N of "in goroutine N" (0 when absent) */
	char *labels; /* debug=1 "# labels: {...}" text, debug=2 " {...}" header labels, or NULL */
	bool leaked;  /* debug=2: the state said " (leaked)" (Go >= 1.26's goroutineleak
	               * detection proved it unreachable; docs/go-watch.md §1.6) */
	bool runtime_top; /* debug=1: the first printed frame is not the first PC of "@":
	                   * runtime frames (gopark, chanrecv1, ...) were hidden above it, so
	                   * the goroutine is parked in the runtime (added for gp_stack_site) */
} gp_stack;

typedef struct gp_profile {
	int debug;     /* 1 or 2 */
	int64_t total; /* debug=1: "goroutine profile: total N"; debug=2: records seen */
	gp_stack *stacks;
	int nstacks;
	bool truncated; /* the text ended mid-record (size cap): the rest is missing */
} gp_profile;

/* Parse a whole profile body (debug=1 or debug=2, detected from the text;
 * the goroutineleak profile has debug=1's form). 0, or -EINVAL with a
 * message naming the line (-ENOMEM); on error *out is empty. Bounded: at
 * most max_stacks records are kept (the total still counts every one;
 * max_stacks <= 0: no bound). A record is whole when a blank line ends it
 * (debug=1 ends every record so), or, for debug=2's last record, when it
 * ends where stacks end ("created by" and its file line; for goroutine 1,
 * main.main / runtime.main / runtime.goexit); a line
 * without its '\n', a cut record, or debug=1 counts summing below the
 * total set truncated, and the cut record is dropped. */
int gp_parse_profile(const char *text, size_t len, int max_stacks, gp_profile *out, char *msg,
                     size_t msg_len);
void gp_profile_free(gp_profile *p);

/* Where a stack waits, LeakProf-style: its first frame that is not in the
 * runtime or the standard library's sync/chan/select/net internals
 * (runtime.*, sync.*, internal/..., ...), as "file:line" and the function.
 * The wait kind ("chan send", "chan receive", "select", "sync.Mutex.Lock",
 * "sync.WaitGroup.Wait", "IO wait", "sleep", ...) from the state (debug=2)
 * or the top frames (debug=1: runtime.chanrecv1, runtime.selectgo,
 * sync.runtime_SemacquireMutex, ...). false if the stack is running or
 * has no frame of the program. */
/* The wait is "parked" for a debug=1 stack whose runtime frames were hidden
 * (runtime_top) and no visible frame names the operation: chan send, chan
 * receive and select look alike there. net/http.(*persistConn).readLoop
 * and writeLoop (an HTTP response body never read or closed) are blocked
 * candidates whatever their wait, with the loop's frame as the site. */
typedef struct gp_site {
	char site[256]; /* "main.go:24" with the file's path as given */
	char function[192];
	char wait[48];
	bool blocked; /* parked on a channel, select or sync primitive: a leak candidate */
} gp_site;
bool gp_stack_site(const gp_stack *s, gp_site *out);

#endif
