/* publish.c — the status snapshot and event journal of one supervised
 * container, and the readers' scan (publish.h says why files). What must
 * stay true: the supervisor never waits on a reader; a snapshot on disk is
 * always a whole document (rename over it); the journal never grows past
 * twice PB_JOURNAL_MAX. */
#define _GNU_SOURCE
#include "publish.h"

#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* a change is published within this (changes in between are coalesced) */
#define PB_PERIOD_NS (1 * RT_SECOND)
/* and computed sections (health probes, runtime counters) at least this often */
#define PB_REFRESH_NS (10 * RT_SECOND)
#define PB_PROVIDERS  8
#define PB_KEY_MAX    24
#define PB_TYPES_MAX  64              /* event types counted: a policy may emit any type */
#define PB_DIR_MAX    (PATH_MAX - 32) /* room for the file names in it */

struct pb {
	char dir[PB_DIR_MAX];
	rt_mutex mu; /* guards doc and the journal */
	json_t *doc; /* identity, pb_set sections and the event counters */
	/* guards the providers and is held while they run (so pb_withdraw
	 * returns only once none runs); taken before any provider's lock and
	 * never inside p->mu */
	rt_mutex pmu;
	int nprov;
	struct {
		char key[PB_KEY_MAX];
		pb_section_fn fn;
		void *arg;
	} prov[PB_PROVIDERS];
	rt_chan *kick; /* cap 1: something changed */
	rt_chan *stop; /* closed by pb_close */
	rt_chan *done; /* closed by the writer when it ends */
	bool started;
	int jfd; /* events.jsonl, -1 after a failure (said once) */
	size_t jsize;
	bool failed; /* a snapshot write failed (said once) */
};

static void path_in(const pb *p, const char *name, char *out, size_t n) {
	snprintf(out, n, "%s/%s", p->dir, name);
}

static int open_journal(pb *p) {
	char path[PATH_MAX];
	path_in(p, PB_JOURNAL, path, sizeof path);
	p->jfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	struct stat st;
	p->jsize = p->jfd >= 0 && !fstat(p->jfd, &st) ? (size_t)st.st_size : 0;
	return p->jfd;
}

pb *pb_open(const char *dir, json_t *identity, ms_err *err) {
	if (strlen(dir) >= PB_DIR_MAX) {
		json_decref(identity);
		ms_fail(err, -ENAMETOOLONG, "publishing: %s: path too long", dir);
		return NULL;
	}
	pb *p = calloc(1, sizeof *p);
	if (!p || !identity) {
		free(p);
		json_decref(identity);
		ms_fail(err, -ENOMEM, "publishing: out of memory");
		return NULL;
	}
	snprintf(p->dir, sizeof p->dir, "%s", dir);
	p->mu = p->pmu = (rt_mutex)RT_MUTEX_INIT;
	p->doc = identity;
	json_object_set_new(p->doc, "version", json_integer(PB_VERSION));
	p->kick = rt_chan_new(1, 1);
	p->stop = rt_chan_new(1, 0);
	p->done = rt_chan_new(1, 0);
	int e = !p->kick || !p->stop || !p->done ? -ENOMEM : fs_mkdir_p(dir, 0700, err);
	if (!e && open_journal(p) < 0)
		e = ms_fail(err, -errno, "publishing: %s/%s: %s", dir, PB_JOURNAL, strerror(errno));
	if (e) {
		if (e == -ENOMEM)
			ms_fail(err, e, "publishing: out of memory");
		pb_close(p, false);
		return NULL;
	}
	return p;
}

/* doc[key] = value (consumed); when both are objects, value's keys are
 * added to a copy of the old one (a provider's "go" beside the counted
 * findings) */
static void merge(json_t *doc, const char *key, json_t *value) {
	json_t *old = json_object_get(doc, key);
	if (json_is_object(old) && json_is_object(value)) {
		json_t *m = json_copy(old);
		json_object_update(m, value);
		json_decref(value);
		value = m;
	}
	json_object_set_new(doc, key, value);
}

void pb_provide(pb *p, const char *key, pb_section_fn fn, void *arg) {
	if (!p)
		return;
	rt_mutex_lock(&p->pmu);
	if (p->nprov < PB_PROVIDERS) {
		snprintf(p->prov[p->nprov].key, PB_KEY_MAX, "%s", key);
		p->prov[p->nprov].fn = fn;
		p->prov[p->nprov++].arg = arg;
	}
	rt_mutex_unlock(&p->pmu);
}

void pb_withdraw(pb *p, void *arg) {
	if (!p)
		return;
	rt_mutex_lock(&p->pmu);
	for (int i = 0; i < p->nprov; i++) {
		if (p->prov[i].arg != arg)
			continue;
		json_t *last = p->prov[i].fn(arg);
		if (last) { /* its last value stays, as a section set with pb_set */
			rt_mutex_lock(&p->mu);
			merge(p->doc, p->prov[i].key, last);
			rt_mutex_unlock(&p->mu);
		}
		p->prov[i--] = p->prov[--p->nprov];
	}
	rt_mutex_unlock(&p->pmu);
	pb_dirty(p);
}

void pb_dirty(pb *p) {
	if (!p)
		return;
	char b = 0;
	rt_case c = {.c = p->kick, .dir = RT_SEND, .elem = &b};
	rt_select(&c, 1, 0); /* already kicked: the writer will see it */
}

void pb_set(pb *p, const char *key, json_t *value) {
	if (!p) {
		json_decref(value);
		return;
	}
	rt_mutex_lock(&p->mu);
	json_object_set_new(p->doc, key, value ? value : json_null());
	rt_mutex_unlock(&p->mu);
	pb_dirty(p);
}

/* ─── the event counters and the journal (under p->mu) ───────────────── */

/* parent[key] as an object, made when missing */
static json_t *section(json_t *parent, const char *key) {
	json_t *o = json_object_get(parent, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(parent, key, o);
	}
	return o;
}

static void count(json_t *obj, const char *key, json_int_t n) {
	json_t *v = json_object_get(obj, key);
	if (!v && json_object_size(obj) >= PB_TYPES_MAX)
		return; /* a script inventing types cannot grow the snapshot */
	json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + n : n));
}

/* the last PB_LAST_MAX events in doc[key].last */
static void keep_last(json_t *sec, const char *key, json_t *event) {
	json_t *a = json_object_get(sec, key);
	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(sec, key, a);
	}
	json_array_append(a, event);
	if (json_array_size(a) > PB_LAST_MAX)
		json_array_remove(a, 0);
}

/* a go.* finding about the workload (not the watch's own summary, not
 * moonshim's runtime watching itself) */
static bool workload_finding(const char *type, json_t *event) {
	const char *subject = json_string_value(json_object_get(event, "subject"));
	return !strncmp(type, "go.", 3) && strcmp(type, "go.watch") &&
	       !(subject && !strcmp(subject, "moonshim"));
}

static void tally(pb *p, const char *type, json_t *event) {
	count(section(p->doc, "events"), type, 1);
	if (!strcmp(type, "policy.action")) {
		json_t *pol = section(p->doc, "policy");
		const char *action = json_string_value(json_object_get(event, "action"));
		count(section(pol, "actions"), action ? action : "unknown", 1);
		json_t *step = json_object_get(event, "step");
		if (json_is_integer(step))
			json_object_set(pol, "step", step);
		json_object_set(pol, "last", event);
	} else if (workload_finding(type, event)) {
		json_t *go = section(p->doc, "go");
		count(section(go, "findings"), type, 1);
		keep_last(go, "last_findings", event);
	} else if (!strcmp(type, "error")) {
		/* an event stands for the ones its rate limit held back too */
		json_t *held = json_object_get(event, "suppressed");
		json_int_t n = 1 + (json_integer_value(held) > 0 ? json_integer_value(held) : 0);
		json_t *er = section(p->doc, "errors");
		json_t *total = json_object_get(er, "count");
		json_object_set_new(er, "count", json_integer(json_integer_value(total) + n));
		const char *script = json_string_value(json_object_get(event, "script"));
		count(section(er, "by_script"), script ? script : "moonshim", n);
		keep_last(er, "last", event);
	}
}

/* Renamed away at PB_JOURNAL_MAX: readers see at most two files. */
static void journal(pb *p, const char *line, size_t len) {
	if (p->jfd < 0)
		return;
	if (p->jsize + len + 1 > PB_JOURNAL_MAX && p->jsize) {
		char cur[PATH_MAX], old[PATH_MAX];
		path_in(p, PB_JOURNAL, cur, sizeof cur);
		path_in(p, PB_JOURNAL_OLD, old, sizeof old);
		close(p->jfd);
		if (rename(cur, old) || open_journal(p) < 0) {
			fprintf(stderr, "moonshim: publishing: %s: %s (the journal stops)\n", cur,
			        strerror(errno));
			if (p->jfd >= 0)
				close(p->jfd);
			p->jfd = -1;
			return;
		}
	}
	/* the line and its newline (ev_observer's line[len]) in one write: a
	 * reader never sees half */
	ssize_t w = write(p->jfd, line, len + 1);
	if (w > 0)
		p->jsize += (size_t)w;
}

static void observe(void *arg, const char *type, json_t *event, const char *line, size_t len) {
	pb *p = arg;
	rt_mutex_lock(&p->mu);
	tally(p, type, event);
	journal(p, line, len);
	rt_mutex_unlock(&p->mu);
	pb_dirty(p);
}

void pb_observe(pb *p, ev_log *l) {
	if (p && l && ev_observe(l, observe, p) < 0)
		fprintf(stderr,
		        "moonshim: publishing: too many event observers (events not journaled)\n");
}

/* ─── the snapshot ───────────────────────────────────────────────────── */

static json_t *runtime_section(void) {
	rt_counters c;
	rt_counters_get(&c);
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	int threads = 0;
	DIR *d = opendir("/proc/self/task");
	for (struct dirent *e; d && (e = readdir(d));)
		threads += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return json_pack("{s:i, s:I, s:I, s:I, s:i, s:I}", "goroutines", rt_goroutines(), "steals",
	                 (json_int_t)c.steals, "parks", (json_int_t)c.parks, "switches",
	                 (json_int_t)c.switches, "threads", threads, "rss_bytes",
	                 (json_int_t)rss * sysconf(_SC_PAGESIZE));
}

/* The document as it is now; NULL on ENOMEM. */
static char *snapshot(pb *p) {
	json_t *sec[PB_PROVIDERS] = {0};
	char key[PB_PROVIDERS][PB_KEY_MAX];
	rt_mutex_lock(&p->pmu); /* outside p->mu: providers take their own locks */
	int n = p->nprov;
	for (int i = 0; i < n; i++) {
		sec[i] = p->prov[i].fn(p->prov[i].arg);
		memcpy(key[i], p->prov[i].key, PB_KEY_MAX);
	}
	rt_mutex_unlock(&p->pmu);
	char when[48];
	ev_time(when, sizeof when);
	char *s = NULL;
	rt_mutex_lock(&p->mu);
	/* shallow: the counted sections are shared, and dumped under the lock
	 * the observer changes them under */
	json_t *doc = json_copy(p->doc);
	if (doc) {
		for (int i = 0; i < n; i++)
			if (sec[i])
				merge(doc, key[i], sec[i]);
		json_object_set_new(doc, "runtime", runtime_section());
		json_object_set_new(doc, "updated", json_string(when));
		s = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
	} else {
		for (int i = 0; i < n; i++)
			json_decref(sec[i]);
	}
	rt_mutex_unlock(&p->mu);
	return s;
}

/* status.json replaced whole: a temporary file renamed over it */
static void write_status(pb *p) {
	char *s = snapshot(p);
	if (!s)
		return;
	char tmp[PATH_MAX], path[PATH_MAX];
	path_in(p, PB_STATUS_TMP, tmp, sizeof tmp);
	path_in(p, PB_STATUS, path, sizeof path);
	size_t len = strlen(s);
	rt_syscall_enter();
	int e = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, s, len) != (ssize_t)len)
		e = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	if (!e && rename(tmp, path))
		e = errno;
	rt_syscall_exit();
	free(s);
	if (e && !p->failed) {
		p->failed = true;
		fprintf(stderr, "moonshim: publishing: %s: %s (status not updated)\n", path,
		        strerror(e));
	}
}

/* Waits for a change (or the refresh), lets changes gather for a period,
 * writes; a last write when stopped. */
static void writer(void *arg) {
	pb *p = arg;
	int64_t last = rt_now();
	for (;;) {
		rt_case c[2] = {{.c = p->stop, .dir = RT_RECV}, {.c = p->kick, .dir = RT_RECV}};
		int i = rt_select(c, 2, rt_deadline_at(last, PB_REFRESH_NS));
		if (i == 0)
			break;
		if (i == 1) { /* gather what follows the change, unless stopped */
			rt_case s = {.c = p->stop, .dir = RT_RECV};
			if (!rt_select(&s, 1, rt_deadline_at(last, PB_PERIOD_NS)))
				break;
		}
		write_status(p);
		last = rt_now();
	}
	write_status(p);
	rt_chan_close(p->done);
}

void pb_start(pb *p) {
	if (!p || p->started)
		return;
	write_status(p);
	p->started = true;
	rt_go(writer, p, "publisher");
}

void pb_stop(pb *p) {
	if (!p || !p->started)
		return;
	rt_chan_close(p->stop);
	rt_chan_recv(p->done, NULL);
	p->started = false;
}

static void remove_files(pb *p) {
	static const char *const names[] = {PB_STATUS, PB_JOURNAL, PB_JOURNAL_OLD, PB_STATUS_TMP};
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		path_in(p, names[i], path, sizeof path);
		unlink(path);
	}
	rmdir(p->dir); /* not empty (run's state.json): its owner removes it */
}

void pb_close(pb *p, bool remove) {
	if (!p)
		return;
	if (p->jfd >= 0)
		close(p->jfd);
	if (remove)
		remove_files(p);
	if (p->kick)
		rt_chan_free(p->kick);
	if (p->stop)
		rt_chan_free(p->stop);
	if (p->done)
		rt_chan_free(p->done);
	json_decref(p->doc);
	free(p);
}

/* ─── reading ────────────────────────────────────────────────────────── */

bool pb_alive(pid_t pid, unsigned long long start_time) {
	char state;
	unsigned long long start;
	return pid > 0 && fs_proc_stat(pid, &state, &start) && state != 'Z' && state != 'X' &&
	       start == start_time;
}

typedef struct {
	void (*fn)(const pb_entry *e, void *arg);
	void (*bad)(const char *key, const char *msg, void *arg); /* NULL: stderr */
	void *arg;
	const char *ns; /* depth 2: the namespace being walked */
} scan_ctx;

static void report(const scan_ctx *c, const char *key, const char *msg) {
	if (c->bad)
		c->bad(key, msg, c->arg);
	else
		fprintf(stderr, "moonshim: %s\n", msg);
}

static void visit(const char *dir, const char *key, const scan_ctx *c) {
	pb_entry e = {0};
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, PB_STATUS) >= sizeof path)
		return;
	ms_err err = {0};
	size_t len;
	char *text = fs_read_file(path, PB_STATUS_MAX, &len, &err);
	if (!text) {
		if (err.code != -ENOENT) /* else not published (yet), or gone meanwhile */
			report(c, key, err.msg);
		return;
	}
	e.status = jl_loadb(text, len, 0, path, &err);
	free(text);
	if (!json_is_object(e.status)) {
		char msg[PATH_MAX + 32];
		snprintf(msg, sizeof msg, "%s: not a JSON object", path);
		report(c, key, e.status ? msg : err.msg);
		json_decref(e.status);
		return;
	}
	snprintf(e.dir, sizeof e.dir, "%s", dir);
	snprintf(e.key, sizeof e.key, "%s", key);
	json_t *sup = json_object_get(e.status, "supervisor");
	json_int_t pid = json_integer_value(json_object_get(sup, "pid"));
	json_int_t start = json_integer_value(json_object_get(sup, "start_time"));
	e.live = pid > 0 && pid <= INT_MAX && pb_alive((pid_t)pid, (unsigned long long)start);
	c->fn(&e, c->arg);
	json_decref(e.status);
}

/* the subdirectories of dir (not . and ..; not hidden) */
static int each_dir(const char *dir, void (*fn)(const char *path, const char *name, void *arg),
                    void *arg, ms_err *err) {
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : ms_fail(err, -errno, "%s: %s", dir, strerror(errno));
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < sizeof path)
			fn(path, de->d_name, arg);
	}
	closedir(d);
	return 0;
}

static void scan_container(const char *path, const char *name, void *arg) {
	scan_ctx *c = arg;
	char key[512];
	if (c->ns)
		snprintf(key, sizeof key, "%s/%s", c->ns, name);
	else
		snprintf(key, sizeof key, "%s", name);
	visit(path, key, c);
}

static void scan_namespace(const char *path, const char *name, void *arg) {
	scan_ctx c = *(scan_ctx *)arg;
	c.ns = name;
	ms_err err = {0};
	each_dir(path, scan_container, &c, &err);
}

int pb_scan_report(const char *root, int depth, void (*fn)(const pb_entry *e, void *arg),
                   void (*bad)(const char *key, const char *msg, void *arg), void *arg,
                   ms_err *err) {
	scan_ctx c = {.fn = fn, .bad = bad, .arg = arg};
	return each_dir(root, depth == 2 ? scan_namespace : scan_container, &c, err);
}

int pb_scan(const char *root, int depth, void (*fn)(const pb_entry *e, void *arg), void *arg,
            ms_err *err) {
	return pb_scan_report(root, depth, fn, NULL, arg, err);
}
