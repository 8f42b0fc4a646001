/*
 * watch.c — a cgroup's watcher: goroutines parked on the netpoller that
 * turn kernel notifications into cg_event values on the caller's channel.
 *   events_loop   cgroup.events (populated, frozen), EPOLLPRI
 *   memory_loop   memory.events(.local) counter deltas, EPOLLPRI (v2)
 *   oom_v1_loop   hybrid hosts: eventfds registered through the v1
 *                 cgroup.event_control for memory.oom_control and a
 *                 memory.usage_in_bytes threshold at the soft limit
 *   cg__psi_loop  one per PSI rule (psi.c)
 * Kernel notifications only say "this file changed" (coalesced to one per
 * 10 ms), so every loop re-reads its file and reports what moved.
 * Stopping: cg_watch_stop closes `done` (every send and sleep selects on
 * it) and evicts every tracked pd (every poll wait returns -ECANCELED);
 * each goroutine then closes what it opened and leaves the waitgroup.
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define GONE_CHECK_NS   1000000000LL /* an empty cgroup's removal is seen within this */
#define OOM_BURST_NS    1000000000LL /* after an OOM notification, re-read ... */
#define OOM_REREAD_NS   10000000LL   /* ... this often until the kill is counted */
#define FAILCNT_POLL_NS 1000000000LL

const char *cg_event_name(cg_event_kind k) {
	static const char *const names[] = {"?",        "populated", "frozen", "memory",
	                                    "pressure", "notice",    "error",  "gone"};
	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

bool cg__watch_track(cg_watch *w, rt_pollfd *pd) {
	rt_mutex_lock(&w->mu);
	bool ok = !w->stopping && w->npds < CG_WATCH_MAX_PDS;
	if (ok)
		w->pds[w->npds++] = pd;
	rt_mutex_unlock(&w->mu);
	return ok;
}

void cg__watch_close(cg_watch *w, rt_pollfd *pd) {
	if (!pd)
		return;
	rt_mutex_lock(&w->mu);
	for (int i = 0; i < w->npds; i++)
		if (w->pds[i] == pd) {
			w->pds[i] = w->pds[--w->npds];
			break;
		}
	rt_mutex_unlock(&w->mu);
	int fd = rt_poll_fd(pd);
	rt_poll_close(pd);
	close(fd);
}

bool cg__watch_emit(cg_watch *w, cg_event *ev) {
	ev->tag = w->tag;
	rt_case cs[2] = {{.c = w->out, .dir = RT_SEND, .elem = ev}, {.c = w->done, .dir = RT_RECV}};
	return rt_select(cs, 2, RT_FOREVER) == 0;
}

bool cg__watch_sleep_until(cg_watch *w, int64_t deadline) {
	rt_case cs[1] = {{.c = w->done, .dir = RT_RECV}};
	return rt_select(cs, 1, deadline) == -ETIMEDOUT;
}

bool cg__watch_say(cg_watch *w, cg_event_kind k, const char *fmt, ...) {
	cg_event ev = {.kind = k, .at = rt_now()};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev.msg, sizeof ev.msg, fmt, ap);
	va_end(ap);
	return cg__watch_emit(w, &ev);
}

/* Open `file` of `tree` for notifications and register it; NULL (with an
 * ERROR event already sent, unless quiet) when that fails. */
static rt_pollfd *watch_open(cg_watch *w, int tree, const char *file, bool quiet) {
	cg_err e = {0};
	int fd = cg__open(w->c, tree, file, O_RDONLY | O_NONBLOCK, &e);
	if (fd < 0) {
		if (!quiet)
			cg__watch_say(w, CG_EV_ERROR, "%s", e.msg);
		return NULL;
	}
	int rc;
	rt_pollfd *pd = rt_poll_open(fd, &rc);
	if (!pd) {
		close(fd);
		cg__watch_say(w, CG_EV_ERROR, "netpoll %s/%s: %s", cg_path(w->c), file,
		              strerror(-rc));
		return NULL;
	}
	if (!cg__watch_track(w, pd)) {
		rt_poll_close(pd);
		close(fd);
		return NULL;
	}
	return pd;
}

/* pread from 0 (which also re-arms kernfs's notification); -errno. */
static ssize_t reread(rt_pollfd *pd, char *buf, size_t n) {
	ssize_t r = pread(rt_poll_fd(pd), buf, n - 1, 0);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	return r;
}

/* ─── cgroup.events ──────────────────────────────────────────────────── */

static void events_loop(void *arg) {
	cg_watch *w = arg;
	rt_pollfd *pd = watch_open(w, CG_TREE_UNIFIED, "cgroup.events", false);
	int64_t populated = w->populated0, frozen = w->frozen0;
	while (pd) {
		char buf[256];
		ssize_t r = reread(pd, buf, sizeof buf);
		if (r < 0) {
			if (r == -ENODEV || r == -ENOENT)
				cg__watch_say(w, CG_EV_GONE, "%s was removed", cg_path(w->c));
			else
				cg__watch_say(w, CG_EV_ERROR, "read %s/cgroup.events: %s",
				              cg_path(w->c), strerror((int)-r));
			break;
		}
		int64_t p = populated, f = frozen;
		cg_err e;
		if (cg_parse_kv(buf, "populated", &p, &e) != 0) {
			cg__watch_say(w, CG_EV_ERROR, "%s/cgroup.events: %s", cg_path(w->c), e.msg);
			break;
		}
		cg_parse_kv(buf, "frozen", &f, NULL); /* absent before 5.2 */
		int64_t now = rt_now();
		if (populated >= 0 && p != populated) {
			cg_event ev = {.kind = CG_EV_POPULATED, .at = now, .value = (int)p};
			if (!cg__watch_emit(w, &ev))
				break;
		}
		if (frozen >= 0 && f != frozen) {
			cg_event ev = {.kind = CG_EV_FROZEN, .at = now, .value = (int)f};
			if (!cg__watch_emit(w, &ev))
				break;
		}
		populated = p;
		frozen = f;
		/* Removal raises no EPOLLPRI (nor inotify event) on cgroup.events,
		 * and only an empty cgroup can be removed: while empty, look once
		 * a second whether the file still reads. */
		int rc = rt_poll_wait(pd, RT_POLL_PRI,
		                      populated ? RT_FOREVER : rt_deadline_in(GONE_CHECK_NS));
		if (rc && rc != -ETIMEDOUT)
			break;
	}
	cg__watch_close(w, pd);
	rt_wg_done(&w->wg);
}

/* ─── memory.events (v2) ─────────────────────────────────────────────── */

static bool mem_delta(const cg_memory_events *now, const cg_memory_events *was,
                      cg_memory_events *d) {
	d->low = now->low - was->low;
	d->high = now->high - was->high;
	d->max = now->max - was->max;
	d->oom = now->oom - was->oom;
	d->oom_kill = now->oom_kill - was->oom_kill;
	d->oom_group_kill = now->oom_group_kill - was->oom_group_kill;
	return d->low || d->high || d->max || d->oom || d->oom_kill || d->oom_group_kill;
}

static void memory_loop(void *arg) {
	cg_watch *w = arg;
	const char *file = w->local ? "memory.events.local" : "memory.events";
	rt_pollfd *pd = watch_open(w, CG_TREE_UNIFIED, file, false);
	cg_memory_events was = {0};
	bool first = true;
	while (pd) {
		char buf[512];
		ssize_t r = reread(pd, buf, sizeof buf);
		if (r < 0) {
			if (r != -ENODEV && r != -ENOENT) /* removal: events_loop says GONE */
				cg__watch_say(w, CG_EV_ERROR, "read %s/%s: %s", cg_path(w->c), file,
				              strerror((int)-r));
			break;
		}
		cg_memory_events now = {0}, d;
		cg_err e;
		int64_t *f[] = {&now.low, &now.high,     &now.max,
		                &now.oom, &now.oom_kill, &now.oom_group_kill};
		const char *k[] = {"low", "high", "max", "oom", "oom_kill", "oom_group_kill"};
		bool bad = false;
		for (int i = 0; i < 6 && !bad; i++) {
			int rc = cg_parse_kv(buf, k[i], f[i], &e);
			bad = rc == -EINVAL || (rc == -ENOENT && i < 3);
		}
		if (bad) {
			cg__watch_say(w, CG_EV_ERROR, "%s/%s: %s", cg_path(w->c), file, e.msg);
			break;
		}
		if (!first && mem_delta(&now, &was, &d)) {
			cg_event ev = {.kind = CG_EV_MEMORY, .at = rt_now()};
			ev.mem.delta = d;
			ev.mem.total = now;
			if (!cg__watch_emit(w, &ev))
				break;
		}
		was = now;
		first = false;
		if (rt_poll_wait(pd, RT_POLL_PRI, RT_FOREVER) != 0)
			break;
	}
	cg__watch_close(w, pd);
	rt_wg_done(&w->wg);
}

/* ─── memory on a hybrid host (v1 notifications) ──────────────────────── */

/* "<eventfd> <fd of file> [args]" into the v1 cgroup.event_control. */
static int v1_register(cg_watch *w, int efd, const char *file, const char *args, int *keep_fd) {
	cg_err e = {0};
	int fd = cg__open(w->c, CG_TREE_MEMORY, file, O_RDONLY, &e);
	if (fd < 0) {
		cg__watch_say(w, CG_EV_ERROR, "%s", e.msg);
		return fd;
	}
	char line[64];
	snprintf(line, sizeof line, "%d %d%s%s", efd, fd, args ? " " : "", args ? args : "");
	int rc = cg__write(w->c, CG_TREE_MEMORY, "cgroup.event_control", line, &e);
	if (rc) {
		close(fd);
		cg__watch_say(w, CG_EV_ERROR, "%s", e.msg);
		return rc;
	}
	*keep_fd = fd; /* the registration lives as long as the eventfd */
	return 0;
}

static void oom_v1_loop(void *arg) {
	cg_watch *w = arg;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int oom_fd = -1, usage_fd = -1;
	rt_pollfd *pd = NULL;
	cg_err e = {0};
	cg_memory_events was = {0}, now;
	cg_memory m;
	if (efd < 0) {
		cg__watch_say(w, CG_EV_ERROR, "eventfd: %s", strerror(errno));
		goto out;
	}
	if (cg_read_memory_events(w->c, false, &was, &e) || cg_read_memory(w->c, &m, &e)) {
		cg__watch_say(w, CG_EV_ERROR, "%s", e.msg);
		goto out;
	}
	if (v1_register(w, efd, "memory.oom_control", NULL, &oom_fd))
		goto out;
	/* v1 cannot throttle at "high": it is the soft limit, and crossing it
	 * upwards counts as a high event (the threshold fires both ways) */
	int64_t soft = m.high;
	bool above = soft != CG_NOLIMIT && m.current >= soft;
	if (soft != CG_NOLIMIT) {
		char thr[32];
		snprintf(thr, sizeof thr, "%" PRId64, soft);
		if (v1_register(w, efd, "memory.usage_in_bytes", thr, &usage_fd))
			goto out;
	}
	int rc;
	if (!(pd = rt_poll_open(efd, &rc))) {
		cg__watch_say(w, CG_EV_ERROR, "netpoll eventfd: %s", strerror(-rc));
		goto out;
	}
	if (!cg__watch_track(w, pd))
		goto out;
	/* The OOM notification comes when the OOM starts, before the victim is
	 * killed and counted: re-read quickly for a while after one. */
	int64_t burst_until = 0;
	for (;;) {
		/* failcnt ("max") has no notification: look once a second */
		bool burst = rt_now() < burst_until;
		rc = rt_poll_wait(pd, RT_POLL_READ,
		                  rt_deadline_in(burst ? OOM_REREAD_NS : FAILCNT_POLL_NS));
		if (rc && rc != -ETIMEDOUT)
			break;
		uint64_t n;
		while (read(efd, &n, sizeof n) == sizeof n)
			burst_until = rt_now() + OOM_BURST_NS;
		if (cg_read_memory_events(w->c, false, &now, &e) || cg_read_memory(w->c, &m, &e)) {
			if (e.code != -ENODEV && e.code != -ENOENT)
				cg__watch_say(w, CG_EV_ERROR, "%s", e.msg);
			break;
		}
		bool up = soft != CG_NOLIMIT && m.current >= soft;
		now.high = was.high + (up && !above);
		above = up;
		cg_memory_events d;
		if (mem_delta(&now, &was, &d)) {
			cg_event ev = {.kind = CG_EV_MEMORY, .at = rt_now()};
			ev.mem.delta = d;
			ev.mem.total = now;
			if (d.oom_kill)
				burst_until = 0; /* the kill is counted: back to calm */
			if (!cg__watch_emit(w, &ev))
				break;
		}
		was = now;
	}
out:
	if (pd) {
		cg__watch_close(w, pd); /* closes efd */
	} else if (efd >= 0) {
		close(efd);
	}
	if (oom_fd >= 0)
		close(oom_fd);
	if (usage_fd >= 0)
		close(usage_fd);
	rt_wg_done(&w->wg);
}

/* ─── start / stop ───────────────────────────────────────────────────── */

cg_watch *cg_watch_start(cg *c, const cg_watch_opts *o, rt_chan *out, cg_err *err) {
	cg_watch_opts none = {0};
	if (!o)
		o = &none;
	if (o->npsi < 0 || o->npsi > CG_WATCH_MAX_PSI) {
		cg__err(err, -EINVAL, "at most %d PSI rules per cgroup", CG_WATCH_MAX_PSI);
		return NULL;
	}
	/* the one file every kernel moonshim supports has: without it nothing
	 * can be watched (wrong path, or not a cgroup2 directory) */
	char buf[256];
	if (cg_read(c, "cgroup.events", buf, sizeof buf, err) < 0)
		return NULL;
	cg_watch *w = calloc(1, sizeof *w);
	rt_chan *done = rt_chan_new(1, 0);
	if (!w || !done) {
		free(w);
		if (done)
			rt_chan_free(done);
		cg__err(err, -ENOMEM, "out of memory");
		return NULL;
	}
	w->c = c;
	w->out = out;
	w->done = done;
	/* the baseline is the state at start: the events goroutine may first
	 * read the file only after the caller has moved on (its P busy, the
	 * caller stolen by another P) and, say, forked a process into the
	 * cgroup, whose "populated 1" it then took for the start state */
	w->populated0 = w->frozen0 = -1;
	cg_parse_kv(buf, "populated", &w->populated0, NULL);
	cg_parse_kv(buf, "frozen", &w->frozen0, NULL);
	w->tag = o->tag;
	w->local = o->local;
	rt_wg_add(&w->wg, 1);
	rt_go(events_loop, w, "cg-watch cgroup.events");
	int mt = cg__tree_for(c, CG_MEMORY);
	if (mt == CG_TREE_UNIFIED) {
		rt_wg_add(&w->wg, 1);
		rt_go(memory_loop, w, "cg-watch memory.events");
	} else if (mt == CG_TREE_MEMORY) {
		rt_wg_add(&w->wg, 1);
		rt_go(oom_v1_loop, w, "cg-watch v1 memory");
	}
	for (int i = 0; i < o->npsi; i++) {
		cg__psi_arg *a = malloc(sizeof *a);
		if (!a)
			continue;
		a->w = w;
		a->spec = o->psi[i];
		rt_wg_add(&w->wg, 1);
		rt_go(cg__psi_loop, a, "cg-watch pressure");
	}
	return w;
}

void cg_watch_stop(cg_watch *w) {
	if (!w)
		return;
	rt_mutex_lock(&w->mu);
	w->stopping = true;
	rt_chan_close(w->done);
	for (int i = 0; i < w->npds; i++)
		rt_poll_evict(w->pds[i]);
	rt_mutex_unlock(&w->mu);
	rt_wg_wait(&w->wg);
	rt_chan_free(w->done);
	free(w);
}
