/*
 * lua_bench.c — Lua health checks (shim/lua/checks.c on the runtime) against
 * exec probes, the way Docker and Kubernetes run a command check: a process
 * per probe. `luabench CASE [ARGS]` runs one case and prints "INFO CASE:"
 * lines that say what was measured and one "RESULT CASE key=value ..."
 * line; bench/run_lua.sh turns them into ratios and verdicts.
 *
 *   serve PORT                  the HTTP server the checks hit, in the
 *                               foreground (the cases fork their own)
 *   checks_cpu [SECS] [N] [SIDE]
 *                               N (1,000) HTTP checks at a 1 s period for
 *                               SECS (60) seconds: CPU of the process that
 *                               runs them, as % of one core. moonshim: one
 *                               process, worlds with check{} declarations
 *                               doing http.get. Peer: a scheduler that runs
 *                               `busybox wget` per probe (fork/exec),
 *                               counting its own CPU and its children's.
 *                               SIDE: both (default), moonshim or peer
 *                               (one side alone, e.g. under perf)
 *   check_memory [N]            bytes per idle check: the process's RSS
 *                               with N checks declared and started (long
 *                               interval) minus with none, over N
 *   event_to_handler [N] [P]    a real cgroup event (a process exits,
 *                               populated 1→0) → the first line of a Lua
 *                               policy handler, N (300) events; the 1 s
 *                               poller's P (24) samples beside it (0: no
 *                               poller). Needs root and a cgroup2 mount;
 *                               its cgroups are removed on every exit
 *                               path (bench/fixture.h)
 *
 * The server is a forked child, so its CPU is in neither figure: the
 * moonshim side reads RUSAGE_SELF, the peer RUSAGE_SELF + RUSAGE_CHILDREN
 * of probes it reaped, and the server is reaped only at the end.
 */
#define _GNU_SOURCE
#include "fixture.h"
#include "rt.h"

#include "../shim/lua/checks.h"
#include "../shim/io/events.h"
#include "../shim/lua/luaapi.h"
#include "../shim/lua/luaworld.h"
#include "../shim/lua/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_SECS    60
#define DEFAULT_CHECKS  1000
#define PERIOD          SEC         /* every check and probe, as the case */
#define WARMUP          (2 * SEC)   /* first probes are due after one period; then steady */
#define IDLE_INTERVAL_S 3600        /* check_memory: no probe runs while we measure */
#define SETTLE          (300 * MS)  /* for started goroutines to park before RSS is read */
#define ACTIVE_WAIT     (7 * SEC)   /* a 1 s check has filled its 5-entry result log */
#define WORLD_MEM       (64u << 20) /* per world: 1,000 checks' closures fit in one */
#define SERVER_EVENTS   256
#define MAX_FD          65536 /* the server's per-fd state; RLIMIT_NOFILE is below */
/* The peer runs at full rate unless that would take more than this share
 * of the machine's cores (the server needs CPU too): then at 1/PEER_SCALE
 * of the rate, and its CPU is multiplied by PEER_SCALE. */
#define PEER_TRIAL     (3 * SEC)
#define PEER_MAX_SHARE 0.6
#define PEER_SCALE     10
#define FLOOR_PROBES   5000
#define PIDMAP_SIZE    8192 /* open addressing; more than the probes ever in flight */

#define HEAD_MAX 1024 /* a request head the server takes; longer: 431 and close */

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char RESPONSE_CLOSE[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
static const char TOO_LARGE[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                "Content-Length: 0\r\nConnection: close\r\n\r\n";

/* ─── clocks ─────────────────────────────────────────────────────────── */

/* User + system CPU of RUSAGE_SELF or RUSAGE_CHILDREN, ns. */
static int64_t cpu_ns(int who) {
	struct rusage ru;
	getrusage(who, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
	       (int64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* Resident bytes of this process (/proc/self/statm). */
static long rss_bytes(void) {
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * sysconf(_SC_PAGESIZE);
}

/* ─── the HTTP server ────────────────────────────────────────────────── */

/* A listening socket on 127.0.0.1:port (0: any free port, written back). */
static int listen_on(int *port) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)*port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		fprintf(stderr, "luabench: listen on 127.0.0.1:%d: %s\n", *port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Does the request head ask to close the connection after the response?
 * HTTP/1.1 persists unless a Connection field says close; 1.0 does not
 * unless one says keep-alive (RFC 9112 §9.3). */
static bool wants_close(const char *head) {
	const char *eol = strstr(head, "\r\n"); /* the request line's end */
	bool v10 = eol && eol - head >= 8 && !memcmp(eol - 8, "HTTP/1.0", 8);
	for (const char *h = strcasestr(head, "\nConnection:"); h;
	     h = strcasestr(h + 1, "\nConnection:")) {
		const char *v = h + strlen("\nConnection:");
		int n = (int)strcspn(v, "\r\n");
		char val[128];
		snprintf(val, sizeof val, "%.*s", n, v);
		char *save;
		for (char *t = strtok_r(val, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
			if (!strcasecmp(t, "close"))
				return true;
			if (!strcasecmp(t, "keep-alive"))
				v10 = false;
		}
	}
	return v10;
}

/* Answer every request on lfd with RESPONSE, forever, as an HTTP/1.1
 * server does: a connection stays open for more requests (keep-alive) until
 * the client closes it or a request asks for `Connection: close`. A
 * request ends at its blank line (no request body is expected); head[fd]
 * holds what has come of the next one. */
static void serve(int lfd) {
	static char *head[MAX_FD];
	static unsigned short len[MAX_FD];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[SERVER_EVENTS];
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, SERVER_EVENTS, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL,
				                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (c >= MAX_FD || !(head[c] = malloc(HEAD_MAX + 1))) {
						close(c);
						continue;
					}
					len[c] = 0;
					ev = (struct epoll_event){.events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			char *h = head[fd];
			ssize_t r = read(fd, h + len[fd], HEAD_MAX - len[fd]);
			if (r < 0 && errno == EAGAIN)
				continue;
			bool done = r <= 0;
			len[fd] += r > 0 ? (unsigned short)r : 0;
			h[len[fd]] = 0;
			char *end;
			while (!done && (end = strstr(h, "\r\n\r\n"))) {
				end[2] = 0; /* the head, its last CRLF kept for wants_close */
				done = wants_close(h);
				const char *resp = done ? RESPONSE_CLOSE : RESPONSE;
				size_t rl = done ? sizeof RESPONSE_CLOSE - 1 : sizeof RESPONSE - 1;
				/* a socket's buffer holds it; a gone client is fine */
				ssize_t w = send(fd, resp, rl, MSG_NOSIGNAL);
				(void)w;
				size_t used = (size_t)(end + 4 - h);
				len[fd] -= (unsigned short)used;
				memmove(h, end + 4, len[fd] + 1u);
			}
			if (!done && len[fd] == HEAD_MAX) {
				ssize_t w = send(fd, TOO_LARGE, sizeof TOO_LARGE - 1, MSG_NOSIGNAL);
				(void)w;
				done = true;
			}
			if (done) {
				free(head[fd]);
				head[fd] = NULL;
				close(fd); /* also leaves the epoll set */
			}
		}
	}
}

/* Fork the server on a free port; its pid, or -1. The child dies with us. */
static pid_t start_server(int *port) {
	*port = 0;
	int lfd = listen_on(port);
	if (lfd < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		serve(lfd);
		_exit(0);
	}
	close(lfd);
	if (pid < 0)
		perror("luabench: fork");
	return pid;
}

static void stop_server(pid_t pid) {
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* ─── moonshim: worlds of check{} declarations ───────────────────────── */

/* n checks spread over worlds of at most per_world each (checks.c caps a
 * world's checks; fleet_start reports the cap it hit). */
typedef struct fleet {
	int n, per_world, nworlds;
	lw_world **w;
	hk_checks **hk;
	int limit; /* the cap named by a refused declaration, 0 if none */
} fleet;

static atomic_int went_unhealthy; /* check → unhealthy transitions seen */

static void on_event(void *arg, const char *type, json_t *f) {
	const char *subject = json_string_value(json_object_get(f, "subject"));
	const char *to = json_string_value(json_object_get(f, "to"));
	if (subject && to && !strcmp(subject, "check") && !strcmp(to, "unhealthy"))
		atomic_fetch_add(&went_unhealthy, 1);
	json_decref(f);
}

/* The source of checks [first, first + k): each its own function, as a
 * user writes them. */
static char *checks_script(int first, int k, int port, int interval_s, size_t *len) {
	char *src = NULL;
	FILE *f = open_memstream(&src, len);
	if (!f)
		return NULL;
	for (int i = first; i < first + k; i++)
		fprintf(f,
		        "check {\n"
		        "  name = \"check-%d\", interval = %d, timeout = 1, retries = 3,\n"
		        "  run = function()\n"
		        "    local r, err = http.get(\"http://127.0.0.1:%d/healthz\",\n"
		        "                            {timeout = 1, keepalive = true})\n"
		        "    return r ~= nil and r.status == 200, r and r.status or err\n"
		        "  end,\n"
		        "}\n",
		        i, interval_s, port);
	fclose(f);
	return src;
}

static void fleet_stop(fleet *f) {
	for (int i = 0; i < f->nworlds; i++) {
		hk_stop(f->hk[i]);
		lw_free(f->w[i]);
	}
	free(f->w);
	free(f->hk);
	f->w = NULL;
	f->hk = NULL;
	f->nworlds = 0;
}

/* Declare and start the checks. 0; or -E2BIG when a world refused more
 * than f->limit checks (stopped and freed: retry with that per_world); or
 * another error, printed. */
static int fleet_start(fleet *f, int n, int per_world, int port, int interval_s) {
	*f = (fleet){.n = n, .per_world = per_world};
	int want = n ? (n + per_world - 1) / per_world : 1; /* 0 checks: one empty world */
	f->w = calloc((size_t)want, sizeof *f->w);
	f->hk = calloc((size_t)want, sizeof *f->hk);
	if (!f->w || !f->hk) {
		fprintf(stderr, "luabench: out of memory\n");
		fleet_stop(f);
		return -ENOMEM;
	}
	for (int i = 0; i < want; i++) {
		ms_err err = {0};
		char name[32];
		snprintf(name, sizeof name, "bench-%d", i);
		lw_config cfg = {.name = name, .mem_limit = WORLD_MEM};
		if (!(f->w[i] = lw_new(&cfg, &err))) {
			fprintf(stderr, "luabench: lw_new: %s\n", err.msg);
			fleet_stop(f);
			return err.code ? err.code : -ENOMEM;
		}
		la_open(f->w[i]);
		f->hk[i] = hk_new(f->w[i], on_event, NULL);
		f->nworlds++;
		int first = i * per_world, k = n - first < per_world ? n - first : per_world;
		size_t len = 0;
		char *src = checks_script(first, k, port, interval_s, &len);
		int rc = src ? lw_load(f->w[i], "checks.lua", src, len, &err) : -ENOMEM;
		free(src);
		const char *cap = rc ? strstr(err.msg, "at most ") : NULL;
		if (cap && sscanf(cap, "at most %d checks", &f->limit) == 1) {
			fleet_stop(f);
			return -E2BIG;
		}
		if (!rc)
			rc = hk_start(f->hk[i], &err);
		if (rc) {
			fprintf(stderr, "luabench: world %d: %s\n", i, err.msg);
			fleet_stop(f);
			return rc;
		}
	}
	return 0;
}

/* As fleet_start, all checks in one world if checks.c allows it, else in
 * as few worlds as its cap allows (limit_seen: that cap, 0 if none). */
static int fleet_start_packed(fleet *f, int n, int port, int interval_s, int *limit_seen) {
	*limit_seen = 0;
	int rc = fleet_start(f, n, n ? n : 1, port, interval_s);
	if (rc == -E2BIG && f->limit > 0) {
		*limit_seen = f->limit;
		rc = fleet_start(f, n, *limit_seen, port, interval_s);
	}
	return rc;
}

static uint64_t fleet_tasks(fleet *f, size_t *mem) {
	uint64_t tasks = 0;
	*mem = 0;
	for (int i = 0; i < f->nworlds; i++) {
		lw_stats s;
		lw_stats_get(f->w[i], &s);
		tasks += s.tasks;
		*mem += s.mem_used;
	}
	return tasks;
}

/* How many checks report "healthy" (hk_json's Checks[].Status). */
static int fleet_healthy(fleet *f) {
	int ok = 0;
	for (int i = 0; i < f->nworlds; i++) {
		json_t *j = hk_json(f->hk[i]), *c;
		size_t k;
		json_array_foreach(json_object_get(j, "Checks"), k, c) {
			const char *s = json_string_value(json_object_get(c, "Status"));
			ok += s && !strcmp(s, "healthy");
		}
		json_decref(j);
	}
	return ok;
}

/* ─── checks_cpu ─────────────────────────────────────────────────────── */

typedef struct cpu_run {
	int n, port;
	int64_t secs;
	/* out */
	double pct, rate, us_per_probe;
	int healthy, unhealthy, worlds, limit;
	int rc;
} cpu_run;

static int moonshim_cpu_main(void *arg) {
	cpu_run *r = arg;
	fleet f;
	size_t mem;
	if ((r->rc = fleet_start_packed(&f, r->n, r->port, 1, &r->limit)))
		return 1;
	r->worlds = f.nworlds;
	rt_sleep(WARMUP);
	int64_t t0 = bf_mono_ns(), c0 = cpu_ns(RUSAGE_SELF);
	uint64_t n0 = fleet_tasks(&f, &mem);
	rt_sleep(r->secs * SEC);
	int64_t t1 = bf_mono_ns(), c1 = cpu_ns(RUSAGE_SELF);
	uint64_t n1 = fleet_tasks(&f, &mem);
	r->healthy = fleet_healthy(&f);
	r->unhealthy = atomic_load(&went_unhealthy);
	fleet_stop(&f);
	r->pct = (double)(c1 - c0) / (double)(t1 - t0) * 100;
	r->rate = (double)(n1 - n0) / ((double)(t1 - t0) / SEC);
	r->us_per_probe = n1 > n0 ? (double)(c1 - c0) / 1e3 / (double)(n1 - n0) : 0;
	return 0;
}

/* ─── the floor: the same exchange from plain blocking sockets ──────── */

/* CPU per exchange of a loop doing what a check does at the socket level
 * (socket, connect, write the request, read to EOF, close) FLOOR_PROBES
 * times: what any probe that opens a connection costs on this kernel
 * (on loopback the sender also runs the receiver's TCP work). */
/* A blocking TCP connection to the bench server on loopback: its fd, or -1
 * with errno. */
static int server_connect(int port) {
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static double floor_us(int port) {
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                          "User-Agent: moonshim\r\nConnection: close\r\n\r\n";
	int64_t c0 = cpu_ns(RUSAGE_SELF);
	for (int i = 0; i < FLOOR_PROBES; i++) {
		char buf[256];
		int fd = server_connect(port);
		if (fd < 0 || write(fd, req, sizeof req - 1) != (ssize_t)sizeof req - 1) {
			fprintf(stderr, "luabench: floor: %s\n", strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		while (read(fd, buf, sizeof buf) > 0) {
		}
		close(fd);
	}
	return (double)(cpu_ns(RUSAGE_SELF) - c0) / 1e3 / FLOOR_PROBES;
}

/* The same with keep-alive, as the checks run: one connection, then per
 * probe only write the request and read the response (RESPONSE, its
 * length known). What a probe costs at the socket level before any
 * scheduling, parsing or Lua. */
static double floor_keepalive_us(int port) {
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                          "User-Agent: moonshim\r\n\r\n";
	int fd = server_connect(port);
	if (fd < 0) {
		fprintf(stderr, "luabench: keep-alive floor: %s\n", strerror(errno));
		return -1;
	}
	int64_t c0 = cpu_ns(RUSAGE_SELF);
	for (int i = 0; i < FLOOR_PROBES; i++) {
		char buf[256];
		size_t got = 0;
		ssize_t r = 1;
		if (write(fd, req, sizeof req - 1) != (ssize_t)sizeof req - 1)
			r = -1;
		while (r > 0 && got < sizeof RESPONSE - 1)
			if ((r = read(fd, buf, sizeof buf)) > 0)
				got += (size_t)r;
		if (r <= 0) {
			fprintf(stderr, "luabench: keep-alive floor: %s\n",
			        r < 0 ? strerror(errno) : "the server closed the connection");
			close(fd);
			return -1;
		}
	}
	double us = (double)(cpu_ns(RUSAGE_SELF) - c0) / 1e3 / FLOOR_PROBES;
	close(fd);
	return us;
}

/* ─── the peer: exec probes ──────────────────────────────────────────── */

typedef struct peer_run {
	int n, rate; /* probes declared; probes started per second */
	int64_t secs;
	char url[64];
	const char *busybox;
	/* out */
	double pct, achieved, us_per_probe, late_ms_mean, late_ms_max;
	long probes, failed, skipped;
} peer_run;

/* pid → probe index, open addressing; slot value 0 is empty. */
typedef struct {
	pid_t pid[PIDMAP_SIZE];
	int probe[PIDMAP_SIZE];
} pidmap;

static void pidmap_put(pidmap *m, pid_t pid, int probe) {
	unsigned h = (unsigned)pid % PIDMAP_SIZE;
	while (m->pid[h])
		h = (h + 1) % PIDMAP_SIZE;
	m->pid[h] = pid;
	m->probe[h] = probe;
}

/* Removes pid (backward-shift deletion keeps the probe chains intact). */
static int pidmap_take(pidmap *m, pid_t pid) {
	unsigned h = (unsigned)pid % PIDMAP_SIZE;
	while (m->pid[h] && m->pid[h] != pid)
		h = (h + 1) % PIDMAP_SIZE;
	if (!m->pid[h])
		return -1;
	int probe = m->probe[h];
	m->pid[h] = 0;
	for (unsigned j = (h + 1) % PIDMAP_SIZE; m->pid[j]; j = (j + 1) % PIDMAP_SIZE) {
		unsigned home = (unsigned)m->pid[j] % PIDMAP_SIZE;
		if ((j > h && (home <= h || home > j)) || (j < h && home <= h && home > j)) {
			m->pid[h] = m->pid[j];
			m->probe[h] = m->probe[j];
			m->pid[j] = 0;
			h = j;
		}
	}
	return probe;
}

typedef struct {
	pidmap map;
	bool *running;
	long failed, live;
} reaper;

static void reap(reaper *rp, int flags) {
	int status;
	pid_t pid;
	while (rp->live > 0 && (pid = waitpid(-1, &status, flags)) > 0) {
		int i = pidmap_take(&rp->map, pid);
		if (i < 0)
			continue; /* not a probe */
		rp->running[i] = false;
		rp->live--;
		rp->failed += !WIFEXITED(status) || WEXITSTATUS(status);
	}
}

/* The kubelet's exec prober in one loop: probe i of n is due at
 * start + i/rate (spread over the period) and every period after; a probe
 * still running when it is due again is skipped. Runs until `until` and
 * measures from `measure_from`: this process's CPU and its reaped
 * children's. */
static int exec_probes(peer_run *p, int64_t start, int64_t measure_from, int64_t until) {
	int n = p->rate; /* probes in flight per period */
	reaper *rp = calloc(1, sizeof *rp);
	if (!rp || !(rp->running = calloc((size_t)n, sizeof *rp->running))) {
		free(rp);
		return -ENOMEM;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = {"busybox", "wget", "-q", "-O", "/dev/null", p->url, NULL};
	int64_t c0 = 0, t0 = 0, late_sum = 0, late_max = 0;
	long started = 0, skipped = 0;
	bool measuring = false;
	for (long k = 0;; k++) {
		int i = (int)(k % n);
		int64_t due = start + (k / n) * PERIOD + (int64_t)i * PERIOD / n;
		if (due >= until)
			break;
		if (!measuring && due >= measure_from) {
			measuring = true;
			reap(rp, WNOHANG);
			rp->failed = 0;
			t0 = bf_mono_ns();
			c0 = cpu_ns(RUSAGE_SELF) + cpu_ns(RUSAGE_CHILDREN);
		}
		bf_sleep_until(due);
		reap(rp, WNOHANG);
		if (rp->running[i]) {
			skipped += measuring;
			continue;
		}
		int64_t late = bf_mono_ns() - due;
		pid_t pid;
		int rc = posix_spawn(&pid, p->busybox, &fa, NULL, argv, environ);
		if (rc) {
			fprintf(stderr, "luabench: spawn %s: %s\n", p->busybox, strerror(rc));
			break;
		}
		pidmap_put(&rp->map, pid, i);
		rp->running[i] = true;
		rp->live++;
		if (measuring) {
			started++;
			late_sum += late;
			late_max = late > late_max ? late : late_max;
		}
	}
	reap(rp, 0);
	int64_t t1 = bf_mono_ns(), c1 = cpu_ns(RUSAGE_SELF) + cpu_ns(RUSAGE_CHILDREN);
	posix_spawn_file_actions_destroy(&fa);
	p->probes = started;
	p->failed = rp->failed;
	p->skipped = skipped;
	p->pct = (double)(c1 - c0) / (double)(t1 - t0) * 100;
	p->achieved = (double)started / ((double)(t1 - t0) / SEC);
	p->us_per_probe = started ? (double)(c1 - c0) / 1e3 / (double)started : 0;
	p->late_ms_mean = started ? (double)late_sum / (double)started / 1e6 : 0;
	p->late_ms_max = (double)late_max / 1e6;
	free(rp->running);
	free(rp);
	return 0;
}

/* Full rate if a short trial at it leaves most of the machine free; else
 * 1/PEER_SCALE of it. Then the measured run. */
static int peer_cpu(peer_run *p) {
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->rate = p->n;
	int64_t start = bf_mono_ns();
	if (exec_probes(p, start, start, start + PEER_TRIAL))
		return 1;
	double trial = p->pct;
	if (trial / 100 > PEER_MAX_SHARE * (double)ncpu && p->n >= PEER_SCALE)
		p->rate = p->n / PEER_SCALE;
	printf("INFO checks_cpu: peer trial at %d probes/s: %.1f%% of a core on %ld cores, "
	       "%ld probes; measuring at %d probes/s\n",
	       p->n, trial, ncpu, p->probes, p->rate);
	start = bf_mono_ns();
	return exec_probes(p, start, start + WARMUP, start + WARMUP + p->secs * SEC) ? 1 : 0;
}

/* A path for `busybox` ($BUSYBOX, else the first on $PATH). */
static const char *find_busybox(void) {
	static char path[4096];
	const char *env = getenv("BUSYBOX");
	if (env)
		return access(env, X_OK) ? NULL : env;
	const char *p = getenv("PATH");
	for (p = p ? p : "/usr/bin:/bin"; *p;) {
		size_t len = strcspn(p, ":");
		snprintf(path, sizeof path, "%.*s/busybox", (int)len, p);
		if (len && !access(path, X_OK))
			return path;
		p += len + (p[len] == ':');
	}
	return NULL;
}

static void moonshim_info(const cpu_run *m, int secs) {
	printf("INFO checks_cpu: moonshim: %d checks in %d world%s, %d s after %d s warm-up: "
	       "%.1f probes/s, %.1f us CPU per probe; %d/%d healthy at the end, %d turned "
	       "unhealthy\n",
	       m->n, m->worlds, m->worlds == 1 ? "" : "s", secs, (int)(WARMUP / SEC), m->rate,
	       m->us_per_probe, m->healthy, m->n, m->unhealthy);
	if (m->limit)
		printf("INFO checks_cpu: moonshim: one world refused %d checks (\"at most %d "
		       "checks\", HK_MAX in shim/lua/checks.c), so %d per world\n",
		       m->n, m->limit, m->limit);
}

static void peer_info(const peer_run *p, int secs) {
	printf("INFO checks_cpu: peer: `busybox wget -q -O /dev/null %s` per probe "
	       "(posix_spawn), %d probes/s spread over the period, %d s: %.1f probes/s, %.0f us "
	       "CPU per probe (scheduler + probe), %ld failed, %ld skipped (still running), "
	       "started late by %.2f ms mean, %.1f ms max\n",
	       p->url, p->rate, secs, p->achieved, p->us_per_probe, p->failed, p->skipped,
	       p->late_ms_mean, p->late_ms_max);
	if (p->rate != p->n)
		printf("INFO checks_cpu: peer: %d exec probes/s would take more than %.0f%% of the "
		       "machine, so it ran at %d/s and its CPU (%.2f%% of a core) is extrapolated "
		       "x%d\n",
		       p->n, PEER_MAX_SHARE * 100, p->rate, p->pct, p->n / p->rate);
}

static int checks_cpu(int argc, char **argv) {
	int secs = argc > 2 ? atoi(argv[2]) : DEFAULT_SECS;
	int n = argc > 3 ? atoi(argv[3]) : DEFAULT_CHECKS;
	const char *side = argc > 4 ? argv[4] : "both";
	bool ours = strcmp(side, "peer"), peer = strcmp(side, "moonshim");
	if (secs < 1 || n < 1 || (!ours && !peer) || (ours && peer && strcmp(side, "both"))) {
		fprintf(stderr, "luabench: checks_cpu [SECS >= 1] [CHECKS >= 1] "
		                "[both|moonshim|peer]\n");
		return 2;
	}
	peer_run p = {.n = n, .secs = secs, .busybox = find_busybox()};
	if (peer && !p.busybox) {
		fprintf(stderr, "luabench: no busybox on $PATH (set $BUSYBOX)\n");
		return 1;
	}
	int port;
	pid_t server = start_server(&port);
	if (server < 0)
		return 1;
	/* The peer first: no runtime threads yet when it spawns. */
	snprintf(p.url, sizeof p.url, "http://127.0.0.1:%d/healthz", port);
	double floor = floor_us(port), floor_ka = floor_keepalive_us(port);
	int rc = floor < 0 || floor_ka < 0 || (peer && peer_cpu(&p));
	cpu_run m = {.n = n, .port = port, .secs = secs};
	if (!rc && ours)
		rc = rt_main(&(rt_config){0}, moonshim_cpu_main, &m) || m.rc;
	stop_server(server);
	if (rc)
		return 1;
	if (ours)
		moonshim_info(&m, secs);
	if (peer)
		peer_info(&p, secs);
	printf("INFO checks_cpu: floor: socket, connect, write, read to EOF, close from a plain C "
	       "loop: %.1f us CPU per probe, %.2f%% of a core at %d probes/s\n",
	       floor, floor * n / 1e4, n);
	printf("INFO checks_cpu: keep-alive floor: write the request, read the response on one "
	       "connection from a plain C loop: %.1f us CPU per probe, %.2f%% of a core at %d "
	       "probes/s\n",
	       floor_ka, floor_ka * n / 1e4, n);
	printf("INFO checks_cpu: the HTTP server is a separate process; its CPU is in neither "
	       "figure\n");
	int scale = peer ? p.n / p.rate : 1;
	printf("RESULT checks_cpu moonshim_pct=%.3f peer_pct=%.2f peer_scale=%d "
	       "moonshim_rate=%.1f peer_rate=%.1f healthy=%d checks=%d peer_failed=%ld "
	       "floor_us=%.1f floor_keepalive_us=%.1f\n",
	       ours ? m.pct : 0, p.pct * scale, scale, m.rate, p.achieved * scale, m.healthy, n,
	       p.failed, floor, floor_ka);
	return 0;
}

/* ─── check_memory ───────────────────────────────────────────────────── */

typedef struct mem_run {
	int n, per_world; /* per_world 0: find out (one world if allowed) */
	int port;         /* > 0: probe a server at a 1 s period for ACTIVE_WAIT first */
	/* out */
	long rss;
	size_t lua;
	int worlds, limit, goroutines;
	int rc;
} mem_run;

static int memory_main(void *arg) {
	mem_run *r = arg;
	fleet f;
	/* Idle: port 1 and a long interval, no probe runs while we look. */
	int port = r->port > 0 ? r->port : 1, interval = r->port > 0 ? 1 : IDLE_INTERVAL_S;
	r->rc = r->per_world ? fleet_start(&f, r->n, r->per_world, port, interval)
	                     : fleet_start_packed(&f, r->n, port, interval, &r->limit);
	if (r->rc)
		return 1;
	rt_sleep(r->port > 0 ? ACTIVE_WAIT : SETTLE);
	r->rss = rss_bytes();
	fleet_tasks(&f, &r->lua);
	r->worlds = f.nworlds;
	r->goroutines = rt_goroutines();
	fleet_stop(&f);
	return 0;
}

/* Run memory_main in a fresh process, so each measurement starts from the
 * same empty heap; the child sends its mem_run back through a pipe. */
static int measure_in_child(mem_run *r) {
	int fds[2];
	if (pipe(fds)) {
		perror("luabench: pipe");
		return 1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		int rc = rt_main(&(rt_config){0}, memory_main, r);
		ssize_t w = write(fds[1], r, sizeof *r);
		_exit(rc || r->rc || w != sizeof *r);
	}
	close(fds[1]);
	ssize_t got = pid > 0 ? read(fds[0], r, sizeof *r) : -1;
	close(fds[0]);
	int status = 0;
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (got != sizeof *r || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "luabench: check_memory: the measuring child failed (%d checks)\n",
		        r->n);
		return 1;
	}
	return 0;
}

static int check_memory(int argc, char **argv) {
	int n = argc > 2 ? atoi(argv[2]) : DEFAULT_CHECKS;
	if (n < 1) {
		fprintf(stderr, "luabench: check_memory [CHECKS >= 1]\n");
		return 2;
	}
	/* Find the per-world cap first, in a process of its own: a refused
	 * declaration leaves freed memory behind that would count. */
	mem_run probe = {.n = n};
	if (measure_in_child(&probe))
		return 1;
	int per_world = probe.limit ? probe.limit : n;
	mem_run none = {.n = 0, .per_world = 1}, idle = {.n = n, .per_world = per_world};
	if (measure_in_child(&none) || measure_in_child(&idle))
		return 1;
	/* Beside the target: the same checks after they ran a few times. */
	int port;
	pid_t server = start_server(&port);
	if (server < 0)
		return 1;
	mem_run active = {.n = n, .per_world = per_world, .port = port};
	int rc = measure_in_child(&active);
	stop_server(server);
	if (rc)
		return 1;
	double per = (double)(idle.rss - none.rss) / n;
	double lua = ((double)idle.lua - (double)none.lua) / n;
	double per_active = (double)(active.rss - none.rss) / n;
	printf("INFO check_memory: RSS %.1f KiB with 0 checks (1 world, %zu B of Lua), "
	       "%.1f KiB with %d idle checks (%d world%s, %.1f KiB of Lua, %d goroutines)\n",
	       none.rss / 1024.0, none.lua, idle.rss / 1024.0, n, idle.worlds,
	       idle.worlds == 1 ? "" : "s", idle.lua / 1024.0, idle.goroutines);
	printf("INFO check_memory: per idle check %.0f B: Lua heap %.0f B (closure, "
	       "prototype, declaration), the rest %.0f B (goroutine stack pages, check state, "
	       "malloc)\n",
	       per, lua, per - lua);
	if (probe.limit)
		printf("INFO check_memory: checks.c allows %d checks per world; the %d extra "
		       "worlds (~%zu B of Lua each, empty) are counted in the figure\n",
		       probe.limit, idle.worlds - 1, none.lua);
	printf("INFO check_memory: after %d s of probing a local server at a 1 s period: "
	       "%.0f B per check (RSS %.1f KiB, %.1f KiB of Lua)\n",
	       (int)(ACTIVE_WAIT / SEC), per_active, active.rss / 1024.0, active.lua / 1024.0);
	printf("RESULT check_memory bytes_per_check=%.0f lua_per_check=%.0f "
	       "active_bytes_per_check=%.0f worlds=%d checks=%d\n",
	       per, lua, per_active, idle.worlds, n);
	return 0;
}

/* ─── event_to_handler ──────────────────────────────────────────────────
 * A cgroup event through the shim's own path to a Lua policy handler, as
 * shim/supervise/supervise.c wires it: cg_watch_start → a goroutine receiving the
 * cg_event → ev_cgroup_type / ev_cgroup_fields → pl_dispatch → the handler
 * (E2H_SCRIPT), whose first line calls stamp(), a C function that records
 * CLOCK_MONOTONIC. The event is the one cgroup_event_latency times (an
 * exit child empties a fresh cgroup: populated 1→0, bench/fixture.h); from
 * the child's stamp just before it exits:
 *   moonshim  to stamp() in the handler of the populated 0 event
 *   watcher   to the receiving goroutine holding that event: the watcher
 *             alone. moonshim - watcher, event by event, is what dispatch
 *             and Lua add
 *   poll_1s   an oomd-style loop reading cgroup.events every second until
 *             it sees populated 0 (bf_poll_exits): the earliest its handler
 *             could start */

#define E2H_ROUNDS       300
#define E2H_POLL_SAMPLES 24
#define E2H_TIMEOUT      (5 * SEC) /* for the handler of one event */
#define E2H_CHAN_CAP     64        /* events and stamps in flight; 2 per round */
#define E2H_KEY          "luabench.event_to_handler"
#define E2H_FAILED       (-1) /* a stamp's value: the watcher or a handler failed */

static const char E2H_SCRIPT[] = "on(\"populated\", function(ev)\n"
                                 "  stamp(ev.value)\n"
                                 "end)\n";

typedef struct {
	int value; /* the event's populated, or E2H_FAILED */
	int64_t at;
} e2h_stamp;

typedef struct e2h_run {
	cg *c;
	int rounds;
	rt_chan *events; /* cg_event, from the watcher */
	rt_chan *stamps; /* e2h_stamp, from stamp() and failures */
	pl_engine *policies;
	rt_waitgroup wg;
	_Atomic int64_t received; /* when the last populated 0 was received */
	char failure[512];        /* what E2H_FAILED was about */
	/* per round, mono ns */
	int64_t *exited, *handled, *seen;
} e2h_run;

/* Never blocks the sender (a Lua task, the watcher's reader): after a
 * failure nobody may be receiving. */
static void e2h_offer(e2h_run *r, e2h_stamp s) {
	rt_case snd = {.c = r->stamps, .dir = RT_SEND, .elem = &s};
	rt_select(&snd, 1, 0);
}

static void e2h_fail(e2h_run *r, const char *msg) {
	snprintf(r->failure, sizeof r->failure, "%s", msg ? msg : "(no message)");
	e2h_offer(r, (e2h_stamp){.value = E2H_FAILED});
}

static int l_stamp(lua_State *L) {
	e2h_stamp s = {.at = bf_mono_ns()};
	s.value = (int)luaL_checkinteger(L, 1);
	e2h_offer(lw_get_ptr(L, E2H_KEY), s);
	return 0;
}

/* The policy engine's own reports: a handler's error ("script:line: ..."). */
static void e2h_emit(void *arg, const char *type, json_t *f) {
	if (!strcmp(type, "error"))
		e2h_fail(arg, json_string_value(json_object_get(f, "message")));
	json_decref(f);
}

/* supervise.c's cgroup_events: each watcher event to the policies. */
static void e2h_forward(void *arg) {
	e2h_run *r = arg;
	cg_event e;
	while (rt_chan_recv(r->events, &e)) {
		if (e.kind == CG_EV_POPULATED && e.value == 0)
			atomic_store(&r->received, rt_now());
		if (e.kind == CG_EV_ERROR || e.kind == CG_EV_GONE) {
			char msg[sizeof e.msg + 16];
			snprintf(msg, sizeof msg, "watcher: %s", e.msg);
			e2h_fail(r, msg);
		}
		json_t *fields = ev_cgroup_fields(&e);
		pl_dispatch(r->policies, ev_cgroup_type(&e), fields);
		json_decref(fields);
	}
	rt_wg_done(&r->wg);
}

/* bf_exit_rounds' wait: the handler's stamp of populated 0 (the child's
 * populated 1 comes first). */
static int e2h_seen(void *arg, int round) {
	e2h_run *r = arg;
	for (int64_t deadline = rt_deadline_in(E2H_TIMEOUT);;) {
		e2h_stamp s = {0};
		rt_case rcv = {.c = r->stamps, .dir = RT_RECV, .elem = &s};
		if (rt_select(&rcv, 1, deadline) != 0) {
			fprintf(stderr,
			        "luabench: no handler ran for populated 0 within 5 s, round %d\n",
			        round);
			return 1;
		}
		if (s.value == E2H_FAILED) {
			fprintf(stderr, "luabench: round %d: %s\n", round, r->failure);
			return 1;
		}
		if (s.value == 0) {
			r->handled[round] = s.at;
			r->seen[round] = atomic_load(&r->received);
			return 0;
		}
	}
}

static int e2h_main(void *arg) {
	e2h_run *r = arg;
	ms_err err = {0};
	cg_err ce = {0};
	lw_config lc = {.name = "event_to_handler"};
	lw_world *w = lw_new(&lc, &err);
	if (!w) {
		fprintf(stderr, "luabench: lw_new: %s\n", err.msg);
		return 1;
	}
	la_open(w);
	lw_set_ptr(w, E2H_KEY, r);
	lw_register(w, "stamp", l_stamp);
	pl_env env = {.cgroup = r->c, .pidfd = -1, .emit = e2h_emit, .emit_arg = r};
	r->policies = pl_new(w, &env);
	r->events = rt_chan_new(sizeof(cg_event), E2H_CHAN_CAP);
	r->stamps = rt_chan_new(sizeof(e2h_stamp), E2H_CHAN_CAP);
	cg_watch *cw = NULL;
	int rc = 0;
	if (lw_load(w, "event_to_handler.lua", E2H_SCRIPT, sizeof E2H_SCRIPT - 1, &err)) {
		fprintf(stderr, "luabench: %s\n", err.msg);
		rc = 1;
	} else if (!(cw = cg_watch_start(r->c, NULL, r->events, &ce))) {
		fprintf(stderr, "luabench: cg_watch_start: %s\n", ce.msg);
		rc = 1;
	}
	if (cw) {
		rt_wg_add(&r->wg, 1);
		rt_go(e2h_forward, r, "cgroup events");
		rc = bf_exit_rounds(r->c, r->rounds, e2h_seen, r, r->exited);
		cg_watch_stop(cw);
		rt_chan_close(r->events);
		rt_wg_wait(&r->wg);
	}
	pl_stop(r->policies);
	lw_free(w);
	rt_chan_free(r->events);
	rt_chan_free(r->stamps);
	return rc;
}

/* "median 123.4 us, p99 567.8 us" of v (sorted in place) */
static const char *e2h_summary(char *buf, size_t n, int64_t *v, int count, bool max_too) {
	double m = bf_median(v, count);
	int len = snprintf(buf, n, "median %.1f us, p99 %.1f us", m / 1e3,
	                   (double)bf_percentile(v, count, 99) / 1e3);
	if (max_too)
		snprintf(buf + len, n - (size_t)len, ", max %.1f us, %d over 1 ms",
		         (double)v[count - 1] / 1e3, bf_count_over(v, count, MS));
	return buf;
}

static int event_to_handler(int argc, char **argv) {
	int rounds = argc > 2 ? atoi(argv[2]) : E2H_ROUNDS;
	int want_poll = argc > 3 ? atoi(argv[3]) : E2H_POLL_SAMPLES;
	if (rounds < 1 || want_poll < 0) {
		fprintf(stderr, "luabench: event_to_handler [EVENTS >= 1] [POLL_SAMPLES >= 0]\n");
		return 2;
	}
	if (bf_init("luabench"))
		return 1;
	int64_t *v = calloc((size_t)rounds * 5 + (size_t)want_poll + 1, sizeof *v);
	if (!v) {
		fprintf(stderr, "luabench: out of memory\n");
		return 1;
	}
	e2h_run r = {.rounds = rounds, .wg = RT_WAITGROUP_INIT};
	r.exited = v;
	r.handled = v + rounds;
	r.seen = v + 2 * rounds;
	int64_t *lua = v + 3 * rounds, *watcher = v + 4 * rounds, *poll = v + 5 * rounds;
	int npoll = 0, missed = 0, rc = 1;
	if (!(r.c = bf_new_cgroup(0)) || rt_main(&(rt_config){.procs = 2}, e2h_main, &r))
		goto out;
	cg_close(r.c);
	if (want_poll && (bf_poll_exits(1, want_poll, poll, &npoll, &missed) || npoll == 0))
		goto out;
	int64_t *handler = r.handled; /* becomes the latency in place */
	for (int i = 0; i < rounds; i++) {
		lua[i] = r.handled[i] - r.seen[i];
		watcher[i] = r.seen[i] - r.exited[i];
		handler[i] = r.handled[i] - r.exited[i];
	}
	char a[128], b[128], c[128];
	double m = bf_median(handler, rounds), w = bf_median(watcher, rounds);
	double l = bf_median(lua, rounds);
	printf("INFO event_to_handler: moonshim, %d exits (populated 0 events): the handler's "
	       "first line %s\n",
	       rounds, e2h_summary(a, sizeof a, handler, rounds, true));
	printf("INFO event_to_handler: the watcher alone (the event received from its "
	       "channel): %s; dispatch + Lua added %s\n",
	       e2h_summary(b, sizeof b, watcher, rounds, false),
	       e2h_summary(c, sizeof c, lua, rounds, false));
	double p = npoll ? bf_median(poll, npoll) : 0;
	if (npoll)
		printf("INFO event_to_handler: poll_1s, %d exits over %d cgroups at random phase: "
		       "the read that saw populated 0 %s, min %.0f us (%d exits never seen "
		       "populated); its handler runs after that\n",
		       npoll, BF_POLL_SLOTS, e2h_summary(a, sizeof a, poll, npoll, false),
		       (double)poll[0] / 1e3, missed);
	printf("RESULT event_to_handler moonshim_us=%.1f moonshim_p99_us=%.1f watcher_us=%.1f "
	       "watcher_p99_us=%.1f lua_us=%.1f poll_us=%.0f poll_p99_us=%.0f\n",
	       m / 1e3, (double)bf_percentile(handler, rounds, 99) / 1e3, w / 1e3,
	       (double)bf_percentile(watcher, rounds, 99) / 1e3, l / 1e3, p / 1e3,
	       npoll ? (double)bf_percentile(poll, npoll, 99) / 1e3 : 0);
	rc = 0;
out:
	free(v);
	return rc;
}

/* ─── driver ─────────────────────────────────────────────────────────── */

static int serve_main(int argc, char **argv) {
	int port = argc > 2 ? atoi(argv[2]) : 0;
	int lfd = listen_on(&port);
	if (lfd < 0)
		return 1;
	printf("serving on 127.0.0.1:%d\n", port);
	serve(lfd);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} cases[] = {
    {"serve", serve_main},
    {"checks_cpu", checks_cpu},
    {"check_memory", check_memory},
    {"event_to_handler", event_to_handler},
};

int main(int argc, char **argv) {
	if (argc == 4 && !strcmp(argv[1], "exit-child"))
		return bf_exit_child_main(argv);
	if (argc < 2) {
		fprintf(stderr,
		        "usage: luabench serve PORT | checks_cpu [SECS] [CHECKS] | "
		        "check_memory [CHECKS] | event_to_handler [EVENTS] [POLL_SAMPLES]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* INFO lines as they come */
	signal(SIGPIPE, SIG_IGN);         /* a probe that hangs up early */
	/* thousands of sockets at once, in the checks and in the server */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max > MAX_FD ? MAX_FD : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!strcmp(argv[1], cases[i].name)) {
			int rc = cases[i].fn(argc, argv);
			if (!rc && rt_exit_leaks()) {
				fprintf(stderr, "luabench: %d goroutines leaked\n",
				        rt_exit_leaks());
				rc = 1;
			}
			return rc;
		}
	fprintf(stderr, "luabench: no case %s\n", argv[1]);
	return 2;
}
