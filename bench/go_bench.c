/*
 * go_bench.c — what watching a Go workload costs (--go-watch, shim/go/gowatch.c):
 * its stderr passing through the shim's tap, and scraping its pprof
 * goroutine profile. `gowatchbench CASE [ARGS]` runs one case and prints
 * "INFO CASE:" lines that say what was measured and one "RESULT CASE
 * key=value ..." line; bench/run_go.sh turns them into ratios and verdicts.
 *
 *   stderr_passthrough [MIB] [ROUNDS]
 *                    a child process writes MIB (1024) MiB of 100-byte log
 *                    lines into a pipe; bytes/s from its start until every
 *                    byte reached the sink (a pipe another thread drains).
 *                    moonshim: tap_start with gw_markers and gw_line (a
 *                    real gw, no scraper), as --go-watch runs it; both
 *                    ends are pipes, as with containerd's FIFO, so the tap
 *                    tees. Peer: a thread copying with read()/write(),
 *                    nothing parsed. "Without the line hook": the same
 *                    scan for the markers with no callback.
 *                    The tap runs in its default mode (lossless: every
 *                    byte must arrive). ROUNDS (5) of each, alternating,
 *                    medians. Then once into /dev/null (a device the
 *                    reader writes directly; info), and once in drop mode
 *                    (stderr=non-blocking) with a sink nobody reads: the
 *                    child's write rate must stay that of the drained runs
 *                    (the tap drops, counted; a plain copy — and the
 *                    lossless tap, by design — would hold the child as
 *                    long as the sink takes nothing).
 *   scrape_cost GOSCRAPE [GOROUTINES] [SCRAPES]
 *                    GOSCRAPE (bench/go/scrape) parks GOROUTINES (10,000)
 *                    goroutines and serves net/http/pprof; SCRAPES (50)
 *                    scrapes of /debug/pprof/goroutine?debug=1 and as many
 *                    of debug=2, each http_do + gp_parse_profile +
 *                    gd_feed_profile as gowatch's scraper does: CPU of this
 *                    process per scrape, and the Go program's own (from
 *                    /proc/PID/stat) — what a scrape costs the workload.
 *                    Peer: `curl -s -o /dev/null URL` per scrape, its CPU
 *                    as a reaped child (fork/exec and the transfer).
 *   writer BYTES     (internal) the stderr_passthrough child: BYTES of log
 *                    lines to stdout
 *
 * Children get SIGKILL when this process dies (PR_SET_PDEATHSIG); the
 * script's trap kills this process.
 */
#define _GNU_SOURCE
#include "fixture.h"
#include "rt.h"

#include "../shim/go/godetect.h"
#include "../shim/go/goparse.h"
#include "../shim/go/gowatch.h"
#include "../shim/io/http.h"
#include "../shim/io/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_LEN           100
#define WRITE_CHUNK        (655 * LINE_LEN) /* whole lines, just under a pipe's 64 KiB */
#define COPY_CHUNK         (64 * 1024)      /* the peer's read()/write() buffer: a pipe's size */
#define TAP_BUFFER         (1 << 20)        /* as --go-watch's default stderr-buffer */
#define DEFAULT_MIB        1024
#define DEFAULT_ROUNDS     5
#define MAX_ROUNDS         32
#define DEFAULT_GOROUTINES 10000
#define DEFAULT_SCRAPES    50
#define MAX_SCRAPES        1000
#define READY_TIMEOUT_MS   30000
#define SCRAPE_TIMEOUT     (10 * SEC)
#define SCRAPE_MAX_BODY    (16u << 20) /* gowatch's: a debug=2 dump of 10k goroutines fits */
#define PROFILE_MAX_STACKS 20000
#define EVENTS_MAX         16

static char self_exe[4096];

/* ─── children ───────────────────────────────────────────────────────── */

/* fork/exec argv with stdout on out_fd (-1: /dev/null), killed when we
 * die; -1 on failure. */
static pid_t spawn(char *const argv[], int out_fd) {
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = out_fd >= 0 ? out_fd : open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0)
		fprintf(stderr, "gowatchbench: fork: %s\n", strerror(errno));
	return pid;
}

static int wait_ok(pid_t pid) {
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* `writer BYTES`: 100-byte lines, the way a service logs, in whole-line
 * writes until BYTES are out. */
static int writer_main(int argc, char **argv) {
	long long want = argc > 2 ? atoll(argv[2]) : 0;
	static char buf[WRITE_CHUNK];
	for (int i = 0; i < WRITE_CHUNK / LINE_LEN; i++) {
		char *l = buf + i * LINE_LEN;
		int n = snprintf(l, LINE_LEN,
		                 "2024-05-01T12:00:%02d.%03dZ INFO http: GET /api/v1/items/%06d "
		                 "200 1532B req=%08x",
		                 i % 60, i % 1000, i * 7919 % 1000000, (unsigned)i * 2654435761u);
		memset(l + n, ' ', (size_t)(LINE_LEN - 1 - n));
		l[LINE_LEN - 1] = '\n';
	}
	for (long long sent = 0; sent < want;) {
		size_t n = want - sent < WRITE_CHUNK ? (size_t)(want - sent) : WRITE_CHUNK;
		ssize_t w = write(STDOUT_FILENO, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 1;
		sent += w;
	}
	return 0;
}

/* ─── stderr_passthrough ─────────────────────────────────────────────── */

/* A plain thread: reads fd to EOF, counting, and stamps the EOF. */
typedef struct drain {
	int fd;
	int64_t bytes, eof_at;
	pthread_t th;
} drain;

static void *drain_thread(void *arg) {
	drain *d = arg;
	char buf[COPY_CHUNK];
	for (;;) {
		ssize_t n = read(d->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		d->bytes += n;
	}
	d->eof_at = bf_mono_ns();
	return NULL;
}

/* A plain thread: waits for the child and stamps its exit. */
typedef struct reaper {
	pid_t pid;
	int ok;
	int64_t exit_at;
	pthread_t th;
} reaper;

static void *reap_thread(void *arg) {
	reaper *r = arg;
	r->ok = wait_ok(r->pid);
	r->exit_at = bf_mono_ns();
	return NULL;
}

typedef struct pass {
	/* in */
	int64_t bytes;
	bool tap, read_sink, no_lines; /* no_lines: the tap without a line callback */
	bool devnull;                  /* the sink is /dev/null, not a pipe */
	tap_mode mode;
	/* out */
	int64_t start, end, sunk;
	tap_stats st;
	reaper child;
	int rc;
} pass;

/* The peer: what moves the bytes when nothing looks at them. */
static void copy_loop(int in, int out) {
	static char buf[COPY_CHUNK];
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return;
			off += w;
		}
	}
}

/* One run, on the runtime (p->tap: goroutine 1) or in a plain thread. */
static int pass_run(void *arg) {
	pass *p = arg;
	int in[2], sink[2];
	drain d = {0};
	if (pipe2(in, O_CLOEXEC) || pipe2(sink, O_CLOEXEC)) {
		perror("gowatchbench: pipe");
		return p->rc = 1;
	}
	d.fd = sink[0];
	if (p->read_sink)
		pthread_create(&d.th, NULL, drain_thread, &d);
	char bytes[32];
	snprintf(bytes, sizeof bytes, "%lld", (long long)p->bytes);
	char *argv[] = {self_exe, "writer", bytes, NULL};
	p->start = bf_mono_ns();
	p->child.pid = spawn(argv, in[1]);
	close(in[1]);
	if (p->child.pid > 0)
		pthread_create(&p->child.th, NULL, reap_thread, &p->child);
	if (p->tap) {
		gw_opts o;
		gw_opts_init(&o); /* no pprof: the line hook alone */
		gw *g = gw_start(&o, &(gw_target){.netns_fd = -1}, NULL);
		ms_err err = {0};
		int out = p->devnull ? open("/dev/null", O_WRONLY | O_CLOEXEC) : sink[1];
		tap *t = g && out >= 0 ? tap_start(in[0], out, TAP_BUFFER, p->mode, gw_markers,
		                                   p->no_lines ? NULL : gw_line, g, &err)
		                       : NULL;
		if (!t) {
			fprintf(stderr, "gowatchbench: tap: %s\n", g ? err.msg : "gw_start failed");
			close(in[0]);
			p->rc = 1;
		} else {
			tap_wait(t, &p->st); /* closes in[0] */
		}
		if (p->devnull && out >= 0)
			close(out);
		gw_stop(g);
	} else {
		copy_loop(in[0], sink[1]);
		close(in[0]);
	}
	close(sink[1]);
	if (p->read_sink)
		pthread_join(d.th, NULL);
	p->end = p->read_sink ? d.eof_at : bf_mono_ns();
	p->sunk = d.bytes;
	close(sink[0]);
	if (p->child.pid > 0)
		pthread_join(p->child.th, NULL);
	if (p->child.pid <= 0 || !p->child.ok) {
		fprintf(stderr, "gowatchbench: the writer failed\n");
		p->rc = 1;
	}
	return p->rc;
}

static int pass_once(pass *p) {
	if (p->tap)
		return rt_main(&(rt_config){0}, pass_run, p) || p->rc;
	return pass_run(p);
}

static double mib_s(int64_t bytes, int64_t ns) {
	return ns > 0 ? (double)bytes / (1 << 20) / ((double)ns / SEC) : 0;
}

static int stderr_passthrough(int argc, char **argv) {
	int64_t mib = argc > 2 ? atoll(argv[2]) : DEFAULT_MIB;
	int rounds = argc > 3 ? atoi(argv[3]) : DEFAULT_ROUNDS;
	if (mib < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "gowatchbench: stderr_passthrough [MIB>=1] [ROUNDS 1..%d]\n",
		        MAX_ROUNDS);
		return 2;
	}
	int64_t bytes = mib << 20;
	int64_t ours[MAX_ROUNDS], peer[MAX_ROUNDS], ours_child[MAX_ROUNDS], bare[MAX_ROUNDS];
	uint64_t dropped = 0, bare_dropped = 0, lines = 0;
	for (int i = 0; i < rounds; i++) {
		pass m = {.bytes = bytes, .tap = true, .read_sink = true};
		pass q = {.bytes = bytes, .tap = false, .read_sink = true};
		pass b = {.bytes = bytes, .tap = true, .read_sink = true, .no_lines = true};
		/* alternate which goes first, so neither always runs on a warmer machine */
		if (i % 2 ? pass_once(&q) || pass_once(&m) : pass_once(&m) || pass_once(&q))
			return 1;
		if (pass_once(&b))
			return 1;
		if (m.sunk != bytes || m.st.bytes_dropped || q.sunk != bytes) { /* lossless */
			fprintf(
			    stderr,
			    "gowatchbench: bytes lost: tap %lld+%llu dropped, copy %lld of %lld\n",
			    (long long)m.sunk, (unsigned long long)m.st.bytes_dropped,
			    (long long)q.sunk, (long long)bytes);
			return 1;
		}
		dropped += m.st.bytes_dropped;
		lines += m.st.lines;
		bare_dropped += b.st.bytes_dropped;
		bare[i] = (int64_t)mib_s(b.sunk, b.end - b.start);
		ours[i] = (int64_t)mib_s(m.sunk, m.end - m.start);
		peer[i] = (int64_t)mib_s(q.sunk, q.end - q.start);
		ours_child[i] = (int64_t)mib_s(bytes, m.child.exit_at - m.start);
		printf(
		    "INFO stderr_passthrough: round %d: tap %lld MiB/s (child done at %lld MiB/s, "
		    "%llu dropped), copy %lld MiB/s, tap without the line hook %lld MiB/s\n",
		    i + 1, (long long)ours[i], (long long)ours_child[i],
		    (unsigned long long)m.st.bytes_dropped, (long long)peer[i], (long long)bare[i]);
	}
	double mo = bf_median(ours, rounds), pe = bf_median(peer, rounds);
	double mc = bf_median(ours_child, rounds), mb = bf_median(bare, rounds);

	/* into /dev/null: the device path, no pipe to the sink */
	pass n = {.bytes = bytes, .tap = true, .devnull = true};
	if (pass_once(&n))
		return 1;
	double null_mibs = mib_s(bytes, n.end - n.start);
	if (n.st.bytes_out != (uint64_t)bytes || n.st.bytes_dropped) {
		fprintf(stderr, "gowatchbench: /dev/null got %llu of %lld bytes, %llu dropped\n",
		        (unsigned long long)n.st.bytes_out, (long long)bytes,
		        (unsigned long long)n.st.bytes_dropped);
		return 1;
	}
	printf("INFO stderr_passthrough: into /dev/null the tap moved %.0f MiB/s, nothing "
	       "dropped\n",
	       null_mibs);

	/* drop mode, the sink nobody reads: the child must not notice */
	pass s = {.bytes = bytes, .tap = true, .read_sink = false, .mode = TAP_DROP};
	if (pass_once(&s))
		return 1;
	double stalled = mib_s(bytes, s.child.exit_at - s.start);
	printf("INFO stderr_passthrough: %lld MiB per run in %d-byte lines, %d rounds each, "
	       "medians (moonshim: bytes that reached the sink per second); with the sink "
	       "drained the tap still dropped %llu of %lld bytes (%llu lines shown to gw_line), "
	       "without the line hook %llu (%.0f MiB/s)\n",
	       (long long)mib, LINE_LEN, rounds, (unsigned long long)dropped,
	       (long long)(bytes * rounds), (unsigned long long)lines,
	       (unsigned long long)bare_dropped, mb);
	printf("INFO stderr_passthrough: drop mode, sink never read: the child wrote at %.0f MiB/s "
	       "(%.2f of the drained runs), %llu bytes reached the sink, %llu dropped\n",
	       stalled, mc > 0 ? stalled / mc : 0, (unsigned long long)s.st.bytes_out,
	       (unsigned long long)s.st.bytes_dropped);
	printf("RESULT stderr_passthrough moonshim_mibs=%.0f peer_mibs=%.0f child_mibs=%.0f "
	       "bare_mibs=%.0f dropped=%llu stalled_child_mibs=%.0f stalled_ratio=%.3f "
	       "stalled_dropped=%llu devnull_mibs=%.0f mib=%lld rounds=%d\n",
	       mo, pe, mc, mb, (unsigned long long)dropped, stalled, mc > 0 ? stalled / mc : 0,
	       (unsigned long long)s.st.bytes_dropped, null_mibs, (long long)mib, rounds);
	return 0;
}

/* ─── scrape_cost ────────────────────────────────────────────────────── */

static int64_t self_cpu_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static int64_t children_cpu_ns(void) {
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
	       (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* utime + stime of pid from /proc/PID/stat, ns (clock-tick resolution). */
static int64_t proc_cpu_ns(pid_t pid) {
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* the name may hold spaces */
	unsigned long long ut, st;
	/* after the name: state(3) ... utime(14) stime(15) */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * (SEC / sysconf(_SC_CLK_TCK)));
}

typedef struct side {
	int64_t cpu, workload, wall; /* per scrape, ns (wall: median) */
	int64_t body;                /* bytes of the last profile */
	int64_t total;               /* goroutines it reported */
	int stacks;
} side;

typedef struct scrape_run {
	pid_t go;
	int port, n;
	side ours[2]; /* debug=1, debug=2 */
	int rc;
} scrape_run;

/* What gowatch's scraper does per round: GET, parse, feed the detector. */
static int scrape(const char *url, gd_detector *d, side *s) {
	http_request q = {
	    .url = url, .timeout_ns = SCRAPE_TIMEOUT, .max_body = SCRAPE_MAX_BODY, .netns_fd = -1};
	http_response r = {0};
	ms_err err = {0};
	if (http_do(&q, &r, &err) || r.status != 200 || r.truncated) {
		fprintf(stderr, "gowatchbench: GET %s: %s\n", url,
		        err.msg[0] ? err.msg : "bad response");
		http_response_free(&r);
		return 1;
	}
	gp_profile p = {0};
	char msg[160] = "";
	int rc = gp_parse_profile(r.body, r.body_len, PROFILE_MAX_STACKS, &p, msg, sizeof msg);
	s->body = (int64_t)r.body_len;
	http_response_free(&r);
	if (rc) {
		fprintf(stderr, "gowatchbench: %s: %s\n", url, msg);
		return 1;
	}
	gd_event ev[EVENTS_MAX];
	gd_feed_profile(d, rt_now(), &p, false, ev, EVENTS_MAX);
	s->total = p.total;
	s->stacks = p.nstacks;
	gp_profile_free(&p);
	return 0;
}

static int scrape_main(void *arg) {
	scrape_run *r = arg;
	gd_detector *d = gd_new(NULL);
	int64_t wall[MAX_SCRAPES];
	for (int k = 0; k < 2 && d; k++) {
		char url[128];
		snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/goroutine?debug=%d",
		         r->port, k + 1);
		side *s = &r->ours[k];
		if (scrape(url, d, s)) /* warm: connections, the profile's buffers */
			goto fail;
		int64_t c0 = self_cpu_ns(), g0 = proc_cpu_ns(r->go);
		for (int i = 0; i < r->n; i++) {
			int64_t t = bf_mono_ns();
			if (scrape(url, d, s))
				goto fail;
			wall[i] = bf_mono_ns() - t;
		}
		s->cpu = (self_cpu_ns() - c0) / r->n;
		s->workload = (proc_cpu_ns(r->go) - g0) / r->n;
		s->wall = (int64_t)bf_median(wall, r->n);
	}
	gd_free(d);
	return r->rc = !d;
fail:
	gd_free(d);
	return r->rc = 1;
}

/* The peer: curl per scrape, as a reaped child. */
static int curl_scrapes(const scrape_run *r, int debug, side *s) {
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/goroutine?debug=%d", r->port,
	         debug);
	char *argv[] = {"/usr/bin/curl", "-sf", "-o", "/dev/null", url, NULL};
	int64_t wall[MAX_SCRAPES];
	int64_t c0 = children_cpu_ns(), g0 = proc_cpu_ns(r->go);
	for (int i = 0; i < r->n; i++) {
		int64_t t = bf_mono_ns();
		pid_t pid = spawn(argv, -1);
		if (pid < 0 || !wait_ok(pid)) {
			fprintf(stderr, "gowatchbench: curl %s failed\n", url);
			return 1;
		}
		wall[i] = bf_mono_ns() - t;
	}
	s->cpu = (children_cpu_ns() - c0) / r->n;
	s->workload = (proc_cpu_ns(r->go) - g0) / r->n;
	s->wall = (int64_t)bf_median(wall, r->n);
	return 0;
}

/* "ready PORT" from the Go program's stdout, or -1. */
static int await_ready(int fd) {
	char buf[64];
	size_t len = 0;
	while (len < sizeof buf - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, READY_TIMEOUT_MS) <= 0)
			return -1;
		ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = 0;
		int port;
		if (strchr(buf, '\n'))
			return sscanf(buf, "ready %d", &port) == 1 ? port : -1;
	}
	return -1;
}

static double ms(int64_t ns) {
	return (double)ns / 1e6;
}

static int scrape_cost(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "gowatchbench: scrape_cost GOSCRAPE [GOROUTINES] [SCRAPES]\n");
		return 2;
	}
	int goroutines = argc > 3 ? atoi(argv[3]) : DEFAULT_GOROUTINES;
	scrape_run r = {.n = argc > 4 ? atoi(argv[4]) : DEFAULT_SCRAPES};
	if (goroutines < 1 || r.n < 1 || r.n > MAX_SCRAPES) {
		fprintf(stderr, "gowatchbench: scrape_cost: GOROUTINES >= 1, SCRAPES 1..%d\n",
		        MAX_SCRAPES);
		return 2;
	}
	char count[16];
	snprintf(count, sizeof count, "%d", goroutines);
	char *go_argv[] = {argv[2], count, "0", NULL};
	int out[2];
	if (pipe2(out, O_CLOEXEC)) {
		perror("gowatchbench: pipe");
		return 1;
	}
	r.go = spawn(go_argv, out[1]);
	close(out[1]);
	int rc = 1;
	if (r.go < 0 || (r.port = await_ready(out[0])) <= 0) {
		fprintf(stderr, "gowatchbench: %s did not get ready\n", argv[2]);
		goto done;
	}
	/* what the idle workload burns by itself, over as long as the scrapes */
	int64_t g0 = proc_cpu_ns(r.go);
	usleep(1000000);
	int64_t idle = proc_cpu_ns(r.go) - g0;

	side peer[2];
	if (rt_main(&(rt_config){0}, scrape_main, &r) || r.rc || curl_scrapes(&r, 1, &peer[0]) ||
	    curl_scrapes(&r, 2, &peer[1]))
		goto done;
	for (int k = 0; k < 2; k++) {
		const side *s = &r.ours[k];
		printf(
		    "INFO scrape_cost: debug=%d: %lld-byte profile, %lld goroutines in %d stacks; "
		    "moonshim %.2f ms CPU (wall %.2f ms), the workload %.2f ms; curl %.2f ms CPU "
		    "(wall %.2f ms), the workload %.2f ms\n",
		    k + 1, (long long)s->body, (long long)s->total, s->stacks, ms(s->cpu),
		    ms(s->wall), ms(s->workload), ms(peer[k].cpu), ms(peer[k].wall),
		    ms(peer[k].workload));
	}
	printf("INFO scrape_cost: %d scrapes each; the idle workload used %.1f ms CPU per second "
	       "(not subtracted); its CPU is read from /proc in %ld ms ticks\n",
	       r.n, ms(idle), 1000 / sysconf(_SC_CLK_TCK));
	printf("RESULT scrape_cost moonshim_ms=%.3f workload_ms=%.3f peer_ms=%.3f "
	       "peer_workload_ms=%.3f moonshim2_ms=%.3f workload2_ms=%.3f peer2_ms=%.3f "
	       "peer2_workload_ms=%.3f goroutines=%lld scrapes=%d\n",
	       ms(r.ours[0].cpu), ms(r.ours[0].workload), ms(peer[0].cpu), ms(peer[0].workload),
	       ms(r.ours[1].cpu), ms(r.ours[1].workload), ms(peer[1].cpu), ms(peer[1].workload),
	       (long long)r.ours[0].total, r.n);
	rc = 0;
done:
	if (r.go > 0) {
		kill(r.go, SIGKILL);
		waitpid(r.go, NULL, 0);
	}
	close(out[0]);
	return rc;
}

/* ─── main ───────────────────────────────────────────────────────────── */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} cases[] = {
    {"writer", writer_main},
    {"stderr_passthrough", stderr_passthrough},
    {"scrape_cost", scrape_cost},
};

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: gowatchbench stderr_passthrough [MIB] [ROUNDS] | "
		                "scrape_cost GOSCRAPE [GOROUTINES] [SCRAPES]\n");
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0) {
		perror("gowatchbench: /proc/self/exe");
		return 1;
	}
	self_exe[n] = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN); /* a sink that is gone fails the write */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!strcmp(argv[1], cases[i].name)) {
			int rc = cases[i].fn(argc, argv);
			if (!rc && rt_exit_leaks()) {
				fprintf(stderr, "gowatchbench: %d goroutines leaked\n",
				        rt_exit_leaks());
				rc = 1;
			}
			return rc;
		}
	fprintf(stderr, "gowatchbench: no case %s\n", argv[1]);
	return 2;
}
