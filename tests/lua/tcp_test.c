/* tcp_test.c — the Lua tcp library (shim/lua/luatcp.c) against a line server
 * on goroutines: send, and receive by count, by line (split across reads,
 * CR stripped) and to EOF; what arrived before EOF; a silent server ending
 * in "timeout" at the deadline while the task is parked (other goroutines
 * and other tasks of the world run); a refused connect and an unresolvable
 * name as messages; calls after close, close from another task, and
 * dropped connections closing their sockets; the receive cap; checks that
 * go healthy and unhealthy, the shipped scripts/tcp-check.lua among them;
 * and a connection made inside another network namespace. The fd counts
 * wait on the test server's accepted and live counts together
 * (tn_wait_conns): live alone cannot tell a connection that ended from one
 * that began. */
#define _GNU_SOURCE
#include "harness.h"
#include "testnet.h"

#include "../../shim/lua/checks.h"
#include "../../shim/lua/luaapi.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MS          1000000LL
#define ALL_CHUNK   100000 /* "all" sends three of these, then closes */
#define FLOOD_BYTES ((1 << 20) + 10)

/* ─── the line server ────────────────────────────────────────────────── */

/* One command: 0 to go on, -1 to close the connection. */
static int command(tn_conn *c, const char *cmd) {
	if (!strcmp(cmd, "ping"))
		return tn_send_str(c, "pong\r\n");
	if (!strcmp(cmd, "PING")) /* as Redis answers */
		return tn_send_str(c, "+PONG\r\n");
	if (!strcmp(cmd, "count"))
		return tn_send_str(c, "abcdefghij");
	if (!strcmp(cmd, "split")) { /* a line in two reads, then another */
		tn_send_str(c, "spl");
		rt_sleep(20 * MS);
		return tn_send_str(c, "it\r\nrest\n\n");
	}
	if (!strcmp(cmd, "quit")) { /* a few bytes, then EOF */
		tn_send_str(c, "partial");
		return -1;
	}
	if (!strcmp(cmd, "all")) {
		char *b = malloc(ALL_CHUNK);
		for (int i = 0; i < 3; i++) {
			memset(b, 'a' + i, ALL_CHUNK);
			tn_send(c, b, ALL_CHUNK);
			rt_sleep(5 * MS);
		}
		free(b);
		return -1;
	}
	if (!strcmp(cmd, "slow")) /* a line begun, never ended */
		return tn_send_str(c, "par");
	if (!strcmp(cmd, "flood")) { /* more than a receive may hold, no newline */
		char *b = malloc(FLOOD_BYTES);
		memset(b, 'x', FLOOD_BYTES);
		tn_send(c, b, FLOOD_BYTES);
		free(b);
		return 0;
	}
	if (!strncmp(cmd, "echo ", 5)) {
		tn_send_str(c, cmd + 5);
		return tn_send_str(c, "\n");
	}
	return 0; /* anything else: silence */
}

/* Commands, one a line, until one says to close or the client does. */
static void serve(tn_conn *c) {
	char *buf = c->req;
	for (;;) {
		char *nl = memchr(buf, '\n', c->len);
		if (nl) {
			*nl = 0;
			if (nl > buf && nl[-1] == '\r')
				nl[-1] = 0;
			int r = command(c, buf);
			c->len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, c->len);
			if (r)
				return;
			continue;
		}
		ssize_t n = c->len < sizeof c->req
		                ? rt_read(c->pd, buf + c->len, sizeof c->req - c->len,
		                          rt_deadline_in(TN_IO_TIMEOUT))
		                : 0;
		if (n <= 0)
			return;
		c->len += (size_t)n;
	}
}

/* ─── helpers ────────────────────────────────────────────────────────── */

/* A world with the libraries and `src` loaded, PORT set to port. */
static lw_world *world(int port, int netns, const char *src) {
	ms_err err = {0};
	/* a CPU budget the GC-heavy drop() keeps under ASan on a loaded host too */
	lw_config lc = {.name = "tcp", .mem_limit = 32u << 20, .cpu_budget_ns = 2000000000};
	lw_world *w = lw_new(&lc, &err);
	CHECK(w);
	la_set_netns(w, netns);
	la_open(w);
	char *full;
	CHECK(asprintf(&full, "PORT = %d\n%s", port, src) > 0);
	CHECKF(lw_load(w, "tcp_test.lua", full, strlen(full), &err) == 0, "%s", err.msg);
	free(full);
	return w;
}

static void call(lw_world *w, const char *fn) {
	ms_err err = {0};
	CHECKF(lw_call(w, fn, &err) == 0, "%s: %s", fn, err.msg);
}

static int open_fds(void) {
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	CHECK(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ─── cases ──────────────────────────────────────────────────────────── */

static int exchange_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	lw_world *w =
	    world(s.port, -1,
	          "function f()\n"
	          "  local c = assert(tcp.connect('127.0.0.1', PORT, {timeout = 2}))\n"
	          "  assert(tostring(c) == 'tcp{127.0.0.1:' .. PORT .. '}', tostring(c))\n"
	          "  assert(c:send('ping\\n') == 5)\n"
	          "  assert(c:receive('*l') == 'pong')\n"
	          "  c:send('count\\n')\n"
	          "  assert(c:receive(4) == 'abcd')\n"
	          "  assert(c:receive(0) == '')\n"
	          "  assert(c:receive(6) == 'efghij')\n"
	          "  c:send('split\\n')\n"
	          "  local l1, l2, l3 = c:receive(), c:receive('l'), c:receive('l')\n"
	          "  assert(l1 == 'split' and l2 == 'rest' and l3 == '', l1)\n"
	          "  c:send('echo hi there\\n'); assert(c:receive() == 'hi there')\n"
	          "  c:send('quit\\n')\n"
	          "  local p = c:receive(100)\n" /* what arrived before EOF */
	          "  assert(p == 'partial', p)\n"
	          "  local n, e = c:receive(1)\n"
	          "  assert(n == nil and e == 'tcp 127.0.0.1:' .. PORT .. "
	          "': receiving bytes: closed', e)\n"
	          "  n, e = c:receive('l')\n"
	          "  assert(n == nil and e:find('closed'), e)\n"
	          "  assert(c:receive('a') == '')\n" /* at EOF: all there is */
	          "  assert(c:close() == true and c:close() == true)\n"
	          "  local ok, err = pcall(c.receive, c, 1)\n"
	          "  assert(not ok and err:find('receive on a closed connection'), err)\n"
	          "  ok, err = pcall(c.send, c, 'x')\n"
	          "  assert(not ok and err:find('send on a closed connection'), err)\n"
	          "  assert(tostring(c):find('closed'))\n"
	          "  local d = assert(tcp.connect('localhost', PORT))\n"
	          "  d:send('all\\n')\n"
	          "  local all = assert(d:receive('a'))\n"
	          "  assert(#all == 3 * 100000, #all)\n"
	          "  assert(all:sub(1, 1) == 'a' and all:sub(-1) == 'c')\n"
	          "  ok, err = pcall(d.receive, d, 'x')\n"
	          "  assert(not ok and err:find('a byte count'), err)\n"
	          "  d:close()\n"
	          "  ok, err = pcall(tcp.connect, '127.0.0.1', 0)\n"
	          "  assert(not ok and err:find('port'), err)\n"
	          "end\n");
	call(w, "f");
	lw_free(w);
	tn_server_stop(&s, true);
	CHECK(s.accepted == 2 && s.live == 0);
	return 0;
}
TEST(tcp_send_and_receive_count_line_all) {
	run_rt(2, exchange_main, NULL);
}

typedef struct {
	volatile int stop, ticks;
} ticker;

static void tick_main(void *arg) {
	ticker *t = arg;
	while (!t->stop) {
		rt_sleep(10 * MS);
		t->ticks++;
	}
}

typedef struct {
	rt_chan *done;
	int rc;
} done_arg;

static void task_done(void *arg, int rc, const char *msg) {
	done_arg *d = arg;
	if (rc)
		fprintf(stderr, "task: %s\n", msg);
	d->rc = rc;
	rt_chan_send(d->done, &rc);
}

static int timeout_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	lw_world *w =
	    world(s.port, -1,
	          "other = 0\n"
	          "function f()\n"
	          "  local c = assert(tcp.connect('127.0.0.1', PORT))\n"
	          "  c:send('slow\\n')\n"
	          "  local t0 = now()\n"
	          "  local l, e = c:receive('l', 0.3)\n"
	          "  TOOK = now() - t0\n"
	          "  assert(l == nil and e == 'tcp 127.0.0.1:' .. PORT .. "
	          "': receiving a line: timeout', e)\n"
	          "  assert(TOOK >= 0.3 and TOOK < 0.6, TOOK)\n"
	          "  assert(other > 0, 'another task of the world ran meanwhile')\n"
	          "  assert(c:receive(3, 0.2) == 'par')\n" /* kept across the timeout */
	          "  local t1 = now()\n"
	          "  assert(select(2, c:receive(1, 0.1)):find('timeout'))\n"
	          "  assert(now() - t1 < 0.4)\n"
	          "  c:close()\n"
	          "  local d = assert(tcp.connect('127.0.0.1', PORT, {timeout = 0.2}))\n"
	          "  t1 = now()\n"
	          "  assert(select(2, d:receive('a')):find('timeout'))\n" /* connect's default */
	          "  assert(now() - t1 >= 0.2 and now() - t1 < 0.5)\n"
	          "  d:close()\n"
	          "end\n"
	          "function meanwhile() sleep(0.05); other = other + 1 end\n");
	ticker t = {0};
	rt_go(tick_main, &t, "ticker");
	done_arg d = {.done = rt_chan_new(sizeof(int), 1)};
	ms_err err = {0};
	CHECK(lw_go(w, "meanwhile", task_done, &d, &err) == 0);
	int64_t t0 = rt_now();
	call(w, "f");
	t.stop = 1;
	int rc;
	rt_chan_recv(d.done, &rc);
	CHECK(rc == 0);
	fprintf(stderr,
	        "a 300 ms receive timeout, then 100 ms and 200 ms ones: %.0f ms, %d ticks "
	        "of a 10 ms ticker meanwhile\n",
	        (double)(rt_now() - t0) / MS, t.ticks);
	CHECK(t.ticks >= 30); /* the P was never blocked: other goroutines ran */
	rt_sleep(20 * MS);
	rt_chan_free(d.done);
	lw_free(w);
	tn_server_stop(&s, true);
	return 0;
}
TEST(tcp_timeout_parks_and_others_run) {
	run_rt(2, timeout_main, NULL);
}

static int refused_main(void *arg) {
	int fd;
	lw_world *w =
	    world(tn_refusing_port(&fd), -1,
	          "function f()\n"
	          "  local c, e = tcp.connect('127.0.0.1', PORT)\n"
	          "  assert(c == nil and e == 'tcp connect 127.0.0.1:' .. PORT .. "
	          "': connecting: Connection refused', e)\n"
	          "  c, e = tcp.connect('[::1]', PORT)\n"
	          "  assert(c == nil and e:find('tcp connect %[::1%]:' .. PORT), e)\n"
	          "  c, e = tcp.connect('no-such-host.invalid', 80)\n"
	          "  assert(c == nil and e:find('no%-such%-host.invalid:80: resolving the "
	          "host'), e)\n"
	          "  for _, bad in ipairs{{'x', 70000}, {'', 80}, {'x', 1, 5}, "
	          "{'x', 1, {timeout = -1}}} do\n"
	          "    local ok, err = pcall(tcp.connect, table.unpack(bad))\n"
	          "    assert(not ok, 'accepted ' .. tostring(bad[1]))\n"
	          "  end\n"
	          "end\n");
	call(w, "f");
	lw_free(w);
	close(fd);
	return 0;
}
TEST(tcp_refused_and_unresolvable_are_messages) {
	run_rt(2, refused_main, NULL);
}

static int lifetime_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	lw_world *w =
	    world(s.port, -1,
	          "function drop()\n" /* 50 connections left to the GC */
	          "  for i = 1, 50 do\n"
	          "    local c = assert(tcp.connect('127.0.0.1', PORT))\n"
	          "    c:send('ping\\n'); assert(c:receive() == 'pong')\n"
	          "  end\n"
	          "  do local c <close> = assert(tcp.connect('127.0.0.1', PORT)); KEPT = c end\n"
	          "  assert(tostring(KEPT):find('closed'), 'a <close> variable closes it')\n"
	          "  local junk = {}\n" /* the allocation that makes the GC run */
	          "  for i = 1, 200000 do junk[i % 100 + 1] = {i} end\n"
	          "end\n"
	          "function open() CONN = assert(tcp.connect('127.0.0.1', PORT)) end\n"
	          "function reader()\n"
	          "  local t0 = now()\n"
	          "  R1, R2 = CONN:receive('l', 5)\n"
	          "  RTOOK = now() - t0\n"
	          "end\n"
	          "function closer()\n"
	          "  local ok, e = pcall(CONN.receive, CONN, 1)\n"
	          "  assert(not ok and e:find('another task uses the connection'), e)\n"
	          "  assert(CONN:close())\n"
	          "end\n"
	          "function verify()\n"
	          "  assert(R1 == nil and R2:find('receiving a line: closed'), R2)\n"
	          "  assert(RTOOK < 1, RTOOK)\n"
	          "  local ok, e = pcall(CONN.send, CONN, 'x')\n"
	          "  assert(not ok and e:find('closed connection'), e)\n"
	          "  LAST = assert(tcp.connect('127.0.0.1', PORT))\n" /* left for lw_free */
	          "end\n");
	int fds = open_fds();
	call(w, "drop");
	tn_wait_conns(&s, 51, 0); /* the server saw all 51, KEPT too, end */
	int after = open_fds();
	fprintf(stderr, "fds: %d before 51 dropped connections, %d after the GC\n", fds, after);
	CHECK(after == fds);
	/* a close from another task wakes the one parked on the connection */
	/* a slow server from here (100 ms to count a connection, 100 ms to
	 * close one): while CONN's end lingers and LAST's is not counted yet,
	 * one connection is live and three sockets are open */
	__atomic_store_n(&s.slow_ns, 100 * MS, __ATOMIC_SEQ_CST);
	call(w, "open");
	done_arg d = {.done = rt_chan_new(sizeof(int), 1)};
	ms_err err = {0};
	CHECK(lw_go(w, "reader", task_done, &d, &err) == 0);
	rt_sleep(50 * MS);
	call(w, "closer");
	int rc;
	rt_chan_recv(d.done, &rc);
	CHECK(rc == 0);
	call(w, "verify");
	tn_wait_conns(&s, 53, 1);     /* CONN's end closed, LAST's counted */
	CHECK(open_fds() == fds + 2); /* LAST's two ends */
	lw_free(w);                   /* closes LAST */
	tn_wait_conns(&s, 53, 0);
	CHECK(open_fds() == fds);
	rt_chan_free(d.done);
	tn_server_stop(&s, true);
	CHECK(s.accepted == 53 && s.live == 0);
	return 0;
}
TEST(tcp_close_gc_and_close_from_another_task) {
	run_rt(2, lifetime_main, NULL);
}

static int cap_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	lw_world *w = world(s.port, -1,
	                    "function f()\n"
	                    "  local c = assert(tcp.connect('127.0.0.1', PORT))\n"
	                    "  c:send('flood\\n')\n"
	                    "  local l, e = c:receive('l')\n"
	                    "  assert(l == nil and e:find('receiving a line: more than 1048576 "
	                    "bytes'), e)\n"
	                    "  assert(#c:receive(1048576) == 1048576)\n" /* the buffer, served */
	                    "  assert(c:receive(10) == 'xxxxxxxxxx')\n"
	                    "  local ok, err = pcall(c.receive, c, 1048577)\n"
	                    "  assert(not ok and err:find('1 MiB'), err)\n"
	                    "  c:close()\n"
	                    "end\n");
	call(w, "f");
	lw_free(w);
	tn_server_stop(&s, true);
	return 0;
}
TEST(tcp_receive_is_capped_at_1_mib) {
	run_rt(2, cap_main, NULL);
}

/* ─── checks ─────────────────────────────────────────────────────────── */

typedef struct {
	int healthy, unhealthy;
	char reason[256];
} counts;

static void on_event(void *arg, const char *type, json_t *f) {
	counts *c = arg;
	const char *subject = json_string_value(json_object_get(f, "subject"));
	const char *to = json_string_value(json_object_get(f, "to"));
	if (subject && to && !strcmp(subject, "check")) {
		if (!strcmp(to, "healthy"))
			c->healthy++;
		if (!strcmp(to, "unhealthy")) {
			c->unhealthy++;
			snprintf(c->reason, sizeof c->reason, "%s",
			         json_string_value(json_object_get(f, "reason")));
		}
	}
	json_decref(f);
}

static void wait_for(int *counter, int64_t limit) {
	int64_t t0 = rt_now();
	while (!*counter && rt_now() - t0 < limit)
		rt_sleep(10 * MS);
}

static int check_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	ms_err err = {0};
	lw_config lc = {.name = "tcpcheck"};
	lw_world *w = lw_new(&lc, &err);
	la_set_netns(w, -1);
	la_open(w);
	counts cnt = {0};
	hk_checks *hk = hk_new(w, on_event, &cnt);
	char src[1024];
	snprintf(src, sizeof src,
	         "check { name = 'pong', interval = 0.05, timeout = 1, retries = 2,\n"
	         "  run = function()\n"
	         "    local c <close>, err = tcp.connect('127.0.0.1', %d, {timeout = 0.5})\n"
	         "    if not c then return false, err end\n"
	         "    c:send('ping\\n')\n"
	         "    local l, e = c:receive('l')\n"
	         "    return l == 'pong', l or e\n"
	         "  end }\n",
	         s.port);
	CHECKF(lw_load(w, "pong.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECKF(hk_start(hk, &err) == 0, "%s", err.msg);
	wait_for(&cnt.healthy, 3000 * MS);
	CHECK(cnt.healthy == 1 && cnt.unhealthy == 0);
	tn_server_stop(&s, true); /* connects are refused from now on */
	wait_for(&cnt.unhealthy, 3000 * MS);
	json_t *j = hk_json(hk); /* the check's log keeps run's output */
	char *js = json_dumps(j, 0);
	fprintf(stderr, "unhealthy: %s\n", cnt.reason);
	CHECK(cnt.unhealthy == 1 && strstr(cnt.reason, "2 consecutive failures"));
	CHECKF(strstr(js, "tcp connect 127.0.0.1:") && strstr(js, "Connection refused"), "%s", js);
	free(js);
	json_decref(j);
	hk_stop(hk);
	lw_free(w);
	return 0;
}
TEST(tcp_check_goes_healthy_then_unhealthy) {
	run_rt(2, check_main, NULL);
}

/* scripts/tcp-check.lua as shipped, its port pointed at the server. */
static int shipped_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	char path[512], *src = NULL, *at;
	size_t len = 0;
	snprintf(path, sizeof path, "%.*sscripts/tcp-check.lua",
	         (int)(strstr(__FILE__, "tests/lua/") - __FILE__), __FILE__);
	FILE *f = fopen(path, "r");
	CHECKF(f, "%s", path);
	CHECK(getdelim(&src, &len, 0, f) > 0);
	fclose(f);
	CHECKF((at = strstr(src, "6379")), "no port 6379 in %s", path);
	char *full;
	CHECK(asprintf(&full, "%.*s%d%s", (int)(at - src), src, s.port, at + 4) > 0);
	ms_err err = {0};
	lw_config lc = {.name = "shipped"};
	lw_world *w = lw_new(&lc, &err);
	la_set_netns(w, -1);
	la_open(w);
	counts cnt = {0};
	hk_checks *hk = hk_new(w, on_event, &cnt);
	CHECKF(lw_load(w, "tcp-check.lua", full, strlen(full), &err) == 0, "%s", err.msg);
	CHECK(hk_count(hk) == 1);
	CHECKF(hk_start(hk, &err) == 0, "%s", err.msg);
	wait_for(&cnt.healthy, 3000 * MS);
	CHECK(cnt.healthy == 1);
	hk_stop(hk);
	lw_free(w);
	tn_server_stop(&s, true);
	free(src);
	free(full);
	return 0;
}
TEST(tcp_shipped_check_script_goes_healthy) {
	run_rt(2, shipped_main, NULL);
}

/* ─── another network namespace ──────────────────────────────────────── */

static int netns_main(void *arg) {
	tn_netns *a = arg;
	lw_world *in = world(a->port, a->fd,
	                     "function f()\n"
	                     "  for i = 1, 3 do\n" /* again and again: no thread is left in there */
	                     "    local c = assert(tcp.connect('localhost', PORT))\n"
	                     "    c:send('hello\\n')\n"
	                     "    assert(c:receive() == 'inside')\n"
	                     "    c:close()\n"
	                     "  end\n"
	                     "  local c, e = tcp.connect('example.invalid', PORT)\n"
	                     "  assert(c == nil and e:find('namespace'), e)\n"
	                     "end\n");
	call(in, "f");
	lw_free(in);
	lw_world *ours = world(a->port, -1, /* in ours, nobody listens on that port */
	                       "function f()\n"
	                       "  local c, e = tcp.connect('127.0.0.1', PORT)\n"
	                       "  assert(c == nil and e:find('refused'), e)\n"
	                       "end\n");
	call(ours, "f");
	lw_free(ours);
	return 0;
}

TEST(tcp_connect_inside_another_netns) {
	tn_with_netns("inside\n", netns_main);
}
