/* goparse.c — parsers for what a Go program prints about itself: SCHED
 * lines, gctrace lines and pprof goroutine profiles (debug=1 and debug=2),
 * and the LeakProf-style blocking site of a stack. Formats and the real
 * samples they were checked on: docs/go-watch.md §1.
 *
 * Every input is hostile: nothing is read past len, NUL bytes are ordinary
 * characters that match no grammar, numbers are parsed with overflow
 * checks, and a line that is not whole is "torn", never guessed at. */
#define _GNU_SOURCE
#include "goparse.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEC_MAX_DIGITS 18 /* 10^18 < INT64_MAX: more digits is hostile, not a count */

/* ─── a cursor over bytes ───────────────────────────────────────────── */

typedef struct cur {
	const char *p, *end;
} cur;

static bool at_end(const cur *c) {
	return c->p >= c->end;
}

static bool eat(cur *c, const char *lit) {
	size_t n = strlen(lit);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool is_digit(char ch) {
	return ch >= '0' && ch <= '9';
}

/* A non-negative decimal integer of at most DEC_MAX_DIGITS digits. */
static bool dec_i64(cur *c, int64_t *v) {
	int64_t x = 0;
	int n = 0;
	while (!at_end(c) && is_digit(*c->p)) {
		if (++n > DEC_MAX_DIGITS)
			return false;
		x = x * 10 + (*c->p++ - '0');
	}
	*v = x;
	return n > 0;
}

static bool dec_int(cur *c, int *v) {
	int64_t x;
	if (!dec_i64(c, &x) || x > INT_MAX)
		return false;
	*v = (int)x;
	return true;
}

/* digits[.digits]: the runtime's own decimal prints (no exponent, no sign). */
static bool dec_double(cur *c, double *v) {
	int64_t whole;
	if (!dec_i64(c, &whole))
		return false;
	double x = (double)whole, scale = 1;
	if (!at_end(c) && *c->p == '.') {
		c->p++;
		int n = 0;
		while (!at_end(c) && is_digit(*c->p)) {
			if (++n > DEC_MAX_DIGITS)
				return false;
			scale /= 10;
			x += (*c->p++ - '0') * scale;
		}
		if (!n)
			return false;
	}
	*v = x;
	return true;
}

/* "0x1f": a hexadecimal word. */
static bool hex_u64(cur *c, uint64_t *v) {
	if (!eat(c, "0x"))
		return false;
	uint64_t x = 0;
	int n = 0;
	for (; !at_end(c); c->p++, n++) {
		char ch = *c->p;
		int d = is_digit(ch)               ? ch - '0'
		        : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
		        : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
		                                   : -1;
		if (d < 0)
			break;
		if (n >= 16)
			return false;
		x = x << 4 | (uint64_t)d;
	}
	*v = x;
	return n > 0;
}

static bool starts(const char *s, size_t n, const char *lit) {
	size_t k = strlen(lit);
	return n >= k && memcmp(s, lit, k) == 0;
}

static bool has_prefix(const char *s, const char *lit) {
	return strncmp(s, lit, strlen(lit)) == 0;
}

/* ─── SCHED lines ───────────────────────────────────────────────────── */

/* Keys of the summary line; the bit says which were seen (duplicates: torn). */
enum {
	K_GOMAXPROCS,
	K_IDLEPROCS,
	K_THREADS,
	K_SPINNING,
	K_NEEDSPINNING,
	K_IDLETHREADS,
	K_RUNQUEUE,
	K_RUNQ_LIST,
	K_SCHEDTICKS,
	K_DETAIL, /* gcwaiting=, nmidlelocked=, stopwait=, sysmonwait=: the scheddetail header */
	K_PADDED, /* "[ 1 2 ]": the runtime that pads brackets also prints schedticks=[...] */
};
#define REQUIRED_KEYS                                                                              \
	(1u << K_GOMAXPROCS | 1u << K_IDLEPROCS | 1u << K_THREADS | 1u << K_SPINNING |             \
	 1u << K_IDLETHREADS | 1u << K_RUNQUEUE | 1u << K_RUNQ_LIST)

/* Runtime tokens that only a SCHED line carries: in a line that does not
 * start with "SCHED " they are a fragment of one (§1.1, token-per-write). */
static const char *const sched_fragments[] = {
    "gomaxprocs=",   " idleprocs=", " spinningthreads=", " needspinning=",
    " idlethreads=", " runqueue=",  "schedticks=["};
/* Tokens common enough in an app's own text to count only at a line's start,
 * where the runtime's write (" threads=") begins a fragment. */
static const char *const sched_fragment_starts[] = {" threads=", "ms: "};

static bool looks_like_fragment(const char *line, size_t len) {
	for (const char *p = line; (p = memmem(p, len - (size_t)(p - line), "SCHED ", 6));) {
		p += 6;
		if (p < line + len && is_digit(*p))
			return true;
	}
	for (size_t i = 0; i < sizeof sched_fragments / sizeof *sched_fragments; i++)
		if (memmem(line, len, sched_fragments[i], strlen(sched_fragments[i])))
			return true;
	for (size_t i = 0; i < sizeof sched_fragment_starts / sizeof *sched_fragment_starts; i++)
		if (starts(line, len, sched_fragment_starts[i]))
			return true;
	return false;
}

/* "  P0: ...", "  M12: ...", "  G1560: ...": a scheddetail line (§1.2). */
static bool is_detail_line(const char *line, size_t len) {
	if (len < 5 || line[0] != ' ' || line[1] != ' ' ||
	    (line[2] != 'P' && line[2] != 'M' && line[2] != 'G'))
		return false;
	size_t i = 3;
	while (i < len && is_digit(line[i]))
		i++;
	return i > 3 && i < len && line[i] == ':';
}

/* "[0 0 1]" or "[ 0 0 1 ]" into v (at most GP_MAX_PROCS entries). */
static bool int_list(cur *c, int64_t *v, int *n) {
	if (!eat(c, "["))
		return false;
	*n = 0;
	for (;;) {
		while (!at_end(c) && *c->p == ' ')
			c->p++;
		if (at_end(c))
			return false;
		if (*c->p == ']') {
			c->p++;
			return true;
		}
		if (*n >= GP_MAX_PROCS || !dec_i64(c, &v[*n]))
			return false;
		(*n)++;
		if (at_end(c) || (*c->p != ' ' && *c->p != ']'))
			return false;
	}
}

static bool sched_int(cur *c, unsigned *seen, int key, int *field) {
	if (*seen & 1u << key)
		return false;
	*seen |= 1u << key;
	return dec_int(c, field);
}

static bool sched_token(cur *c, gp_sched *out, unsigned *seen) {
	if (*c->p == '[') {
		if (*seen & 1u << K_RUNQ_LIST)
			return false;
		*seen |= 1u << K_RUNQ_LIST;
		if (c->end - c->p > 1 && c->p[1] == ' ')
			*seen |= 1u << K_PADDED;
		return int_list(c, out->runq, &out->nprocs);
	}
	const char *key = c->p;
	while (!at_end(c) && *c->p >= 'a' && *c->p <= 'z')
		c->p++;
	size_t klen = (size_t)(c->p - key);
	if (!klen || !eat(c, "="))
		return false;
#define KEY(s) (klen == sizeof s - 1 && memcmp(key, s, klen) == 0)
	if (KEY("gomaxprocs"))
		return sched_int(c, seen, K_GOMAXPROCS, &out->gomaxprocs);
	if (KEY("idleprocs"))
		return sched_int(c, seen, K_IDLEPROCS, &out->idleprocs);
	if (KEY("threads"))
		return sched_int(c, seen, K_THREADS, &out->threads);
	if (KEY("spinningthreads"))
		return sched_int(c, seen, K_SPINNING, &out->spinningthreads);
	if (KEY("needspinning"))
		return sched_int(c, seen, K_NEEDSPINNING, &out->needspinning);
	if (KEY("idlethreads"))
		return sched_int(c, seen, K_IDLETHREADS, &out->idlethreads);
	if (KEY("runqueue")) {
		if (*seen & 1u << K_RUNQUEUE)
			return false;
		*seen |= 1u << K_RUNQUEUE;
		return dec_i64(c, &out->runqueue);
	}
	if (KEY("schedticks")) {
		if (*seen & 1u << K_SCHEDTICKS)
			return false;
		*seen |= 1u << K_SCHEDTICKS;
		return int_list(c, out->schedticks, &out->nticks);
	}
	if (KEY("gcwaiting") || KEY("nmidlelocked") || KEY("stopwait") || KEY("sysmonwait")) {
		*seen |= 1u << K_DETAIL;
		/* Go 1.19 prints gcwaiting=0 and sysmonwait=0; Go 1.26 (and
		 * later) prints them as booleans, gcwaiting=false */
		if (KEY("gcwaiting") || KEY("sysmonwait"))
			if (eat(c, "true") || eat(c, "false"))
				return true;
	}
#undef KEY
	/* a field of a newer runtime: its value must still be a number */
	int64_t ignored;
	return dec_i64(c, &ignored);
}

gp_sched_kind gp_parse_sched(const char *line, size_t len, gp_sched *out) {
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (is_detail_line(line, len))
		return GP_SCHED_DETAIL;
	if (!starts(line, len, "SCHED "))
		return looks_like_fragment(line, len) ? GP_SCHED_TORN : GP_NOT_SCHED;
	out->gomaxprocs = out->idleprocs = out->threads = out->spinningthreads = 0;
	out->idlethreads = 0;
	out->needspinning = -1;
	out->runqueue = out->ms = 0;
	out->nprocs = out->nticks = 0;
	cur c = {line + 6, line + len};
	if (!dec_i64(&c, &out->ms) || !eat(&c, "ms:"))
		return GP_SCHED_TORN;
	unsigned seen = 0;
	while (!at_end(&c)) {
		if (!eat(&c, " ") || at_end(&c) || !sched_token(&c, out, &seen))
			return GP_SCHED_TORN;
	}
	if (seen & 1u << K_DETAIL)
		return (seen & 1u << K_RUNQ_LIST) ? GP_SCHED_TORN : GP_SCHED_DETAIL;
	if ((seen & REQUIRED_KEYS) != REQUIRED_KEYS || out->gomaxprocs < 1 ||
	    out->gomaxprocs > GP_MAX_PROCS || out->idleprocs > out->gomaxprocs ||
	    out->nprocs != out->gomaxprocs ||
	    ((seen & 1u << K_SCHEDTICKS) && out->nticks != out->gomaxprocs) ||
	    ((seen & 1u << K_PADDED) && !(seen & 1u << K_SCHEDTICKS)))
		return GP_SCHED_TORN;
	return GP_SCHED_OK;
}

/* ─── gctrace lines ─────────────────────────────────────────────────── */

/* Go's mgc.go prints, on one line (Go 1.19 to 1.27, tests/go/formats):
 *   gc N @T.TTTs U%: C1+C2+C3 ms clock, P1+P2/P3/P4+P5 ms cpu, H0->H1->H2 MB, G MB goal,
 *   S MB stacks, X MB globals, N P[ (forced)]
 * The stacks and globals parts came in Go 1.18; older runtimes end "G MB goal, N P".
 * Any "N MB word, " part is accepted there, for what a newer runtime adds. */
bool gp_parse_gc(const char *line, size_t len, gp_gc *out) {
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	cur c = {line, line + len};
	gp_gc g = {0};
	double phase;
	if (!eat(&c, "gc ") || !dec_i64(&c, &g.n) || !eat(&c, " @") || !dec_double(&c, &g.at_s) ||
	    !eat(&c, "s ") || !dec_double(&c, &g.cpu_pct) || !eat(&c, "%: "))
		return false;
	for (int i = 0; i < 3; i++) {
		if ((i && !eat(&c, "+")) || !dec_double(&c, &phase))
			return false;
		g.clock_ms += phase;
	}
	if (!eat(&c, " ms clock, "))
		return false;
	/* the CPU split "a+b/c/d+e": five numbers; their sum is not ours to use */
	for (int i = 0; i < 5; i++)
		if ((i && !eat(&c, (i == 2 || i == 3) ? "/" : "+")) || !dec_double(&c, &phase))
			return false;
	if (!eat(&c, " ms cpu, ") || !dec_double(&c, &g.heap_start_mb) || !eat(&c, "->") ||
	    !dec_double(&c, &g.heap_end_mb) || !eat(&c, "->") || !dec_double(&c, &g.heap_live_mb) ||
	    !eat(&c, " MB, ") || !dec_double(&c, &g.goal_mb) || !eat(&c, " MB goal, "))
		return false;
	for (;;) {
		int64_t n;
		if (!dec_i64(&c, &n))
			return false;
		if (eat(&c, " P")) {
			if (n < 1 || n > INT_MAX) /* Go has at least one P, as in SCHED lines */
				return false;
			g.procs = (int)n;
			break;
		}
		/* "N MB stacks, " / "N MB globals, " */
		if (!eat(&c, " MB "))
			return false;
		const char *w = c.p;
		while (!at_end(&c) && *c.p >= 'a' && *c.p <= 'z')
			c.p++;
		if (c.p == w || !eat(&c, ", "))
			return false;
	}
	if (eat(&c, " (forced)"))
		g.forced = true;
	if (!at_end(&c))
		return false;
	*out = g;
	return true;
}

/* ─── pprof goroutine profiles: shared ──────────────────────────────── */

typedef struct line_t {
	const char *s;
	size_t n;
	bool terminated; /* ended by '\n' (the last line of a cut body is not) */
} line_t;

static bool next_line(const char *text, size_t len, size_t *pos, line_t *l) {
	if (*pos >= len)
		return false;
	const char *s = text + *pos, *nl = memchr(s, '\n', len - *pos);
	l->s = s;
	l->n = nl ? (size_t)(nl - s) : len - *pos;
	l->terminated = nl != NULL;
	*pos += l->n + (nl ? 1 : 0);
	if (l->n && s[l->n - 1] == '\r')
		l->n--;
	return true;
}

typedef struct parser {
	gp_profile *out;
	int max_stacks, cap, lineno;
	gp_stack cur; /* the record being read */
	bool in_record;
	int frames_cap;
	gp_frame scratch; /* where frames past GP_MAX_FRAMES go, to be dropped */
	char *msg;
	size_t msg_len;
} parser;

static int fail(parser *ps, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser *ps, int code, const char *fmt, ...) {
	if (ps->msg && ps->msg_len) {
		int n = snprintf(ps->msg, ps->msg_len, "line %d: ", ps->lineno);
		if (n >= 0 && (size_t)n < ps->msg_len) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(ps->msg + n, ps->msg_len - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return code;
}

/* A line in a message: at most QUOTE_MAX bytes of it (it has no NUL). */
#define QUOTE_MAX 60
#define QUOTE(l)  (int)((l).n < QUOTE_MAX ? (l).n : QUOTE_MAX), (l).s

static void frame_free(gp_frame *f) {
	free(f->func);
	free(f->file);
	f->func = f->file = NULL;
}

static void stack_free(gp_stack *s) {
	for (int i = 0; i < s->nframes; i++)
		frame_free(&s->frames[i]);
	free(s->frames);
	frame_free(&s->created_by);
	free(s->labels);
	memset(s, 0, sizeof *s);
}

static void record_begin(parser *ps) {
	stack_free(&ps->cur);
	ps->frames_cap = 0;
	ps->in_record = true;
}

static void record_drop(parser *ps) {
	stack_free(&ps->cur);
	ps->in_record = false;
}

/* Keep the record read so far (or only count it past max_stacks). */
static int record_commit(parser *ps) {
	gp_profile *p = ps->out;
	ps->in_record = false;
	if (ps->max_stacks > 0 && p->nstacks >= ps->max_stacks) {
		stack_free(&ps->cur);
		return 0;
	}
	if (p->nstacks == ps->cap) {
		int cap = ps->cap ? ps->cap * 2 : 16;
		gp_stack *st = realloc(p->stacks, (size_t)cap * sizeof *st);
		if (!st) {
			stack_free(&ps->cur);
			return fail(ps, -ENOMEM, "out of memory");
		}
		p->stacks = st;
		ps->cap = cap;
	}
	p->stacks[p->nstacks++] = ps->cur;
	memset(&ps->cur, 0, sizeof ps->cur);
	return 0;
}

/* Append a frame to the current record; NULL on ENOMEM. A frame past
 * GP_MAX_FRAMES goes to the parser's scratch slot and is dropped. */
static gp_frame *frame_push(parser *ps, const char *func, size_t n) {
	gp_stack *s = &ps->cur;
	if (s->nframes >= GP_MAX_FRAMES) {
		frame_free(&ps->scratch);
		return &ps->scratch;
	}
	if (s->nframes == ps->frames_cap) {
		int cap = ps->frames_cap ? ps->frames_cap * 2 : 8;
		gp_frame *f = realloc(s->frames, (size_t)cap * sizeof *f);
		if (!f)
			return NULL;
		s->frames = f;
		ps->frames_cap = cap;
	}
	gp_frame *f = &s->frames[s->nframes];
	*f = (gp_frame){.func = strndup(func, n)};
	if (!f->func)
		return NULL;
	s->nframes++;
	return f;
}

/* "path/file.go:123" (n bytes) into f->file and f->line. */
static bool file_line(const char *s, size_t n, gp_frame *f) {
	const char *colon = NULL;
	for (size_t i = n; i-- > 0;)
		if (s[i] == ':') {
			colon = s + i;
			break;
		}
	if (!colon || colon == s)
		return false;
	cur c = {colon + 1, s + n};
	int line;
	if (!dec_int(&c, &line) || !at_end(&c))
		return false;
	free(f->file);
	f->file = strndup(s, (size_t)(colon - s));
	f->line = line;
	return f->file != NULL;
}

/* ─── debug=1: counts per stack ─────────────────────────────────────── */

/* "#\t0x671308\tmain.fetchWithTimeout.func1+0x48\t/build/leak/main.go:24"
 * (columns: runs of tabs, from text/tabwriter). */
static int d1_frame(parser *ps, const line_t *l) {
	cur c = {l->s + 1, l->s + l->n};
	while (!at_end(&c) && *c.p == '\t')
		c.p++;
	uint64_t pc;
	if (!hex_u64(&c, &pc))
		return fail(ps, -EINVAL, "a frame without a PC");
	while (!at_end(&c) && *c.p == '\t')
		c.p++;
	if (at_end(&c))
		return 0; /* "#\t0x0": a PC without a symbol, nothing to report */
	const char *fn = c.p;
	while (!at_end(&c) && *c.p != '\t')
		c.p++;
	size_t fn_n = (size_t)(c.p - fn);
	const char *plus = memrchr(fn, '+', fn_n);
	if (plus)
		fn_n = (size_t)(plus - fn);
	while (!at_end(&c) && *c.p == '\t')
		c.p++;
	gp_frame *f = frame_push(ps, fn, fn_n);
	if (!f)
		return fail(ps, -ENOMEM, "out of memory");
	if (!fn_n || !file_line(c.p, (size_t)(c.end - c.p), f))
		return fail(ps, -EINVAL, "a frame without func+off and file:line");
	return 0;
}

static int parse_debug1(parser *ps, const char *text, size_t len, size_t pos) {
	gp_profile *p = ps->out;
	int64_t counted = 0;
	uint64_t first_pc = 0;
	bool first_frame = false;
	line_t l;
	while (next_line(text, len, &pos, &l)) {
		ps->lineno++;
		if (!l.terminated) {
			p->truncated = true;
			break;
		}
		if (l.n == 0) {
			if (ps->in_record) {
				int r = record_commit(ps);
				if (r)
					return r;
			}
			continue;
		}
		if (!ps->in_record) {
			/* "1494 @ 0x43b296 0x40708c ..." */
			cur c = {l.s, l.s + l.n};
			int64_t count;
			if (!dec_i64(&c, &count) || !eat(&c, " @"))
				return fail(ps, -EINVAL, "expected \"COUNT @ PC...\": %.*s",
				            QUOTE(l));
			uint64_t pc;
			first_pc = 0;
			while (eat(&c, " ")) {
				if (!hex_u64(&c, &pc))
					return fail(ps, -EINVAL, "a bad PC in \"%.*s\"", QUOTE(l));
				if (!first_pc)
					first_pc = pc;
			}
			if (!at_end(&c))
				return fail(ps, -EINVAL, "a bad PC list in \"%.*s\"", QUOTE(l));
			record_begin(ps);
			ps->cur.count = count;
			counted = counted > INT64_MAX - count ? INT64_MAX : counted + count;
			first_frame = true;
			continue;
		}
		if (starts(l.s, l.n, "# labels: ")) {
			if (ps->cur.labels || ps->cur.nframes)
				return fail(ps, -EINVAL, "labels out of place");
			ps->cur.labels = strndup(l.s + 10, l.n - 10);
			if (!ps->cur.labels)
				return fail(ps, -ENOMEM, "out of memory");
			continue;
		}
		if (!starts(l.s, l.n, "#\t"))
			return fail(ps, -EINVAL,
			            "expected a frame \"#\\tPC\\tfunc\\tfile:line\": %.*s",
			            QUOTE(l));
		if (first_frame) {
			/* The printed PC is the return address minus one: if the first
			 * printed frame is not the first PC of "@", runtime frames were
			 * hidden above it (§1.3) — the goroutine is parked in the runtime. */
			cur c = {l.s + 1, l.s + l.n};
			while (!at_end(&c) && *c.p == '\t')
				c.p++;
			uint64_t pc;
			if (hex_u64(&c, &pc) && pc + 1 != first_pc)
				ps->cur.runtime_top = true;
			first_frame = false;
		}
		int r = d1_frame(ps, &l);
		if (r)
			return r;
	}
	if (ps->in_record) { /* no blank line after it: the body was cut inside it */
		p->truncated = true;
		record_drop(ps);
	}
	if (counted < p->total)
		p->truncated = true;
	return 0;
}

/* ─── debug=2: one traceback per goroutine ──────────────────────────── */

/* Suffixes of a state that are flags, not part of the wait reason (§1.4). */
static const char *const state_flags[] = {" (scan)", " (leaked)", " (durable)"};

static void set_state(gp_stack *s, const char *st, size_t n) {
	for (bool again = true; again;) {
		again = false;
		for (size_t i = 0; i < sizeof state_flags / sizeof *state_flags; i++) {
			size_t k = strlen(state_flags[i]);
			if (n >= k && memcmp(st + n - k, state_flags[i], k) == 0) {
				n -= k;
				again = true;
			}
		}
	}
	if (n >= sizeof s->state)
		n = sizeof s->state - 1;
	memcpy(s->state, st, n);
	s->state[n] = '\0';
}

/* "goroutine 7 [select (no cases), 2 minutes, locked to thread]:", with an
 * optional " gp=0x… m=… mp=0x…" after the goid and " {labels}" before ':'. */
static bool d2_header(parser *ps, const line_t *l) {
	cur c = {l->s, l->s + l->n};
	int64_t goid;
	if (!eat(&c, "goroutine ") || !dec_i64(&c, &goid) || l->n < 2 || l->s[l->n - 1] != ':')
		return false;
	const char *open = memchr(c.p, '[', (size_t)(c.end - c.p));
	if (!open)
		return false;
	const char *close = memchr(open, ']', (size_t)(c.end - open));
	if (!close)
		return false;
	record_begin(ps);
	gp_stack *s = &ps->cur;
	s->goid = goid;
	s->count = 1;
	/* comma-separated: the state first, then ", N minutes", ", locked to thread", ... */
	const char *part = open + 1;
	for (bool first = true; part < close; first = false) {
		const char *comma = memchr(part, ',', (size_t)(close - part));
		const char *e = comma ? comma : close;
		if (first) {
			set_state(s, part, (size_t)(e - part));
		} else {
			cur m = {part, e};
			int minutes;
			if (dec_int(&m, &minutes) && eat(&m, " minutes") && at_end(&m))
				s->wait_minutes = minutes;
		}
		part = comma ? comma + 2 : close;
	}
	const char *rest = close + 1, *colon = l->s + l->n - 1;
	if (rest < colon) { /* " {pattern: \"GET /panic\"}" (Go 1.27 traceback labels) */
		while (rest < colon && *rest == ' ')
			rest++;
		if (rest < colon && *rest == '{' && colon[-1] == '}') {
			s->labels = strndup(rest, (size_t)(colon - rest));
			if (!s->labels)
				return false;
		} else if (rest < colon) {
			return false;
		}
	}
	return true;
}

/* A whole record at the end of a body that is not followed by a blank line:
 * its last line is a file line and it ends where stacks end (§1.4): every
 * goroutine but the main one (goid 1) ends with "created by" (the runtime's
 * own, created by runtime.*, are not in the dump at the default level). */
static bool d2_looks_whole(const gp_stack *s, bool last_was_file) {
	if (!last_was_file)
		return false;
	if (s->created_by.func)
		return s->created_by.file != NULL;
	if (!s->nframes || s->goid != 1)
		return false;
	const char *fn = s->frames[s->nframes - 1].func;
	return !strcmp(fn, "main.main") || !strcmp(fn, "runtime.main") ||
	       !strcmp(fn, "runtime.goexit");
}

static int parse_debug2(parser *ps, const char *text, size_t len, size_t pos) {
	gp_profile *p = ps->out;
	gp_frame *pending = NULL; /* the frame the next file line belongs to */
	bool last_was_file = false, ancestors = false;
	line_t l;
	while (next_line(text, len, &pos, &l)) {
		ps->lineno++;
		if (!l.terminated) {
			p->truncated = true;
			if (ps->in_record)
				record_drop(ps);
			return 0;
		}
		if (l.n == 0) {
			if (ps->in_record) {
				if (pending)
					return fail(ps, -EINVAL, "a frame without its file line");
				p->total++;
				int r = record_commit(ps);
				if (r)
					return r;
			}
			continue;
		}
		if (starts(l.s, l.n, "goroutine ")) {
			if (ps->in_record)
				return fail(ps, -EINVAL, "a goroutine header inside a record");
			if (!d2_header(ps, &l))
				return fail(ps, -EINVAL, "a bad goroutine header: %.*s", QUOTE(l));
			pending = NULL;
			last_was_file = ancestors = false;
			continue;
		}
		if (!ps->in_record)
			return fail(ps, -EINVAL, "expected \"goroutine N [state]:\": %.*s",
			            QUOTE(l));
		if (ancestors)
			continue; /* [originating from goroutine N]: not this goroutine's stack */
		gp_stack *s = &ps->cur;
		last_was_file = false;
		if (l.s[0] == '\t') {
			/* "\t/build/leak/main.go:72 +0x139" (no "+0x" for inlined frames) */
			size_t n = l.n - 1;
			const char *fl = l.s + 1, *sp = memrchr(fl, ' ', n);
			if (sp && starts(sp, (size_t)(fl + n - sp), " +0x"))
				n = (size_t)(sp - fl);
			if (!pending)
				return fail(ps, -EINVAL, "a file line without a function");
			if (!file_line(fl, n, pending))
				return fail(ps, -EINVAL, "a bad file:line: %.*s", QUOTE(l));
			pending = NULL;
			last_was_file = true;
			continue;
		}
		if (pending)
			return fail(ps, -EINVAL, "a frame without its file line");
		if (starts(l.s, l.n, "created by ")) {
			/* "created by main.start in goroutine 1" (Go >= 1.21) or "created by F" */
			const char *fn = l.s + 11, *end = l.s + l.n;
			const char *in = memmem(fn, (size_t)(end - fn), " in goroutine ", 14);
			if (in) {
				cur c = {in + 14, end};
				if (!dec_i64(&c, &s->created_in) || !at_end(&c))
					return fail(ps, -EINVAL, "a bad \"in goroutine N\"");
				end = in;
			}
			frame_free(&s->created_by);
			s->created_by.func = strndup(fn, (size_t)(end - fn));
			if (!s->created_by.func)
				return fail(ps, -ENOMEM, "out of memory");
			pending = &s->created_by;
			continue;
		}
		if (starts(l.s, l.n, "...") && l.n >= 6 && !memcmp(l.s + l.n - 3, "...", 3))
			continue; /* "...additional frames elided..." / "...N frames elided..." */
		if (starts(l.s, l.n, "[originating from goroutine ")) {
			ancestors = true;
			continue;
		}
		/* "main.waitForResult(0x0?)", "sync.(*Mutex).Lock(...)": the args are the last
		 * (...) */
		const char *paren = memrchr(l.s, '(', l.n);
		if (!paren || paren == l.s || l.s[l.n - 1] != ')')
			return fail(ps, -EINVAL, "expected a frame \"func(args)\": %.*s", QUOTE(l));
		if (!(pending = frame_push(ps, l.s, (size_t)(paren - l.s))))
			return fail(ps, -ENOMEM, "out of memory");
	}
	if (ps->in_record) {
		if (!pending && d2_looks_whole(&ps->cur, last_was_file)) {
			p->total++;
			return record_commit(ps);
		}
		p->truncated = true;
		record_drop(ps);
	}
	return 0;
}

/* ─── profiles: entry points ────────────────────────────────────────── */

int gp_parse_profile(const char *text, size_t len, int max_stacks, gp_profile *out, char *msg,
                     size_t msg_len) {
	memset(out, 0, sizeof *out);
	if (msg && msg_len)
		msg[0] = '\0';
	parser ps = {.out = out, .max_stacks = max_stacks, .msg = msg, .msg_len = msg_len};
	size_t pos = 0, start;
	line_t l;
	do {
		start = pos;
		if (!next_line(text, len, &pos, &l))
			return fail(&ps, -EINVAL, "an empty profile");
		ps.lineno++;
	} while (l.n == 0);
	int r;
	cur c = {l.s, l.s + l.n};
	while (!at_end(&c) && *c.p >= 'a' && *c.p <= 'z')
		c.p++;
	if (c.p > l.s && eat(&c, " profile: total ")) {
		/* "goroutine profile: total 3440", "goroutineleak profile: total 6" */
		out->debug = 1;
		if (!l.terminated || !dec_i64(&c, &out->total) || !at_end(&c))
			r = fail(&ps, -EINVAL, "a bad profile header: %.*s", QUOTE(l));
		else
			r = parse_debug1(&ps, text, len, pos);
	} else if (starts(l.s, l.n, "goroutine ") && memchr(l.s, '[', l.n)) {
		out->debug = 2;
		ps.lineno--;
		r = parse_debug2(&ps, text, len, start);
	} else {
		r = fail(&ps, -EINVAL, "not a goroutine profile: %.*s", QUOTE(l));
	}
	stack_free(&ps.cur);
	frame_free(&ps.scratch);
	if (r)
		gp_profile_free(out);
	return r;
}

void gp_profile_free(gp_profile *p) {
	for (int i = 0; i < p->nstacks; i++)
		stack_free(&p->stacks[i]);
	free(p->stacks);
	memset(p, 0, sizeof *p);
}

/* ─── the blocking site of a stack ──────────────────────────────────── */

/* Runtime frames that say what a goroutine waits on (§1.5). */
static const struct {
	const char *func, *wait;
} wait_frames[] = {
    {"runtime.chanrecv1", "chan receive"},
    {"runtime.chanrecv2", "chan receive"},
    {"runtime.chanrecv", "chan receive"},
    {"runtime.chansend1", "chan send"},
    {"runtime.chansend", "chan send"},
    {"runtime.selectgo", "select"},
    {"runtime.block", "select (no cases)"},
    {"internal/poll.runtime_pollWait", "IO wait"},
    {"time.Sleep", "sleep"},
    {"sync.runtime_notifyListWait", "sync.Cond.Wait"},
    {"sync.runtime_SemacquireMutex", "sync.Mutex.Lock"},
    {"sync.runtime_SemacquireRWMutexR", "sync.RWMutex.RLock"},
    {"sync.runtime_SemacquireRWMutex", "sync.RWMutex.Lock"},
    {"sync.runtime_SemacquireWaitGroup", "sync.WaitGroup.Wait"},
    {"sync.runtime_Semacquire", "semacquire"},
};

/* Frames that are the machinery of a wait, not where the program waits. */
static bool machinery(const char *fn) {
	return has_prefix(fn, "runtime.") || has_prefix(fn, "sync.") ||
	       has_prefix(fn, "sync/atomic.") || has_prefix(fn, "internal/") ||
	       !strcmp(fn, "time.Sleep");
}

/* "sync.(*WaitGroup).Wait" -> "sync.WaitGroup.Wait"; false for unexported
 * methods (lockSlow) and package functions (runtime_Semacquire). */
static bool sync_op(const char *fn, char *op, size_t n) {
	if (!has_prefix(fn, "sync.(*"))
		return false;
	const char *t = fn + 7, *close = strchr(t, ')');
	if (!close || close[1] != '.' || !(close[2] >= 'A' && close[2] <= 'Z'))
		return false;
	snprintf(op, n, "sync.%.*s.%s", (int)(close - t), t, close + 2);
	return true;
}

static bool blocking_wait(const char *w) {
	return has_prefix(w, "chan ") || has_prefix(w, "select") || has_prefix(w, "sync.") ||
	       !strcmp(w, "semacquire") || !strcmp(w, "parked");
}

static bool is_persist_loop(const char *fn) {
	return !strcmp(fn, "net/http.(*persistConn).readLoop") ||
	       !strcmp(fn, "net/http.(*persistConn).writeLoop");
}

bool gp_stack_site(const gp_stack *s, gp_site *out) {
	memset(out, 0, sizeof *out);
	if (!strcmp(s->state, "running"))
		return false;
	char frame_wait[sizeof out->wait] = "", op[sizeof out->wait] = "";
	int site = -1, persist = -1;
	for (int i = 0; i < s->nframes; i++) {
		const char *fn = s->frames[i].func;
		if (persist < 0 && is_persist_loop(fn))
			persist = i;
		if (site >= 0)
			continue;
		if (!machinery(fn)) {
			site = i;
			continue;
		}
		sync_op(fn, op, sizeof op); /* the outermost one wins: the call the program made */
		for (size_t k = 0; k < sizeof wait_frames / sizeof *wait_frames; k++)
			if (!frame_wait[0] && !strcmp(fn, wait_frames[k].func))
				snprintf(frame_wait, sizeof frame_wait, "%s", wait_frames[k].wait);
	}
	if (persist >= 0)
		site = persist;
	if (site < 0)
		return false;
	const char *w = s->state;
	if (!w[0] || !strcmp(w, "semacquire") || has_prefix(w, "sync."))
		w = op[0] ? op : frame_wait[0] ? frame_wait : w;
	if (!w[0] && s->runtime_top)
		w = "parked"; /* debug=1: the runtime frames of the wait were not printed */
	snprintf(out->wait, sizeof out->wait, "%s", w);
	const gp_frame *f = &s->frames[site];
	snprintf(out->site, sizeof out->site, "%.200s:%d", f->file ? f->file : "?", f->line);
	snprintf(out->function, sizeof out->function, "%s", f->func);
	out->blocked = blocking_wait(out->wait) || persist >= 0;
	return true;
}
