/*
 * eventscmd.c — `moonshim [--root DIR] events [--follow|-f] [--since T]
 * [--until T] [--filter KEY=VALUE]... [--format text|json]
 * [--containerd-root DIR] [ID...]`: every container's event journal
 * (publish.h: <dir>/events.jsonl, and events.jsonl.1 when --since reaches
 * back before it), merged by time, one line per event as `docker events`
 * prints them.
 *
 * Following: an inotify watch on each root, namespace and container
 * directory wakes it (and a rescan every OB_RESCAN_MS catches what a
 * watch missed: a root that did not exist yet). Each journal is read from
 * where it was left; a journal whose inode changed was rotated, so the old
 * file is read to its end and the new one from its start. A last line
 * without its newline waits for it. A line longer than OB_LINE_MAX is
 * skipped with one message; invalid JSON likewise (at most BAD_REPORTS
 * messages per journal). An event or a journal that could not be stored
 * (out of memory) is named on stderr (at most LOST_REPORTS messages), and
 * the command then exits 1.
 */
#define _GNU_SOURCE
#include "commands.h"

#include "observe.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define OB_RESCAN_MS   1000 /* the directories again, watched or not */
#define BAD_REPORTS    10   /* invalid lines reported per journal */
#define LOST_REPORTS   10   /* events or journals not stored, reported */
#define PENDING_FIRST  64   /* events held before the first flush, at first */
#define JOURNALS_FIRST 16   /* journals followed, at first */
#define READ_CHUNK     (64 * 1024)
#define KEY_MAX        512
#define TEXT_MAX       (4 * OB_LINE_MAX + 1024) /* a line with every byte escaped */
#define DIR_WATCH      (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR)
#define JOURNAL_WATCH  (IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR)

typedef struct journal {
	char key[KEY_MAX];
	char dir[PATH_MAX];
	int fd; /* events.jsonl as last opened, -1 when none */
	dev_t dev;
	ino_t ino;
	char *part; /* a line read without its newline yet */
	size_t plen;
	bool skipping; /* inside a line longer than OB_LINE_MAX */
	bool present;  /* found by the last scan */
	int bad;       /* invalid lines reported */
	int64_t first; /* the time of the current file's first event, 0 if none */
} journal;

typedef struct pending {
	int64_t time;
	size_t seq; /* arrival order among equal times */
	char *text;
} pending;

typedef struct ev_cmd {
	ob_roots roots;
	ob_filter filter;
	int64_t since, until; /* 0: unset */
	bool follow, json;
	journal **j;
	size_t nj, capj;
	pending *p;
	size_t np, capp;
	int ino; /* inotify, -1 without */
	char *text;
	size_t lost; /* events and journals that could not be stored */
} ev_cmd;

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
	(void)sig;
	stop = 1;
}

/* ─── the events read, before they are printed in time order ────────── */

/* what could not be stored, named (the first LOST_REPORTS times) */
static void lost(ev_cmd *c, const char *key, const char *what, const char *why) {
	if (c->lost++ < LOST_REPORTS)
		fprintf(stderr, "moonshim events: %s: %s could not be stored: %s%s\n", key, what,
		        why, c->lost == LOST_REPORTS ? " (further losses are counted only)" : "");
}

static void add_pending(ev_cmd *c, const char *key, int64_t time, const char *text, size_t len) {
	ms_err err = {0};
	pending *p = grow_room(c->p, &c->capp, c->np, sizeof *c->p, PENDING_FIRST, &err);
	if (!p) {
		lost(c, key, "an event", err.msg);
		return;
	}
	c->p = p;
	char *t = strndup(text, len);
	if (!t) {
		lost(c, key, "an event", "out of memory for its text");
		return;
	}
	c->p[c->np] = (pending){time, c->np, t}, c->np++;
}

static int cmp_pending(const void *a, const void *b) {
	const pending *x = a, *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void flush_pending(ev_cmd *c) {
	if (!c->np)
		return; /* (and c->p may still be NULL: qsort must not see it) */
	qsort(c->p, c->np, sizeof *c->p, cmp_pending);
	for (size_t i = 0; i < c->np; i++) {
		puts(c->p[i].text);
		free(c->p[i].text);
	}
	c->np = 0;
	fflush(stdout);
}

/* ─── one line ──────────────────────────────────────────────────────── */

static void bad_line(journal *j, const char *why) {
	if (j->bad < BAD_REPORTS)
		fprintf(stderr, "moonshim events: %s: skipped a line: %s%s\n", j->key, why,
		        ++j->bad == BAD_REPORTS ? " (further invalid lines are skipped silently)"
		                                : "");
}

static void take_line(ev_cmd *c, journal *j, const char *line, size_t len) {
	if (len > OB_LINE_MAX) {
		bad_line(j, "longer than 64 KiB");
		return;
	}
	if (!len)
		return;
	ob_event ev;
	ms_err err = {0};
	if (ob_event_parse(line, len, &ev, &err)) {
		bad_line(j, err.msg);
		return;
	}
	if (!j->first)
		j->first = ev.time_ns ? ev.time_ns : 1;
	bool in_time = (!c->since || (ev.time_ns && ev.time_ns >= c->since)) &&
	               (!c->until || (ev.time_ns && ev.time_ns <= c->until));
	if (in_time && ob_filter_match(&c->filter, j->key, ev.type)) {
		if (c->json)
			add_pending(c, j->key, ev.time_ns, line, len);
		else
			add_pending(c, j->key, ev.time_ns, c->text,
			            ob_event_format(&ev, j->key, c->text, TEXT_MAX));
	}
	ob_event_free(&ev);
}

/* bytes read from a journal: whole lines taken, a torn end kept */
static void feed(ev_cmd *c, journal *j, const char *buf, size_t n) {
	while (n) {
		const char *nl = memchr(buf, '\n', n);
		size_t k = nl ? (size_t)(nl - buf) : n;
		if (j->skipping) {
			j->skipping = !nl;
		} else if (j->plen + k > OB_LINE_MAX) {
			bad_line(j, "longer than 64 KiB");
			j->plen = 0, j->skipping = !nl;
		} else if (!nl) {
			memcpy(j->part + j->plen, buf, k), j->plen += k;
		} else if (j->plen) {
			memcpy(j->part + j->plen, buf, k);
			take_line(c, j, j->part, j->plen + k);
			j->plen = 0;
		} else {
			take_line(c, j, buf, k);
		}
		buf += k + (nl != NULL), n -= k + (nl != NULL);
	}
}

static void drain_fd(ev_cmd *c, journal *j, int fd, char *buf) {
	ssize_t n;
	while ((n = read(fd, buf, READ_CHUNK)) > 0)
		feed(c, j, buf, (size_t)n);
}

/* ─── journals ──────────────────────────────────────────────────────── */

static void journal_path(const journal *j, const char *name, char *path, size_t n) {
	snprintf(path, n, "%s/%s", j->dir, name);
}

/* (re)open events.jsonl; at_end: skip what is there (a torn last line too) */
static void journal_open(journal *j, bool at_end) {
	char path[PATH_MAX + 32];
	journal_path(j, PB_JOURNAL, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	j->fd = fd, j->dev = st.st_dev, j->ino = st.st_ino, j->plen = 0, j->skipping = false;
	j->first = 0;
	if (at_end && st.st_size > 0) {
		char last = '\n';
		if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
			j->skipping = true;
		lseek(fd, st.st_size, SEEK_SET);
	}
}

/* events.jsonl.1, whole, before the current file (for --since) */
static void read_old(ev_cmd *c, journal *j, char *buf) {
	char path[PATH_MAX + 32];
	journal_path(j, PB_JOURNAL_OLD, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	journal old = *j; /* its own line buffer: j may hold a torn line */
	old.plen = 0, old.skipping = false, old.part = malloc(OB_LINE_MAX + 1);
	if (old.part)
		drain_fd(c, &old, fd, buf);
	free(old.part);
	j->bad = old.bad;
	close(fd);
}

/* read what is new; a rotated file is finished, then the new one opened */
static void journal_poll(ev_cmd *c, journal *j, char *buf) {
	if (j->fd >= 0)
		drain_fd(c, j, j->fd, buf);
	char path[PATH_MAX + 32];
	journal_path(j, PB_JOURNAL, path, sizeof path);
	struct stat st;
	if (stat(path, &st) < 0 || (j->fd >= 0 && st.st_dev == j->dev && st.st_ino == j->ino))
		return;
	if (j->fd >= 0) {
		drain_fd(c, j, j->fd, buf);
		close(j->fd);
		j->fd = -1;
	}
	journal_open(j, false);
	if (j->fd >= 0)
		drain_fd(c, j, j->fd, buf);
}

static void journal_free(journal *j) {
	if (j->fd >= 0)
		close(j->fd);
	free(j->part);
	free(j);
}

static journal *find_journal(ev_cmd *c, const char *key) {
	for (size_t i = 0; i < c->nj; i++)
		if (!strcmp(c->j[i]->key, key))
			return c->j[i];
	return NULL;
}

/* a new journal, empty; NULL (named on stderr) when it cannot be stored */
static journal *new_journal(ev_cmd *c, const char *key) {
	ms_err err = {0};
	journal **a = grow_room(c->j, &c->capj, c->nj, sizeof *c->j, JOURNALS_FIRST, &err);
	if (!a) {
		lost(c, key, "its journal", err.msg);
		return NULL;
	}
	c->j = a;
	journal *j = calloc(1, sizeof *j);
	if (!j || !(j->part = malloc(OB_LINE_MAX + 1))) {
		free(j);
		lost(c, key, "its journal", "out of memory for its buffers");
		return NULL;
	}
	return j;
}

/* A container directory found by a scan. Known: mark it. New: at the first
 * scan, history per --since (or none when following without it); later,
 * everything it has written (it appeared while we followed). */
static void found(ev_cmd *c, const char *dir, const char *key, bool first, char *buf) {
	journal *j = find_journal(c, key);
	if (j) {
		j->present = true;
		return;
	}
	if (!ob_filter_match_key(&c->filter, key) || !(j = new_journal(c, key)))
		return;
	snprintf(j->key, sizeof j->key, "%s", key);
	snprintf(j->dir, sizeof j->dir, "%s", dir);
	j->fd = -1, j->present = true;
	c->j[c->nj++] = j;
	if (c->ino >= 0)
		inotify_add_watch(c->ino, dir, JOURNAL_WATCH);
	bool history = !first || !c->follow || c->since;
	journal_open(j, !history);
	if (!history)
		return;
	if (j->fd >= 0)
		drain_fd(c, j, j->fd, buf);
	if (c->since && (!j->first || j->first > c->since))
		read_old(c, j, buf);
}

static void scan_dir(ev_cmd *c, const char *root, const char *prefix, int depth, bool first,
                     char *buf) {
	DIR *d = opendir(root);
	if (!d)
		return;
	if (c->ino >= 0 && depth > 0)
		inotify_add_watch(c->ino, root, DIR_WATCH);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		char dir[PATH_MAX], key[KEY_MAX];
		if ((size_t)snprintf(dir, sizeof dir, "%s/%s", root, de->d_name) >= sizeof dir ||
		    (size_t)snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "/" : "",
		                     de->d_name) >= sizeof key)
			continue;
		if (depth > 1) {
			scan_dir(c, dir, key, depth - 1, first, buf);
			continue;
		}
		found(c, dir, key, first, buf);
	}
	closedir(d);
}

/* every journal under both roots; those gone are read to their end and dropped */
static void scan(ev_cmd *c, bool first, char *buf) {
	for (size_t i = 0; i < c->nj; i++)
		c->j[i]->present = false;
	if (c->roots.run)
		scan_dir(c, c->roots.run, "", 1, first, buf);
	if (c->roots.containerd)
		scan_dir(c, c->roots.containerd, "", 2, first, buf);
	size_t k = 0;
	for (size_t i = 0; i < c->nj; i++) {
		if (c->j[i]->present) {
			c->j[k++] = c->j[i];
			continue;
		}
		journal_poll(c, c->j[i], buf);
		journal_free(c->j[i]);
	}
	c->nj = k;
}

/* ─── following ─────────────────────────────────────────────────────── */

/* wait for inotify (or the rescan period, or --until); true if a directory
 * changed (a container came or went) */
static bool wait_change(ev_cmd *c, int timeout_ms) {
	if (c->ino < 0) {
		poll(NULL, 0, timeout_ms);
		return true;
	}
	struct pollfd pfd = {c->ino, POLLIN, 0};
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return false;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool dirs = false;
	ssize_t n;
	while ((n = read(c->ino, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			dirs |= (e->mask & (IN_ISDIR | IN_IGNORED | IN_DELETE_SELF)) != 0;
			p += sizeof *e + e->len;
		}
	return dirs;
}

static int follow(ev_cmd *c, char *buf) {
	int64_t last_scan = ob_now();
	while (!stop) {
		int64_t now = ob_now();
		if (c->until && now > c->until)
			break;
		int timeout = OB_RESCAN_MS;
		if (c->until && (c->until - now) / 1000000 < timeout)
			timeout = (int)((c->until - now) / 1000000) + 1;
		bool dirs = wait_change(c, timeout);
		now = ob_now();
		if (dirs || now - last_scan >= OB_RESCAN_MS * 1000000LL) {
			scan(c, false, buf);
			last_scan = now;
		}
		for (size_t i = 0; i < c->nj; i++)
			journal_poll(c, c->j[i], buf);
		flush_pending(c);
	}
	return 0;
}

/* ─── the command ───────────────────────────────────────────────────── */

static void usage(FILE *f) {
	fprintf(f, "usage: moonshim [--root DIR] events [--follow|-f] [--since T] [--until T]\n"
	           "         [--filter type=X|id=X]... [--format text|json] "
	           "[--containerd-root DIR] [ID...]\n"
	           "T: RFC 3339, a Unix timestamp, or a duration before now (10m, 1h30m)\n");
}

/* the option at argv[*i] with its value; 1 when it was not one of ours */
static int option(ev_cmd *c, int argc, char **argv, int *i, ms_err *err) {
	const char *a = argv[*i];
	if (!strcmp(a, "--follow") || !strcmp(a, "-f")) {
		c->follow = true;
		return 0;
	}
	static const char *const valued[] = {"--since", "--until", "--filter", "--format",
	                                     "--containerd-root"};
	for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) {
		if (strcmp(a, valued[k]))
			continue;
		if (*i + 1 >= argc)
			return ms_fail(err, -EINVAL, "%s needs a value", a);
		const char *v = argv[++*i];
		switch (k) {
		case 0:
			return ob_parse_time(v, ob_now(), &c->since, err);
		case 1:
			return ob_parse_time(v, ob_now(), &c->until, err);
		case 2:
			return ob_filter_add(&c->filter, v, err);
		case 3:
			if (strcmp(v, "json") && strcmp(v, "text"))
				return ms_fail(err, -EINVAL, "--format %s: text or json", v);
			c->json = !strcmp(v, "json");
			return 0;
		default:
			c->roots.containerd = v;
			return 0;
		}
	}
	if (a[0] == '-' && a[1])
		return ms_fail(err, -EINVAL, "unknown option %s", a);
	return ob_filter_add_id(&c->filter, a, err);
}

static void release(ev_cmd *c, char *buf) {
	for (size_t i = 0; i < c->nj; i++)
		journal_free(c->j[i]);
	for (size_t i = 0; i < c->np; i++)
		free(c->p[i].text);
	free(c->j), free(c->p), free(c->text), free(buf);
	if (c->ino >= 0)
		close(c->ino);
}

int cmd_events(int argc, char **argv) {
	ev_cmd c = {.roots = {NULL, PB_CONTAINERD_ROOT}, .ino = -1};
	ms_err err = {0};
	for (int i = 1; i < argc; i++) {
		if (cli_global_option(argc, argv, &i))
			continue;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (option(&c, argc, argv, &i, &err)) {
			fprintf(stderr, "moonshim events: %s\n", err.msg);
			usage(stderr);
			return 2;
		}
	}
	c.roots.run = g_cli.root;
	char *buf = malloc(READ_CHUNK);
	c.text = malloc(TEXT_MAX);
	if (!buf || !c.text) {
		fprintf(stderr, "moonshim events: out of memory\n");
		release(&c, buf);
		return 1;
	}
	if (c.follow) {
		c.ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		struct sigaction sa = {.sa_handler = on_signal};
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	scan(&c, true, buf);
	flush_pending(&c);
	if (c.follow)
		follow(&c, buf);
	release(&c, buf);
	if (c.lost) {
		fprintf(stderr, "moonshim events: %zu events or journals could not be stored\n",
		        c.lost);
		return 1;
	}
	return 0;
}
