/*
 * top.c — `moonshim [--root DIR] top [--interval SECS] [--once]
 * [--containerd-root DIR]`: a live view of every published container
 * (publish.h), one row each sorted by key: status, health, readiness,
 * memory against its limit, PSI "some avg10" of cpu, memory and io, the
 * restarts and flags (L: a goroutine leak found, A: a scheduler anomaly,
 * E: script errors). Memory and PSI are read from the cgroup the snapshot
 * names, each frame; the snapshot gives the rest.
 *
 * The terminal: the alternate screen, the cursor hidden, input raw (no
 * echo, no line editing, no signals from keys) so q and Ctrl-C arrive as
 * bytes; every way out (q, Ctrl-C, SIGTERM, SIGHUP) restores it as it was.
 * A resize (SIGWINCH) re-renders at once; every row is cut to the width,
 * the rows to the height. Text from the snapshot is shown as printable
 * ASCII only. --once prints one frame without any terminal control.
 * A container whose row could not be stored (out of memory) is counted in
 * the title ("N not shown"); --once also names the error and exits 1.
 */
#define _GNU_SOURCE
#include "commands.h"

#include "observe.h"
#include "io.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TOP_INTERVAL_MS     1000
#define TOP_INTERVAL_MIN_MS 100
#define TOP_ID_MAX          40  /* the widest ID column */
#define TOP_LINE_MAX        512 /* a row before it is cut to the width */
#define TOP_WIDTH           80  /* without a terminal to ask */
#define TOP_HEIGHT          24
#define TOP_ROWS_FIRST      32 /* rows stored, at first */
#define KEY_CTRL_C          3
#define PERCENT             100.0

typedef struct row {
	char key[TOP_ID_MAX + 1];
	char status[12], health[12], ready[4];
	int64_t mem, mem_max; /* -1: unknown; mem_max CG_NOLIMIT: none */
	double psi[CG_RES_N]; /* -1: unknown */
	long long restarts;
	char flags[4];
} row;

typedef struct rows {
	row *r;
	size_t n, cap;
	const cg_host *host; /* NULL when the cgroups cannot be read */
	size_t dropped;      /* containers whose row could not be stored */
	ms_err err;          /* why the first of them was not */
} rows;

static volatile sig_atomic_t quit, resized;
static void on_quit(int sig) {
	(void)sig;
	quit = 1;
}
static void on_winch(int sig) {
	(void)sig;
	resized = 1;
}

/* printable ASCII, the rest '?' */
static void clean(char *dst, size_t n, const char *src) {
	size_t i = 0;
	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = 0;
}

/* ─── one frame's data ──────────────────────────────────────────────── */

static void read_cgroup(row *r, const cg_host *host, const char *rel) {
	r->mem = r->mem_max = -1;
	for (int i = 0; i < CG_RES_N; i++)
		r->psi[i] = -1;
	cg_err err = {0};
	cg *c = host && rel && *rel ? cg_open(host, rel, false, &err) : NULL;
	if (!c)
		return;
	cg_memory m;
	if (cg_read_memory(c, &m, &err) == 0)
		r->mem = m.current, r->mem_max = m.max;
	for (int i = 0; i < CG_RES_N; i++) {
		cg_pressure p;
		if (cg_read_pressure(c, (cg_resource)i, &p, &err) == 0 && p.some.present)
			r->psi[i] = p.some.avg10;
	}
	cg_close(c);
}

static long long count_of(json_t *s, const char *section, const char *key) {
	return json_integer_value(
	    json_object_get(json_object_get(json_object_get(s, section), "findings"), key));
}

static void flags(row *r, json_t *s) {
	char *f = r->flags;
	if (count_of(s, "go", "go.goroutine_leak") > 0)
		*f++ = 'L';
	if (count_of(s, "go", "go.sched_anomaly") > 0)
		*f++ = 'A';
	if (json_integer_value(json_object_get(json_object_get(s, "errors"), "count")) > 0)
		*f++ = 'E';
	*f = 0;
}

static void add_row(const pb_entry *e, void *arg) {
	rows *rs = arg;
	ms_err err = {0};
	row *a = grow_room(rs->r, &rs->cap, rs->n, sizeof *rs->r, TOP_ROWS_FIRST, &err);
	if (!a) {
		if (!rs->dropped++)
			rs->err = err, ms_wrap(&rs->err, "%s", e->key);
		return;
	}
	rs->r = a;
	row *r = &rs->r[rs->n++];
	memset(r, 0, sizeof *r);
	json_t *s = e->status, *h = json_object_get(s, "health");
	clean(r->key, sizeof r->key, e->key);
	clean(r->status, sizeof r->status, ob_status(e));
	clean(r->health, sizeof r->health, json_string_value(json_object_get(h, "Status")));
	if (!r->health[0])
		snprintf(r->health, sizeof r->health, "-");
	json_t *ready = json_object_get(h, "Ready");
	snprintf(r->ready, sizeof r->ready, "%s",
	         json_is_boolean(ready) ? (json_is_true(ready) ? "yes" : "no") : "-");
	r->restarts =
	    json_integer_value(json_object_get(json_object_get(s, "process"), "restarts"));
	flags(r, s);
	read_cgroup(r, e->live ? rs->host : NULL, json_string_value(json_object_get(s, "cgroup")));
}

static int cmp_rows(const void *a, const void *b) {
	return strcmp(((const row *)a)->key, ((const row *)b)->key);
}

/* ─── rendering ─────────────────────────────────────────────────────── */

static void human(char *buf, size_t n, int64_t v) {
	static const char units[] = "BKMGTP";
	double d = (double)v;
	int u = 0;
	while (d >= 1024 && units[u + 1])
		d /= 1024, u++;
	snprintf(buf, n, u ? "%.1f%c" : "%.0f%c", d, units[u]);
}

static void memory_cell(char *buf, size_t n, const row *r) {
	char cur[16], max[16];
	if (r->mem < 0) {
		snprintf(buf, n, "-");
		return;
	}
	human(cur, sizeof cur, r->mem);
	if (r->mem_max <= 0) {
		snprintf(buf, n, "%s / -", cur);
		return;
	}
	human(max, sizeof max, r->mem_max);
	snprintf(buf, n, "%s / %s %3.0f%%", cur, max,
	         PERCENT * (double)r->mem / (double)r->mem_max);
}

static void psi_cell(char *buf, size_t n, double v) {
	if (v < 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.2f", v);
}

/* one line, cut to width, with the line end the mode wants */
static void emit(const char *line, int width, bool tty) {
	fwrite(line, 1, strnlen(line, (size_t)width), stdout);
	fputs(tty ? "\033[K\n" : "\n", stdout);
}

static int id_width(const rows *rs) {
	int w = 2;
	for (size_t i = 0; i < rs->n; i++)
		if ((int)strlen(rs->r[i].key) > w)
			w = (int)strlen(rs->r[i].key);
	return w;
}

static void render(const rows *rs, int width, int height, bool tty) {
	char line[TOP_LINE_MAX], when[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof when, "%H:%M:%S", localtime_r(&now, &tm));
	if (tty)
		fputs("\033[H", stdout);
	char dropped[64] = "";
	if (rs->dropped)
		snprintf(dropped, sizeof dropped, " - %zu not shown (out of memory)", rs->dropped);
	snprintf(line, sizeof line, "moonshim top - %s - %zu container%s%s%s", when, rs->n,
	         rs->n == 1 ? "" : "s", dropped, tty ? " - q quits" : "");
	emit(line, width, tty);
	int idw = id_width(rs);
	snprintf(line, sizeof line, "%-*s %-8s %-10s %-5s %-22s %6s %6s %6s %4s %s", idw, "ID",
	         "STATUS", "HEALTH", "READY", "MEMORY", "P-CPU", "P-MEM", "P-IO", "RST", "FLAGS");
	emit(line, width, tty);
	for (size_t i = 0; i < rs->n && (!tty || (int)i + 2 < height); i++) {
		const row *r = &rs->r[i];
		char mem[48], psi[CG_RES_N][16];
		memory_cell(mem, sizeof mem, r);
		for (int k = 0; k < CG_RES_N; k++)
			psi_cell(psi[k], sizeof psi[k], r->psi[k]);
		snprintf(line, sizeof line, "%-*s %-8s %-10s %-5s %-22s %6s %6s %6s %4lld %s", idw,
		         r->key, r->status, r->health, r->ready, mem, psi[CG_RES_CPU],
		         psi[CG_RES_MEMORY], psi[CG_RES_IO], r->restarts, r->flags);
		emit(line, width, tty);
	}
	if (tty)
		fputs("\033[J", stdout);
	fflush(stdout);
}

/* one frame; the containers whose row could not be stored, if any, are
 * named in err (the first) and counted in the return value */
static size_t frame(const ob_roots *roots, const cg_host *host, bool tty, ms_err *err) {
	rows rs = {.host = host};
	ob_scan(roots, add_row, &rs);
	if (rs.n)
		qsort(rs.r, rs.n, sizeof *rs.r, cmp_rows);
	struct winsize ws = {0};
	int width = TOP_WIDTH * 2, height = TOP_HEIGHT;
	if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col)
		width = ws.ws_col, height = ws.ws_row;
	if (!tty)
		width = TOP_LINE_MAX;
	render(&rs, width, height, tty);
	free(rs.r);
	if (rs.dropped)
		*err = rs.err;
	return rs.dropped;
}

/* ─── the terminal ──────────────────────────────────────────────────── */

typedef struct term {
	struct termios saved;
	bool raw;
} term;

static void term_enter(term *t) {
	struct sigaction q = {.sa_handler = on_quit}, w = {.sa_handler = on_winch};
	sigaction(SIGINT, &q, NULL);
	sigaction(SIGTERM, &q, NULL);
	sigaction(SIGHUP, &q, NULL);
	sigaction(SIGWINCH, &w, NULL);
	if (tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		struct termios raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
		raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
		raw.c_cc[VMIN] = 1, raw.c_cc[VTIME] = 0;
		t->raw = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
	}
	fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
	fflush(stdout);
}

static void term_leave(term *t) {
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
}

/* wait up to ms for a key; true when it asks to quit. Without a terminal
 * on stdin (</dev/null) only the signals quit. */
static bool wait_key(int ms, bool keys) {
	struct pollfd p = {STDIN_FILENO, POLLIN, 0};
	int n = poll(&p, keys ? 1 : 0, ms);
	if (n <= 0)
		return false;
	if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
		return true;
	char buf[64];
	ssize_t k = read(STDIN_FILENO, buf, sizeof buf);
	if (k == 0)
		return true;
	for (ssize_t i = 0; i < k; i++)
		if (buf[i] == 'q' || buf[i] == 'Q' || buf[i] == KEY_CTRL_C)
			return true;
	return false;
}

static int live(const ob_roots *roots, const cg_host *host, int interval_ms) {
	term t = {0};
	term_enter(&t);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!quit) {
		ms_err err; /* the title shows the count */
		frame(roots, host, true, &err);
		resized = 0;
		int64_t due = (int64_t)next.tv_sec * 1000 + next.tv_nsec / 1000000 + interval_ms;
		for (;;) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			int64_t left = due - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
			if (left <= 0 || quit || resized)
				break;
			if (wait_key((int)left, t.raw))
				quit = 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &next);
	}
	term_leave(&t);
	return 0;
}

/* ─── the command ───────────────────────────────────────────────────── */

static void usage(FILE *f) {
	fprintf(f, "usage: moonshim [--root DIR] top [--interval SECS] [--once] "
	           "[--containerd-root DIR]\n");
}

int cmd_top(int argc, char **argv) {
	ob_roots roots = {NULL, PB_CONTAINERD_ROOT};
	int interval_ms = TOP_INTERVAL_MS;
	bool once = false;
	for (int i = 1; i < argc; i++) {
		char *end;
		if (cli_global_option(argc, argv, &i))
			continue;
		if (!strcmp(argv[i], "--once")) {
			once = true;
		} else if (!strcmp(argv[i], "--containerd-root") && i + 1 < argc) {
			roots.containerd = argv[++i];
		} else if ((!strcmp(argv[i], "--interval") || !strcmp(argv[i], "-n")) &&
		           i + 1 < argc) {
			double s = strtod(argv[++i], &end);
			if (*end || !(s * 1000 >= TOP_INTERVAL_MIN_MS) || s > 3600) {
				fprintf(stderr,
				        "moonshim top: --interval %s: seconds, 0.1 to 3600\n",
				        argv[i]);
				return 2;
			}
			interval_ms = (int)(s * 1000);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "moonshim top: unexpected argument %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	roots.run = g_cli.root;
	cg_host host;
	cg_err err = {0};
	bool cgroups = cg_host_detect(&host, "/proc/self/mounts", &err) == 0;
	if (once || !isatty(STDOUT_FILENO)) {
		ms_err ferr = {0};
		size_t dropped = frame(&roots, cgroups ? &host : NULL, false, &ferr);
		if (dropped) {
			fprintf(stderr, "moonshim top: %zu container%s not shown: %s\n", dropped,
			        dropped == 1 ? "" : "s", ferr.msg);
			return 1;
		}
		return 0;
	}
	return live(&roots, cgroups ? &host : NULL, interval_ms);
}
