/*
 * psi.c — PSI rules: parsing "memory:some:150ms:1s[:5s]", and the
 * goroutine that watches one rule.
 *
 * A kernel trigger ("some 150000 1000000" written to the pressure file,
 * then EPOLLPRI) costs nothing while calm. Without CAP_SYS_RESOURCE the
 * kernel (6.5+) accepts only windows that are multiples of 2 s, older
 * kernels only 500 ms..10 s, and unprivileged users none at all before
 * 6.5. So when the asked window is refused we say so and fall back:
 *   1. to the nearest window the kernel accepts (threshold scaled with it)
 *      if that window is within the rule's latency bound;
 *   2. else to polling the file's `total` (µs stalled, fresh on every read):
 *      every 50 ms while calm (10 ms for short windows), every 10 ms once
 *      the total moves and for one window after, firing when the growth
 *      over the window reaches the threshold, at most once per window
 *      (the kernel's own rate limit).
 * Either way the event reports the stall we measured and the span it was
 * measured over, from the same ring of (time, total) samples.
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACTIVE_POLL_NS (10 * 1000000LL)
#define CALM_POLL_NS   (50 * 1000000LL)
#define RING           1024 /* 10 s of 10 ms samples */

static int64_t parse_dur_us(const char *s, size_t n);

/* Do we have CAP_SYS_RESOURCE (triggers of any window, run by psimon)? */
static bool psi_privileged(void) {
	static int cached = -1; /* capabilities do not change under us */
	if (__atomic_load_n(&cached, __ATOMIC_RELAXED) < 0) {
		unsigned long long eff = 0;
		char line[256];
		FILE *f = fopen("/proc/self/status", "re");
		while (f && fgets(line, sizeof line, f))
			if (sscanf(line, "CapEff: %llx", &eff) == 1)
				break;
		if (f)
			fclose(f);
		__atomic_store_n(&cached, (int)((eff >> 24) & 1),
		                 __ATOMIC_RELAXED); /* CAP_SYS_RESOURCE */
	}
	return __atomic_load_n(&cached, __ATOMIC_RELAXED);
}

bool cg_psi_reads_delay_triggers(void) {
	return !psi_privileged();
}

int64_t cg_parse_duration_us(const char *s) {
	return parse_dur_us(s, strlen(s));
}

static int64_t parse_dur_us(const char *s, size_t n) {
	char buf[32];
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	char *end;
	errno = 0;
	double v = strtod(buf, &end);
	if (end == buf || errno || v <= 0)
		return -1;
	double mul = !*end                ? 1
	             : !strcmp(end, "us") ? 1
	             : !strcmp(end, "ms") ? 1e3
	             : !strcmp(end, "s")  ? 1e6
	                                  : -1;
	if (mul < 0)
		return -1;
	/* "inf", "nan" and a count past int64_t's range are malformed too:
	 * converting them would be undefined (fuzzing found it) */
	double us = v * mul + 0.5;
	if (!(us < (double)INT64_MAX))
		return -1;
	return (int64_t)us;
}

static void fmt_dur(char *buf, size_t n, int64_t us) {
	if (us % 1000000 == 0)
		snprintf(buf, n, "%" PRId64 "s", us / 1000000);
	else if (us % 1000 == 0)
		snprintf(buf, n, "%" PRId64 "ms", us / 1000);
	else
		snprintf(buf, n, "%" PRId64 "us", us);
}

int cg_psi_parse(const char *text, cg_psi_spec *out, cg_err *err) {
	const char *f[6];
	size_t len[6];
	int nf = 0;
	for (const char *p = text; nf < 6;) {
		const char *colon = strchr(p, ':');
		f[nf] = p;
		len[nf++] = colon ? (size_t)(colon - p) : strlen(p);
		if (!colon)
			break;
		p = colon + 1;
	}
	if (nf < 4 || nf > 5) {
		cg__err(err, -EINVAL,
		        "PSI rule \"%s\": want RESOURCE:some|full:THRESHOLD:WINDOW[:LATENCY], "
		        "e.g. memory:some:150ms:1s",
		        text);
		return -EINVAL;
	}
	memset(out, 0, sizeof *out);
	out->res = CG_RES_N;
	for (int r = 0; r < CG_RES_N; r++)
		if (len[0] == strlen(cg_resource_name(r)) &&
		    !strncmp(f[0], cg_resource_name(r), len[0]))
			out->res = r;
	if (out->res == CG_RES_N) {
		cg__err(err, -EINVAL,
		        "PSI rule \"%s\": unknown resource \"%.*s\" (cpu, memory or io)", text,
		        (int)len[0], f[0]);
		return -EINVAL;
	}
	if (len[1] == 4 && !strncmp(f[1], "some", 4))
		out->full = false;
	else if (len[1] == 4 && !strncmp(f[1], "full", 4))
		out->full = true;
	else {
		cg__err(err, -EINVAL, "PSI rule \"%s\": \"%.*s\" is neither some nor full", text,
		        (int)len[1], f[1]);
		return -EINVAL;
	}
	out->threshold_us = parse_dur_us(f[2], len[2]);
	out->window_us = parse_dur_us(f[3], len[3]);
	out->latency_us = nf == 5 ? parse_dur_us(f[4], len[4]) : out->window_us;
	if (out->threshold_us <= 0 || out->window_us <= 0 || out->latency_us <= 0) {
		cg__err(err, -EINVAL, "PSI rule \"%s\": bad duration (use e.g. 150ms, 1s, 500us)",
		        text);
		return -EINVAL;
	}
	if (out->window_us > 10000000 || out->threshold_us > out->window_us) {
		cg__err(
		    err, -EINVAL,
		    "PSI rule \"%s\": the window may be at most 10s and the threshold at most the "
		    "window",
		    text);
		return -EINVAL;
	}
	return 0;
}

int cg_psi_format(const cg_psi_spec *s, char *buf, size_t n) {
	char t[24], w[24], l[24];
	fmt_dur(t, sizeof t, s->threshold_us);
	fmt_dur(w, sizeof w, s->window_us);
	fmt_dur(l, sizeof l, s->latency_us);
	if (s->latency_us == s->window_us)
		return snprintf(buf, n, "%s:%s:%s:%s", cg_resource_name(s->res),
		                s->full ? "full" : "some", t, w);
	return snprintf(buf, n, "%s:%s:%s:%s:%s", cg_resource_name(s->res),
	                s->full ? "full" : "some", t, w, l);
}

/* ─── One rule's goroutine ───────────────────────────────────────────── */

typedef struct {
	int64_t t, total; /* ns, µs */
} sample;

typedef struct {
	cg_watch *w;
	cg_psi_spec spec;
	char file[32], name[64];
	int fd; /* the pressure file (the trigger's own fd in trigger mode) */
	sample ring[RING];
	int head, n;
} psi_state;

static void push(psi_state *s, int64_t t, int64_t total) {
	s->ring[(s->head + s->n) % RING] = (sample){t, total};
	if (s->n < RING)
		s->n++;
	else
		s->head = (s->head + 1) % RING;
}

/* Growth of total over the last window: against the newest sample at least
 * a window old, else the oldest we have. */
static void stall_over(const psi_state *s, int64_t window_ns, int64_t *stall_us, int64_t *span_ns) {
	const sample *last = &s->ring[(s->head + s->n - 1) % RING];
	const sample *base = &s->ring[s->head];
	for (int i = s->n - 1; i >= 0; i--) {
		const sample *x = &s->ring[(s->head + i) % RING];
		if (last->t - x->t >= window_ns) {
			base = x;
			break;
		}
	}
	*stall_us = last->total - base->total;
	*span_ns = last->t - base->t;
}

/* Read the rule's line of the pressure file; -errno. */
static int read_total(psi_state *s, int64_t *total) {
	char buf[256];
	ssize_t r = pread(s->fd, buf, sizeof buf - 1, 0);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	cg_pressure p;
	cg_err e;
	if (cg_parse_pressure(buf, &p, &e))
		return -EINVAL;
	cg_pressure_line *l = s->spec.full ? &p.full : &p.some;
	if (!l->present)
		return -ENOTSUP;
	*total = (int64_t)l->total;
	return 0;
}

/* Try a kernel trigger on a fresh fd; the fd, or -errno. */
static int try_trigger(psi_state *s, int64_t threshold_us, int64_t window_us) {
	cg_err e;
	int fd = cg__open(s->w->c, CG_TREE_UNIFIED, s->file, O_RDWR | O_NONBLOCK, &e);
	if (fd < 0)
		return fd;
	char line[64];
	int n = snprintf(line, sizeof line, "%s %" PRId64 " %" PRId64,
	                 s->spec.full ? "full" : "some", threshold_us, window_us);
	if (write(fd, line, (size_t)n + 1) < 0) { /* the kernel wants the NUL too */
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static bool emit_pressure(psi_state *s, cg_psi_mode mode, int64_t used_window_us) {
	cg_event ev = {.kind = CG_EV_PRESSURE, .at = rt_now()};
	int64_t span;
	ev.psi.spec = s->spec;
	ev.psi.mode = mode;
	ev.psi.used_window_us = used_window_us;
	stall_over(s,
	           (mode == CG_PSI_TRIGGER ? used_window_us : s->spec.window_us) * RT_MICROSECOND,
	           &ev.psi.stall_us, &span);
	ev.psi.window_us = span / RT_MICROSECOND;
	return cg__watch_emit(s->w, &ev);
}

/* Why a read of the pressure file failed, said once (ENODEV: the file was
 * deactivated under us — the cgroup removed, which the cgroup.events loop
 * reports, or PSI turned off for it). */
static void read_failed(psi_state *s, int rc) {
	if (rc == -ENODEV && cg__removed(s->w->c))
		return;
	cg__watch_say(s->w, CG_EV_ERROR, "%s: read %s/%s: %s%s; this rule stops", s->name,
	              cg_path(s->w->c), s->file, strerror(-rc),
	              rc == -ENODEV ? " (PSI is off for this cgroup: cgroup.pressure is 0)" : "");
}

/* Trigger mode: park on EPOLLPRI. With CAP_SYS_RESOURCE the kernel's
 * psimon checks the trigger and our reads do not disturb it, so sample
 * every half window to say how much stall the window held. Without it the
 * trigger is checked only by the 2 s averaging work, which a read of the
 * file postpones (reading refreshes the averages and the work then skips
 * its trigger check): read only when the trigger has fired. */
static void run_trigger(psi_state *s, rt_pollfd *pd, int64_t window_us) {
	bool sample = psi_privileged();
	for (;;) {
		int rc = rt_poll_wait(pd, RT_POLL_PRI,
		                      sample ? rt_deadline_in(window_us * RT_MICROSECOND / 2)
		                             : RT_FOREVER);
		if (rc && rc != -ETIMEDOUT)
			return; /* stopping */
		bool fired = rc == 0;
		int64_t total;
		if ((rc = read_total(s, &total))) {
			read_failed(s, rc);
			return;
		}
		push(s, rt_now(), total);
		if (fired && !emit_pressure(s, CG_PSI_TRIGGER, window_us))
			return;
	}
}

/* How often polling looks while calm: a tenth of the window, 10..50 ms. */
static int64_t calm_poll_ns(int64_t window_us) {
	int64_t ns = window_us * RT_MICROSECOND / 10;
	return ns > CALM_POLL_NS ? CALM_POLL_NS : ns < ACTIVE_POLL_NS ? ACTIVE_POLL_NS : ns;
}

/* Polling mode (the fallback). */
static void run_poll(psi_state *s) {
	int64_t window_ns = s->spec.window_us * RT_MICROSECOND,
	        calm = calm_poll_ns(s->spec.window_us);
	int64_t active_until = 0, last_event = INT64_MIN / 2, prev = -1, next;
	for (;;) {
		int64_t total;
		int rc = read_total(s, &total);
		if (rc) {
			read_failed(s, rc);
			return;
		}
		int64_t now = rt_now();
		push(s, now, total);
		if (prev >= 0 && total > prev)
			active_until = now + window_ns;
		prev = total;
		int64_t stall, span;
		stall_over(s, window_ns, &stall, &span);
		if (stall >= s->spec.threshold_us && now - last_event >= window_ns) {
			last_event = now;
			if (!emit_pressure(s, CG_PSI_POLL, 0))
				return;
		}
		/* Ticks sit on a grid of the step shared by every polled rule of
		 * the process, so rules (and cgroups) wake together: one wake-up
		 * serves them all, which is most of the idle cost. */
		int64_t step = now < active_until ? ACTIVE_POLL_NS : calm;
		next = (now / step + 1) * step;
		if (!cg__watch_sleep_until(s->w, next))
			return;
	}
}

/* What arm_trigger gives instead of a trigger's fd. */
enum { ARM_POLL = -1, ARM_STOP = -2 };

/* The nearest windows some kernel accepts (500 ms minimum before 6.5,
 * multiples of 2 s unprivileged on 6.5+), tried within the rule's latency
 * bound with the threshold scaled alike: the fd, or < 0. */
static int nearest_trigger(psi_state *s, int64_t *window, int64_t *threshold) {
	int64_t asked = s->spec.window_us;
	int64_t cands[2] = {asked < 500000 ? 500000 : 0, (asked + 1999999) / 2000000 * 2000000};
	for (int i = 0; i < 2; i++) {
		int64_t cw = cands[i];
		if (!cw || cw == asked || cw > 10000000 || cw > s->spec.latency_us)
			continue;
		int64_t ct = *threshold * cw / asked;
		int fd = try_trigger(s, ct, cw);
		if (fd >= 0) {
			*window = cw;
			*threshold = ct;
			return fd;
		}
	}
	return -1;
}

/* Say why the window asked for was refused and what is done instead (fd:
 * the nearest trigger's, or < 0: polling). False if the watch is stopping. */
static bool say_fallback(psi_state *s, int fd, int first_err, int64_t window, int64_t threshold) {
	char asked[16], used[16], thr[16], bound[16];
	fmt_dur(asked, sizeof asked, s->spec.window_us);
	fmt_dur(bound, sizeof bound, s->spec.latency_us);
	if (fd >= 0) {
		fmt_dur(used, sizeof used, window);
		fmt_dur(thr, sizeof thr, threshold);
		return cg__watch_say(
		    s->w, CG_EV_NOTICE,
		    "%s: the kernel refused a %s window (%s); using the nearest it "
		    "accepts, %s with threshold %s (within the %s latency bound)",
		    s->name, asked, strerror(-first_err), used, thr, bound);
	}
	char every[32];
	int64_t calm_ms = calm_poll_ns(s->spec.window_us) / 1000000;
	if (calm_ms == ACTIVE_POLL_NS / 1000000)
		snprintf(every, sizeof every, "every %lld ms", (long long)calm_ms);
	else
		snprintf(every, sizeof every, "every %lld-%lld ms",
		         (long long)(ACTIVE_POLL_NS / 1000000), (long long)calm_ms);
	const char *why = first_err != -EINVAL ? ""
	                  : psi_privileged()   ? ": this kernel takes windows of 500ms..10s"
	                                       : ": without CAP_SYS_RESOURCE windows must be "
	                                         "multiples of 2s";
	return cg__watch_say(
	    s->w, CG_EV_NOTICE,
	    "%s: the kernel refused a %s window (%s%s) and no window it accepts is "
	    "within the %s latency bound; polling %s %s instead",
	    s->name, asked, strerror(-first_err), why, bound, s->file, every);
}

/* The rule's kernel trigger as asked, else the nearest one a kernel takes
 * (said in a notice): its fd, with *window and *threshold as armed; else
 * ARM_POLL (said too), or ARM_STOP (an error said, or the watch stops). */
static int arm_trigger(psi_state *s, int64_t *window, int64_t *threshold) {
	cg_watch *w = s->w;
	int fd = try_trigger(s, *threshold, *window);
	if (fd >= 0)
		return fd;
	if (fd == -ENOENT) {
		cg__watch_say(
		    w, CG_EV_ERROR,
		    "%s: %s/%s does not exist (PSI is off: psi=0 on the kernel command line, "
		    "or cgroup.pressure is 0)",
		    s->name, cg_path(w->c), s->file);
		return ARM_STOP;
	}
	if (fd != -EINVAL && fd != -EPERM && fd != -EACCES) {
		cg__watch_say(w, CG_EV_ERROR, "%s: %s/%s: %s", s->name, cg_path(w->c), s->file,
		              strerror(-fd));
		return ARM_STOP;
	}
	int first_err = fd;
	fd = nearest_trigger(s, window, threshold);
	if (!say_fallback(s, fd, first_err, *window, *threshold)) {
		if (fd >= 0)
			close(fd);
		return ARM_STOP;
	}
	return fd >= 0 ? fd : ARM_POLL;
}

/* Watch the armed trigger fd (closed here) until the watch stops. */
static void watch_trigger(psi_state *s, int fd, int64_t window) {
	s->fd = fd;
	int rc;
	rt_pollfd *pd = rt_poll_open(fd, &rc);
	if (!pd) {
		cg__watch_say(s->w, CG_EV_ERROR, "%s: netpoll: %s", s->name, strerror(-rc));
		close(fd);
		s->fd = -1;
		return;
	}
	if (cg__watch_track(s->w, pd)) {
		int64_t total;
		if (read_total(s, &total) == 0)
			push(s, rt_now(), total);
		run_trigger(s, pd, window);
	}
	cg__watch_close(s->w, pd); /* closes fd */
	s->fd = -1;
}

/* Poll the pressure file's total until the watch stops. */
static void watch_poll(psi_state *s) {
	cg_err e = {0};
	s->fd = cg__open(s->w->c, CG_TREE_UNIFIED, s->file, O_RDONLY, &e);
	if (s->fd < 0) {
		cg__watch_say(s->w, CG_EV_ERROR, "%s: %s", s->name, e.msg);
		return;
	}
	run_poll(s);
	close(s->fd);
	s->fd = -1;
}

void cg__psi_loop(void *arg) {
	cg__psi_arg *a = arg;
	cg_watch *w = a->w;
	psi_state *s = calloc(1, sizeof *s);
	if (!s) {
		cg__watch_say(w, CG_EV_ERROR, "out of memory for a PSI rule");
	} else {
		s->w = w;
		s->spec = a->spec;
		s->fd = -1;
		snprintf(s->file, sizeof s->file, "%s.pressure", cg_resource_name(s->spec.res));
		cg_psi_format(&s->spec, s->name, sizeof s->name);
		int64_t window = s->spec.window_us, threshold = s->spec.threshold_us;
		int fd = arm_trigger(s, &window, &threshold);
		if (fd >= 0)
			watch_trigger(s, fd, window);
		else if (fd == ARM_POLL)
			watch_poll(s);
	}
	free(s);
	free(a);
	rt_wg_done(&w->wg);
}
