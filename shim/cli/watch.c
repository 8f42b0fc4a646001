/*
 * watch.c — `moonshim watch`: one JSON line per cgroup event and per
 * sample, until interrupted (SIGINT/SIGTERM through a signalfd on the
 * netpoller) or --duration passes.
 *
 *   moonshim watch --cgroup PATH [--cgroup PATH...] [--psi RULE...]
 *                  [--interval DUR] [--duration DUR] [--local]
 *
 * PATH is a directory of the cgroup2 tree (absolute, or relative to its
 * mount). Lines carry "time" (wall clock), "mono_ns" (CLOCK_MONOTONIC, to
 * compare with a test's own clock), "cgroup" and "event".
 */
#define _GNU_SOURCE
#include "commands.h"

#include "cgroup.h"
#include "io.h"
#include "rt.h"

#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CGROUPS 64
#define MAX_PSI     16

typedef struct {
	const char *paths[MAX_CGROUPS];
	int ncg;
	cg_psi_spec psi[MAX_PSI];
	int npsi;
	int64_t interval_ns, duration_ns;
	bool local;
} watch_args;

typedef struct {
	const char *path; /* as printed */
	cg *c;
	cg_watch *w;
	bool gone;
} watched;

static rt_mutex out_mu = RT_MUTEX_INIT;
static cg_host host;
/* Resources whose pressure file samples leave alone: without
 * CAP_SYS_RESOURCE a read postpones the kernel's check of the triggers
 * our --psi rules armed on it (cgroup.h). */
static unsigned no_sample_pressure;

/* ─── output ─────────────────────────────────────────────────────────── */

static json_t *line_start(const char *path, const char *event, int64_t mono_ns) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[40];
	size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof when - n, ".%06ldZ", ts.tv_nsec / 1000);
	return json_pack("{s:s, s:I, s:s, s:s}", "time", when, "mono_ns", (json_int_t)mono_ns,
	                 "cgroup", path, "event", event);
}

static void line_print(json_t *j) {
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s)
		return;
	rt_mutex_lock(&out_mu);
	fputs(s, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	rt_mutex_unlock(&out_mu);
	free(s);
}

/* CG_NOLIMIT prints as "max", unknown (-1) as null. */
static json_t *limit_json(int64_t v) {
	return v == CG_NOLIMIT ? json_string("max") : v < 0 ? json_null() : json_integer(v);
}

static void print_event(watched *wd, const cg_event *ev) {
	json_t *j = line_start(wd->path, cg_event_name(ev->kind), ev->at);
	json_t *fields = ev_cgroup_fields(ev);
	json_object_update(j, fields);
	json_decref(fields);
	line_print(j);
}

static void print_message(const char *path, const char *event, const char *msg) {
	json_t *j = line_start(path, event, rt_now());
	json_object_set_new(j, "message", json_string(msg));
	line_print(j);
}

/* One sample: what a person (or a policy) wants at a glance. A part the
 * host lacks is left out; a read that fails is reported in "errors". */
static void print_sample(watched *wd) {
	json_t *j = line_start(wd->path, "sample", rt_now());
	json_t *errors = json_array();
	cg_err e = {0};
	cg_memory m;
	if (cg_read_memory(wd->c, &m, &e) == 0)
		json_object_set_new(j, "memory",
		                    json_pack("{s:I, s:o, s:o, s:o}", "current",
		                              (json_int_t)m.current, "peak", limit_json(m.peak),
		                              "high", limit_json(m.high), "max",
		                              limit_json(m.max)));
	else if (e.code != -ENOTSUP)
		json_array_append_new(errors, json_string(e.msg));
	cg_memory_events me;
	if (cg_read_memory_events(wd->c, false, &me, &e) == 0)
		json_object_set_new(j, "memory_events", ev_memory_events_json(&me));
	int64_t pc, pm;
	if (cg_read_pids(wd->c, &pc, &pm, &e) == 0)
		json_object_set_new(
		    j, "pids",
		    json_pack("{s:I, s:o}", "current", (json_int_t)pc, "max", limit_json(pm)));
	cg_cpu_stat cs;
	if (cg_read_cpu_stat(wd->c, &cs, &e) == 0)
		json_object_set_new(j, "cpu",
		                    json_pack("{s:I, s:I, s:I}", "usage_usec",
		                              (json_int_t)cs.usage_usec, "nr_throttled",
		                              (json_int_t)cs.nr_throttled, "throttled_usec",
		                              (json_int_t)cs.throttled_usec));
	else
		json_array_append_new(errors, json_string(e.msg));
	json_t *pr = json_object();
	for (int r = 0; r < CG_RES_N; r++) {
		cg_pressure p;
		if (no_sample_pressure & (1u << r)) {
			json_object_set_new(
			    pr, cg_resource_name(r),
			    json_string("not sampled: a --psi trigger is armed on it"));
			continue;
		}
		if (cg_read_pressure(wd->c, r, &p, &e) != 0) {
			json_array_append_new(errors, json_string(e.msg));
			continue;
		}
		json_t *o = json_object();
		const cg_pressure_line *lines[2] = {&p.some, &p.full};
		for (int i = 0; i < 2; i++)
			if (lines[i]->present)
				json_object_set_new(
				    o, i ? "full" : "some",
				    json_pack("{s:f, s:f, s:f, s:I}", "avg10", lines[i]->avg10,
				              "avg60", lines[i]->avg60, "avg300", lines[i]->avg300,
				              "total", (json_int_t)lines[i]->total));
		json_object_set_new(pr, cg_resource_name(r), o);
	}
	json_object_set_new(j, "pressure", pr);
	if (json_array_size(errors))
		json_object_set_new(j, "errors", errors);
	else
		json_decref(errors);
	line_print(j);
}

/* ─── goroutines ─────────────────────────────────────────────────────── */

typedef struct {
	watched *cgs;
	int n;
	int64_t interval_ns;
	rt_chan *done;
	rt_waitgroup wg;
} sampler_ctx;

static void sampler(void *arg) {
	sampler_ctx *s = arg;
	for (int64_t next = rt_now();; next += s->interval_ns) {
		for (int i = 0; i < s->n; i++)
			if (!s->cgs[i].gone)
				print_sample(&s->cgs[i]);
		rt_case cs[1] = {{.c = s->done, .dir = RT_RECV}};
		if (rt_select(cs, 1, next + s->interval_ns) != -ETIMEDOUT)
			break;
	}
	rt_wg_done(&s->wg);
}

typedef struct {
	int sfd;
	rt_pollfd *pd;
	rt_chan *sig; /* capacity 1: the signal number */
	rt_waitgroup *wg;
} signal_ctx;

/* Report SIGINT/SIGTERM (read from the signalfd); ends when evicted. */
static void signal_waiter(void *arg) {
	signal_ctx *s = arg;
	struct signalfd_siginfo si;
	if (rt_read(s->pd, &si, sizeof si, RT_FOREVER) == (ssize_t)sizeof si)
		rt_chan_send(s->sig, &si.ssi_signo);
	rt_wg_done(s->wg);
}

/* ─── main ───────────────────────────────────────────────────────────── */

static const char *rel_of(const char *path) {
	size_t n = strlen(host.unified);
	if (!strncmp(path, host.unified, n) && (path[n] == '/' || path[n] == 0))
		return path + n;
	return path[0] == '/' ? NULL : path;
}

static int watch_main(void *arg) {
	watch_args *a = arg;
	watched cgs[MAX_CGROUPS] = {0};
	cg_err e = {0};
	int status = 0, running = 0;
	rt_chan *out = rt_chan_new(sizeof(cg_event), 64);
	rt_chan *done = rt_chan_new(1, 0);
	cg_watch_opts o = {.psi = a->psi, .npsi = a->npsi, .local = a->local};
	for (int i = 0; i < a->ncg; i++) {
		cgs[i].path = a->paths[i];
		const char *rel = rel_of(a->paths[i]);
		if (!rel) {
			char msg[PATH_MAX + 64];
			snprintf(msg, sizeof msg, "not under the cgroup2 mount %s", host.unified);
			print_message(a->paths[i], "error", msg);
			status = 1;
			continue;
		}
		if (!(cgs[i].c = cg_open(&host, rel, false, &e))) {
			print_message(a->paths[i], "error", e.msg);
			status = 1;
			continue;
		}
		o.tag = &cgs[i];
		if (!(cgs[i].w = cg_watch_start(cgs[i].c, &o, out, &e))) {
			print_message(a->paths[i], "error", e.msg);
			status = 1;
			continue;
		}
		running++;
		char info[160];
		snprintf(info, sizeof info, "watching (%s host)", cg_layout_name(host.layout));
		print_message(a->paths[i], "start", info);
	}
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	rt_chan *sig = rt_chan_new(sizeof(uint32_t), 1);
	signal_ctx sc = {.sfd = cli_stop_signalfd(), .sig = sig, .wg = &wg};
	int perr;
	if (sc.sfd >= 0 && (sc.pd = rt_poll_open(sc.sfd, &perr))) {
		rt_wg_add(&wg, 1);
		rt_go(signal_waiter, &sc, "watch signals");
	}
	sampler_ctx sm = {.cgs = cgs, .n = a->ncg, .interval_ns = a->interval_ns, .done = done};
	if (running && a->interval_ns > 0) {
		rt_wg_add(&sm.wg, 1);
		rt_go(sampler, &sm, "watch sampler");
	}
	int64_t end = a->duration_ns > 0 ? rt_deadline_in(a->duration_ns) : RT_FOREVER;
	while (running) {
		cg_event ev;
		rt_case cs[2] = {{.c = out, .dir = RT_RECV, .elem = &ev},
		                 {.c = sig, .dir = RT_RECV}};
		int k = rt_select(cs, 2, end);
		if (k != 0)
			break; /* signal or --duration */
		watched *wd = ev.tag;
		print_event(wd, &ev);
		if (ev.kind == CG_EV_GONE)
			wd->gone = true;
	}
	/* stop: the sampler and the signal waiter, then the watchers */
	rt_chan_close(done);
	rt_wg_wait(&sm.wg);
	if (sc.pd) {
		rt_poll_evict(sc.pd);
		rt_wg_wait(&wg);
		rt_poll_close(sc.pd);
	}
	if (sc.sfd >= 0)
		close(sc.sfd);
	for (int i = 0; i < a->ncg; i++) {
		cg_watch_stop(cgs[i].w);
		cg_close(cgs[i].c);
	}
	rt_chan_free(out);
	rt_chan_free(done);
	rt_chan_free(sig);
	return status;
}

static void watch_usage(FILE *f) {
	fprintf(
	    f,
	    "usage: moonshim watch --cgroup PATH [--cgroup PATH...] [--psi RULE...]\n"
	    "                      [--interval DUR] [--duration DUR] [--local]\n"
	    "  --cgroup PATH   a cgroup2 directory (absolute, or relative to the mount)\n"
	    "  --psi RULE      RESOURCE:some|full:THRESHOLD:WINDOW[:LATENCY], e.g.\n"
	    "                  memory:some:150ms:1s (a kernel trigger, or polling when the\n"
	    "                  kernel refuses the window and none it accepts is within LATENCY)\n"
	    "  --interval DUR  a sample line every DUR (default 1s; 0: none)\n"
	    "  --duration DUR  stop after DUR (default: until SIGINT/SIGTERM)\n"
	    "  --local         memory.events.local instead of memory.events\n");
}

int cmd_watch(int argc, char **argv) {
	static watch_args a;
	memset(&a, 0, sizeof a);
	a.interval_ns = 1000000000;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = strcmp(opt, "--local") && strcmp(opt, "--help") && strcmp(opt, "-h");
		if (takes && !val) {
			fprintf(stderr, "moonshim watch: %s needs a value\n", opt);
			return 2;
		}
		if (!strcmp(opt, "--cgroup")) {
			if (a.ncg == MAX_CGROUPS) {
				fprintf(stderr, "moonshim watch: at most %d cgroups\n",
				        MAX_CGROUPS);
				return 2;
			}
			a.paths[a.ncg++] = val;
		} else if (!strcmp(opt, "--psi")) {
			cg_err e;
			if (a.npsi == MAX_PSI) {
				fprintf(stderr, "moonshim watch: at most %d --psi rules\n",
				        MAX_PSI);
				return 2;
			}
			if (cg_psi_parse(val, &a.psi[a.npsi++], &e)) {
				fprintf(stderr, "moonshim watch: %s\n", e.msg);
				return 2;
			}
		} else if (!strcmp(opt, "--interval") || !strcmp(opt, "--duration")) {
			int64_t us = !strcmp(val, "0") ? 0 : cg_parse_duration_us(val);
			if (us < 0) {
				fprintf(
				    stderr,
				    "moonshim watch: %s: bad duration \"%s\" (e.g. 500ms, 2s)\n",
				    opt, val);
				return 2;
			}
			*(opt[2] == 'i' ? &a.interval_ns : &a.duration_ns) = us * 1000;
		} else if (!strcmp(opt, "--local")) {
			a.local = true;
			continue;
		} else if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
			watch_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "moonshim watch: unknown option \"%s\"\n", opt);
			watch_usage(stderr);
			return 2;
		}
		i++;
	}
	if (cg_psi_reads_delay_triggers())
		for (int i = 0; i < a.npsi; i++)
			no_sample_pressure |= 1u << a.psi[i].res;
	if (!a.ncg) {
		fprintf(stderr, "moonshim watch: --cgroup PATH is required\n");
		watch_usage(stderr);
		return 2;
	}
	cg_err e;
	if (cg_host_detect(&host, "/proc/self/mounts", &e)) {
		fprintf(stderr, "moonshim watch: %s\n", e.msg);
		return 1;
	}
	cli_block_stop_signals();
	rt_config cfg = {.procs = 1, .quiet_leaks = false};
	return rt_main(&cfg, watch_main, &a);
}
