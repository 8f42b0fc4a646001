/* http_test.c — the HTTP client (shim/io/http.c) against a canned server on
 * a goroutine: bodies framed by Content-Length, chunks and EOF; statuses
 * surfaced; HEAD/204/304 without a body even when the server keeps the
 * connection open; hostile servers (silence, slowloris, huge heads, bad
 * chunk sizes, short bodies) ending in -ETIMEDOUT or -EPROTO within the
 * deadline; the body cap; 1,000 concurrent GETs; and a request made inside
 * another network namespace, where our own namespace has no such server. */
#define _GNU_SOURCE
#include "harness.h"
#include "testnet.h"

#include "../../shim/io/http.h"
#include "../../shim/lua/luaapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MS           1000000LL
#define BIG_BODY     (1 << 20)
#define N_CONCURRENT 1000
#define SLOW_SERVER  (100 * MS) /* /slowhello's think time, as a busy service's */

/* ─── the canned server ──────────────────────────────────────────────── */

/* The value of header `name` in the request, copied into out ("" if none). */
static void req_header(const tn_conn *c, const char *name, char *out, size_t n) {
	const char *p = strcasestr(c->req, name);
	out[0] = 0;
	if (p && (p = strchr(p, ':'))) {
		p += strspn(p + 1, " ") + 1;
		snprintf(out, n, "%.*s", (int)strcspn(p, "\r\n"), p);
	}
}

static void respond(tn_conn *c, const char *method, const char *path, const char *body,
                    size_t body_len) {
	char buf[1024], ua[64], host[64];
	if (!strcmp(path, "/hello") || !strcmp(path, "/slowhello")) {
		if (path[1] == 's')
			rt_sleep(SLOW_SERVER);
		tn_send_str(c,
		            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test:  a b \r\n\r\nhello");
	} else if (!strcmp(path, "/echo")) {
		req_header(c, "\r\nUser-Agent", ua, sizeof ua);
		req_header(c, "\r\nHost", host, sizeof host);
		snprintf(buf, sizeof buf,
		         "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\nX-Method: %s\r\n"
		         "X-UA: %s\r\nX-Host: %s\r\n\r\n",
		         body_len, method, ua, host);
		tn_send_str(c, buf);
		tn_send(c, body, body_len);
	} else if (!strcmp(path, "/chunked")) { /* split mid-chunk, with an extension, a trailer */
		tn_send_str(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhel");
		rt_sleep(10 * MS);
		tn_send_str(c, "lo\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n");
	} else if (!strcmp(path, "/close")) { /* HTTP/1.0, no length: to EOF */
		tn_send_str(c, "HTTP/1.0 200 OK\r\n\r\n");
		for (int i = 0; i < 100; i++) {
			memset(buf, 'a' + i % 26, 1000);
			tn_send(c, buf, 1000);
		}
	} else if (!strcmp(path, "/fold")) { /* obs-fold, bare LF, odd spacing */
		tn_send_str(c, "HTTP/1.1 200 OK\nX-Fold: a\r\n   b\r\nX-Empty:\r\n"
		               "Content-Length:  2 \r\n\r\nok");
	} else if (!strcmp(path, "/404")) {
		tn_send_str(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
	} else if (!strcmp(path, "/silent")) {
		tn_wait_eof(c);
	} else if (!strcmp(path, "/big")) {
		snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
		         BIG_BODY);
		tn_send_str(c, buf);
		char *b = calloc(1, BIG_BODY);
		tn_send(c, b, BIG_BODY); /* fails once the client stops reading */
		free(b);
	} else if (!strcmp(path, "/badstatus")) {
		tn_send_str(c, "HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/hugehead")) { /* 100 KiB of header, never ending */
		tn_send_str(c, "HTTP/1.1 200 OK\r\nX-Big: ");
		memset(buf, 'x', sizeof buf);
		for (int i = 0; i < 100 && !tn_send(c, buf, sizeof buf); i++)
			;
	} else if (!strcmp(path, "/badchunk")) {
		tn_send_str(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
	} else if (!strcmp(path, "/hugechunk")) { /* a size that would overflow 64 bits */
		tn_send_str(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		               "10000000000000000000\r\n");
	} else if (!strcmp(path, "/short")) {
		tn_send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	} else if (!strcmp(path, "/twolengths")) {
		tn_send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd");
	} else if (!strcmp(path, "/nobody")) { /* a length but no body: kept open */
		tn_send_str(c, !strcmp(method, "HEAD")
		                   ? "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
		                   : "HTTP/1.1 204 No Content\r\n\r\n");
		tn_wait_eof(c);
	} else if (!strcmp(path, "/304")) {
		tn_send_str(c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n");
		tn_wait_eof(c);
	} else if (!strcmp(path, "/continue")) {
		tn_send_str(
		    c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
		       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	} else if (!strcmp(path, "/ka") || !strcmp(path, "/kadrop") || !strcmp(path, "/kaidle")) {
		tn_send_str(c, strcmp(method, "HEAD")
		                   ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nka"
		                   : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
	} else if (!strcmp(path, "/kachunked")) {
		tn_send_str(
		    c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nka\r\n0\r\n\r\n");
	} else if (!strcmp(path, "/kaclose")) {
		tn_send_str(c,
		            "HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: "
		            "2\r\n\r\nka");
	} else if (!strcmp(path, "/ka10")) { /* 1.0: not persistent, though left open */
		tn_send_str(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nka");
	} else if (!strcmp(path, "/kaextra")) { /* bytes past the body */
		tn_send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nkaXX");
	} else if (!strcmp(path, "/kabig")) {
		tn_send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
	} else if (!strcmp(path, "/slowloris")) { /* one header byte every 20 ms */
		tn_send_str(c, "HTTP/1.1 200 OK\r\nX-Slow: ");
		for (int i = 0; i < 500 && !tn_send_str(c, "s"); i++)
			rt_sleep(20 * MS);
	}
}

/* One request, or on paths /ka... as many as the client sends on the
 * connection (keep-alive) until one asks `Connection: close`. /kadrop: the
 * next request is read and the connection closed without an answer, as a
 * server whose idle timeout fires just then; /kaidle: closed 20 ms after
 * the answer (an idle timeout noticed before the next request). */
static void serve(tn_conn *c) {
	for (bool drop = false;;) {
		char *end = NULL;
		c->req[c->len] = 0;
		while (!(end = strstr(c->req, "\r\n\r\n")) && c->len < sizeof c->req - 1) {
			ssize_t n = rt_read(c->pd, c->req + c->len, sizeof c->req - 1 - c->len,
			                    rt_deadline_in(TN_IO_TIMEOUT));
			if (n <= 0)
				return;
			c->len += (size_t)n;
			c->req[c->len] = 0;
		}
		if (!end)
			return;
		char method[16] = "", path[256] = "", cl[32], conn[64];
		sscanf(c->req, "%15s %255s", method, path);
		req_header(c, "\r\nContent-Length", cl, sizeof cl);
		req_header(c, "\r\nConnection", conn, sizeof conn);
		size_t want = (size_t)atol(cl), have = c->len - (size_t)(end + 4 - c->req);
		if (!strcmp(path, "/early")) { /* refused before the body: closed with a RST */
			tn_send_str(c,
			            "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
			want = 0;
		}
		char *body = malloc(want + 1);
		memcpy(body, end + 4, have < want ? have : want);
		size_t used = (size_t)(end + 4 - c->req) + (have < want ? have : want);
		while (have < want) {
			ssize_t n =
			    rt_read(c->pd, body + have, want - have, rt_deadline_in(TN_IO_TIMEOUT));
			if (n <= 0)
				break;
			have += (size_t)n;
		}
		if (strcmp(path, "/early") && !drop)
			respond(c, method, path, body, want);
		free(body);
		if (drop || strncmp(path, "/ka", 3) || !strcmp(path, "/kaclose") ||
		    strcasestr(conn, "close"))
			return;
		if (!strcmp(path, "/kaidle")) {
			rt_sleep(20 * MS);
			return;
		}
		drop = !strcmp(path, "/kadrop");
		c->len -= used;
		memmove(c->req, c->req + used, c->len);
	}
}

/* ─── helpers ────────────────────────────────────────────────────────── */

typedef struct {
	const char *method, *path;
	const void *body;
	size_t body_len;
	int64_t timeout_ns;
	size_t max_body;
	nc_pool *pool;
} call;

static int do_call(tn_server *s, call c, http_response *resp, ms_err *err) {
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, c.path);
	http_request req = {.method = c.method,
	                    .url = url,
	                    .body = c.body,
	                    .body_len = c.body_len,
	                    .timeout_ns = c.timeout_ns ? c.timeout_ns : 2000 * MS,
	                    .max_body = c.max_body,
	                    .netns_fd = -1,
	                    .pool = c.pool};
	*err = (ms_err){0};
	int r = http_do(&req, resp, err);
	if (r)
		fprintf(stderr, "%s -> %d: %s\n", c.path, r, err->msg);
	return r;
}

#define BODY_IS(resp, s) ((resp).body_len == strlen(s) && !memcmp((resp).body, (s), strlen(s)))

/* ─── cases ──────────────────────────────────────────────────────────── */

static int get_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	http_response r;
	ms_err err;
	CHECK(do_call(&s, (call){.path = "/hello"}, &r, &err) == 0);
	CHECK(r.status == 200 && !strcmp(r.reason, "OK"));
	CHECK(BODY_IS(r, "hello") && r.body[5] == 0 && !r.truncated);
	CHECKF(!strcmp(http_header(&r, "x-test") ?: "", "a b"), "%s", http_header(&r, "x-test"));
	CHECK(r.nheaders == 2 && !strcmp(r.headers[0], "Content-Length: 5"));
	CHECK(r.elapsed_ns > 0 && r.elapsed_ns < 1000 * MS);
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/404"}, &r, &err) == 0); /* a status, not an error */
	CHECK(r.status == 404 && !strcmp(r.reason, "Not Found") && BODY_IS(r, "not found"));
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/continue"}, &r, &err) == 0); /* 1xx skipped */
	CHECK(r.status == 200 && BODY_IS(r, "ok") && !http_header(&r, "Link"));
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/fold"}, &r, &err) == 0);
	CHECK(!strcmp(http_header(&r, "X-Fold"), "a b") && !strcmp(http_header(&r, "X-Empty"), ""));
	CHECK(BODY_IS(r, "ok"));
	http_response_free(&r);
	/* a name: resolved on the blocking pool (::1 may come first and be refused) */
	char url[64];
	snprintf(url, sizeof url, "http://localhost:%d/hello", s.port);
	http_request req = {.url = url, .timeout_ns = 2000 * MS, .netns_fd = -1};
	CHECKF(http_do(&req, &r, &err) == 0, "%s", err.msg);
	CHECK(r.status == 200 && BODY_IS(r, "hello"));
	http_response_free(&r);
	req.url = "http://no-such-host.invalid/";
	CHECKF(http_do(&req, &r, &err) == -ENOENT, "%s", err.msg);
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_get_status_and_headers) {
	run_rt(2, get_main, NULL);
}

static int post_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	http_response r;
	ms_err err;
	const char *msg = "{\"event\":\"oom\",\"container\":\"c1\"}";
	CHECK(
	    do_call(&s,
	            (call){.method = "POST", .path = "/echo", .body = msg, .body_len = strlen(msg)},
	            &r, &err) == 0);
	CHECK(r.status == 201 && BODY_IS(r, msg));
	CHECK(!strcmp(http_header(&r, "X-Method"), "POST"));
	CHECK(!strcmp(http_header(&r, "X-UA"), "moonshim"));
	char host[64];
	snprintf(host, sizeof host, "127.0.0.1:%d", s.port);
	CHECK(!strcmp(http_header(&r, "X-Host"), host));
	http_response_free(&r);
	/* 1 MiB up: more than the socket buffers, so it takes several writes */
	char *big = malloc(BIG_BODY);
	for (int i = 0; i < BIG_BODY; i++)
		big[i] = (char)('A' + i % 23);
	CHECK(do_call(&s,
	              (call){.method = "PUT", .path = "/echo", .body = big, .body_len = BIG_BODY},
	              &r, &err) == 0);
	CHECK(r.body_len == BIG_BODY && !memcmp(r.body, big, BIG_BODY) && !r.truncated);
	http_response_free(&r);
	/* answered and closed before the body was taken: the answer still counts */
	int r413 = do_call(
	    &s, (call){.method = "POST", .path = "/early", .body = big, .body_len = BIG_BODY}, &r,
	    &err);
	CHECKF(r413 == 0 && r.status == 413, "%d %d", r413, r.status);
	http_response_free(&r);
	free(big);
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_post_body_echoed) {
	run_rt(2, post_main, NULL);
}

static int framing_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	http_response r;
	ms_err err;
	CHECK(do_call(&s, (call){.path = "/chunked"}, &r, &err) == 0);
	CHECKF(BODY_IS(r, "hello, world!!!"), "%.*s", (int)r.body_len, r.body);
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/close"}, &r, &err) == 0);
	CHECK(r.status == 200 && r.body_len == 100000 && r.body[0] == 'a' && r.body[99999] == 'v');
	http_response_free(&r);
	/* no body to wait for, though the server says a length and stays open */
	CHECK(do_call(&s, (call){.method = "HEAD", .path = "/nobody"}, &r, &err) == 0);
	CHECK(r.status == 200 && r.body_len == 0 && r.body && !r.body[0]);
	CHECK(r.elapsed_ns < 500 * MS);
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/nobody"}, &r, &err) == 0);
	CHECK(r.status == 204 && r.body_len == 0 && r.elapsed_ns < 500 * MS);
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/304"}, &r, &err) == 0);
	CHECK(r.status == 304 && r.body_len == 0 && r.elapsed_ns < 500 * MS);
	http_response_free(&r);
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_chunked_eof_and_bodiless) {
	run_rt(2, framing_main, NULL);
}

static int cap_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	http_response r;
	ms_err err;
	CHECK(do_call(&s, (call){.path = "/big", .max_body = 1000}, &r, &err) == 0);
	CHECK(r.status == 200 && r.body_len == 1000 && r.truncated && r.body[1000] == 0);
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/close", .max_body = 100000}, &r, &err) == 0);
	CHECK(r.body_len == 100000 && !r.truncated); /* exactly the cap is not cut */
	http_response_free(&r);
	CHECK(do_call(&s, (call){.path = "/chunked", .max_body = 7}, &r, &err) == 0);
	CHECK(BODY_IS(r, "hello, ") && r.truncated);
	http_response_free(&r);
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_body_cap_truncates) {
	run_rt(2, cap_main, NULL);
}

static int hostile_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	http_response r;
	ms_err err;
	static const struct {
		const char *path, *msg;
	} cases[] = {
	    {"/badstatus", "malformed status line"},
	    {"/hugehead", "response head over 64 KiB"},
	    {"/badchunk", "bad chunk size"},
	    {"/hugechunk", "bad chunk size"},
	    {"/short", "connection closed before the body's end"},
	    {"/twolengths", "conflicting Content-Length values"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECKF(do_call(&s, (call){.path = cases[i].path}, &r, &err) == -EPROTO, "%s",
		       cases[i].path);
		CHECKF(strstr(err.msg, cases[i].msg) && strstr(err.msg, cases[i].path), "%s",
		       err.msg);
		CHECK(r.status == 0 && !r.body && !r.headers && r.elapsed_ns > 0);
	}
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_malformed_responses_are_eproto) {
	run_rt(2, hostile_main, NULL);
}

static int timeout_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	http_response r;
	ms_err err;
	const char *paths[] = {"/silent", "/slowloris"};
	for (int i = 0; i < 2; i++) {
		int64_t t0 = rt_now();
		CHECK(do_call(&s, (call){.path = paths[i], .timeout_ns = 300 * MS}, &r, &err) ==
		      -ETIMEDOUT);
		int64_t took = rt_now() - t0;
		fprintf(stderr, "%s: -ETIMEDOUT after %.1f ms (deadline 300 ms)\n", paths[i],
		        (double)took / MS);
		CHECK(took >= 300 * MS && took < 400 * MS);
		CHECK(r.elapsed_ns >= 300 * MS && r.elapsed_ns <= took);
		CHECK(strstr(err.msg, "timed out") && strstr(err.msg, paths[i]));
	}
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_deadline_covers_silence_and_slowloris) {
	run_rt(2, timeout_main, NULL);
}

static int refused_main(void *arg) {
	int fd;
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", tn_refusing_port(&fd));
	http_request req = {.url = url, .timeout_ns = 1000 * MS, .netns_fd = -1};
	http_response r;
	ms_err err = {0};
	CHECK(http_do(&req, &r, &err) == -ECONNREFUSED);
	CHECKF(strstr(err.msg, url) && strstr(err.msg, "refused"), "%s", err.msg);
	close(fd);
	/* errors before any I/O */
	static const struct {
		const char *url;
		int code;
	} bad[] = {
	    {"https://127.0.0.1/", -EPROTONOSUPPORT},
	    {"ftp://x/", -EINVAL},
	    {"http://127.0.0.1:99999/", -EINVAL},
	    {"http://a b/", -EINVAL},
	    {"http://user@127.0.0.1/", -EINVAL},
	    {"http://[::1/", -EINVAL},
	    {"http:///x", -EINVAL},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		req.url = bad[i].url;
		CHECKF(http_do(&req, &r, &err) == bad[i].code, "%s: %s", bad[i].url, err.msg);
	}
	const char *hdrs[] = {"Connection: keep-alive", NULL};
	req = (http_request){.url = url, .headers = hdrs, .netns_fd = -1};
	CHECK(http_do(&req, &r, &err) == -EINVAL);
	const char *inject[] = {"X-A: 1\r\nX-B: 2", NULL};
	req.headers = inject;
	CHECK(http_do(&req, &r, &err) == -EINVAL);
	return 0;
}
TEST(http_refused_and_bad_requests) {
	run_rt(2, refused_main, NULL);
}

/* ─── 1,000 at once ──────────────────────────────────────────────────── */

typedef struct {
	tn_server *s;
	const char *path;
	rt_waitgroup wg;
	int ok;
} fleet;

static void one_get(void *arg) {
	fleet *f = arg;
	http_response r;
	ms_err err;
	if (do_call(f->s, (call){.path = f->path, .timeout_ns = 10000 * MS}, &r, &err) == 0 &&
	    r.status == 200 && BODY_IS(r, "hello"))
		__atomic_add_fetch(&f->ok, 1, __ATOMIC_RELAXED);
	http_response_free(&r);
	rt_wg_done(&f->wg);
}

/* n GETs of `path`, all at once (or one after another): the time taken. */
static int64_t fleet_run(fleet *f, const char *path, long n, bool at_once) {
	f->path = path;
	f->ok = 0;
	int64_t t0 = rt_now();
	for (long i = 0; i < n; i++) {
		rt_wg_add(&f->wg, 1);
		if (at_once)
			rt_go(one_get, f, "http get");
		else
			one_get(f);
	}
	rt_wg_wait(&f->wg);
	CHECKF(f->ok == n, "%s: %d of %ld succeeded", path, f->ok, n);
	return rt_now() - t0;
}

static int concurrent_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	long n = scaled(N_CONCURRENT);
	fleet f = {.s = &s};
	/* a fast local server: both ends share 2 P's, so this is CPU-bound */
	int64_t serial = fleet_run(&f, "/hello", n, false);
	int64_t conc = fleet_run(&f, "/hello", n, true);
	fprintf(stderr,
	        "%ld GETs, instant server: %.1f ms from %ld goroutines at once (%.0f/s), "
	        "%.1f ms one after another (%.0f/s); ratio %.2fx\n",
	        n, (double)conc / MS, n, n * 1e9 / (double)conc, (double)serial / MS,
	        n * 1e9 / (double)serial, (double)serial / (double)conc);
	/* a server that thinks 100 ms per request: the waits overlap */
	int64_t slow = fleet_run(&f, "/slowhello", n, true);
	fprintf(stderr,
	        "%ld GETs, 100 ms server: %.1f ms at once; one after another would take "
	        ">= %.0f ms; ratio >= %.0fx\n",
	        n, (double)slow / MS, (double)(n * SLOW_SERVER) / MS,
	        (double)(n * SLOW_SERVER) / (double)slow);
	CHECK(slow < SLOW_SERVER + 2000 * MS);
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_1000_concurrent_gets) {
	run_rt(2, concurrent_main, NULL);
}

/* ─── keep-alive ─────────────────────────────────────────────────────── */

/* GET path with the pool: the body must be "ka". */
static void get_ka(tn_server *s, nc_pool *pool, const char *path) {
	http_response r;
	ms_err err;
	CHECK(do_call(s, (call){.path = path, .pool = pool}, &r, &err) == 0);
	CHECKF(r.status == 200 && BODY_IS(r, "ka"), "%s: %d", path, r.status);
	http_response_free(&r);
}

static int keepalive_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	nc_pool *pool = nc_pool_new(4, 16);
	http_response r;
	ms_err err;
	for (int i = 0; i < 10; i++) /* framed by length, by chunks, and none at all */
		get_ka(&s, pool, i % 2 ? "/ka" : "/kachunked");
	CHECK(do_call(&s, (call){.method = "HEAD", .path = "/ka", .pool = pool}, &r, &err) == 0);
	http_response_free(&r);
	CHECKF(s.accepted == 1, "11 requests took %d connections", s.accepted);
	/* the server's "close", a 1.0 response, bytes past the body, a body cut
	 * at max_body: each goes on the pooled connection, which is then closed,
	 * so the next request dials (the server keeps all but the first open) */
	const char *once[] = {"/kaclose", "/ka10", "/kaextra"};
	for (int i = 0; i < 3; i++) {
		int before = s.accepted;
		CHECK(do_call(&s, (call){.path = once[i], .pool = pool}, &r, &err) == 0);
		http_response_free(&r);
		get_ka(&s, pool, "/ka");
		CHECKF(s.accepted == before + 1, "%s: %d connections", once[i],
		       s.accepted - before);
	}
	int before = s.accepted;
	CHECK(do_call(&s, (call){.path = "/kabig", .pool = pool, .max_body = 4}, &r, &err) == 0);
	CHECK(r.truncated);
	http_response_free(&r);
	get_ka(&s, pool, "/ka");
	CHECK(s.accepted == before + 1);
	/* without a pool: Connection: close, and the server closes */
	before = s.accepted;
	for (int i = 0; i < 3; i++) {
		CHECK(do_call(&s, (call){.path = "/ka"}, &r, &err) == 0);
		http_response_free(&r);
	}
	CHECK(s.accepted == before + 3);
	nc_pool_free(pool);
	tn_server_stop(&s, true);
	CHECK(s.live == 0);
	return 0;
}
TEST(http_keepalive_reuses_one_connection_when_the_response_allows) {
	run_rt(2, keepalive_main, NULL);
}

static int stale_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	nc_pool *pool = nc_pool_new(1, 4);
	http_response r;
	ms_err err;
	/* closed while idle: noticed before the request goes out */
	get_ka(&s, pool, "/kaidle");
	rt_sleep(60 * MS);
	get_ka(&s, pool, "/ka");
	CHECK(s.accepted == 2);
	/* closed as the request arrives: nothing came back, so a GET is sent
	 * again on a new connection... */
	get_ka(&s, pool, "/kadrop");
	get_ka(&s, pool, "/ka");
	CHECKF(s.accepted == 3, "%d", s.accepted);
	/* ...but a POST, which the server may have acted on, is not */
	get_ka(&s, pool, "/kadrop");
	CHECK(do_call(
	          &s,
	          (call){.method = "POST", .path = "/ka", .body = "x", .body_len = 1, .pool = pool},
	          &r, &err) == -EPROTO);
	CHECKF(strstr(err.msg, "connection closed without a response"), "%s", err.msg);
	CHECK(s.accepted == 3);
	nc_pool_free(pool);
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_keepalive_stale_connection_is_replaced_once) {
	run_rt(2, stale_main, NULL);
}

/* The Lua side: {keepalive = true} keeps a connection per task function
 * (a check's run finds the one it left), closed with the world. */
static int lua_keepalive_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	ms_err err = {0};
	lw_config lc = {.name = "ka"};
	lw_world *w = lw_new(&lc, &err);
	la_set_netns(w, -1);
	la_open(w);
	char src[512];
	snprintf(src, sizeof src,
	         "function f(ka)\n"
	         "  for i = 1, 5 do\n"
	         "    local r = assert(http.get('http://127.0.0.1:%d/ka', {keepalive = ka}))\n"
	         "    assert(r.status == 200 and r.body == 'ka')\n"
	         "  end\n"
	         "end\n"
	         "function with() f(true) end\n"
	         "function with_too() f(true) end\n"
	         "function without() f(nil) end\n",
	         s.port);
	CHECKF(lw_load(w, "ka.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "with", &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "with", &err) == 0, "%s", err.msg); /* a new task, the same function */
	CHECKF(s.accepted == 1, "%d", s.accepted);
	CHECKF(lw_call(w, "with_too", &err) == 0, "%s", err.msg); /* its own */
	CHECKF(s.accepted == 2, "%d", s.accepted);
	CHECKF(lw_call(w, "without", &err) == 0, "%s", err.msg);
	CHECK(s.accepted == 7);
	tn_wait_live(&s, 2); /* the pooled ones */
	lw_free(w);
	tn_wait_live(&s, 0);
	tn_server_stop(&s, true);
	return 0;
}
TEST(http_keepalive_from_lua_per_task_function) {
	run_rt(2, lua_keepalive_main, NULL);
}

/* Seconds from scripts out of range (1e300 overflowed the conversion to
 * ns, undefined behaviour; -1 and NaN became the default timeout) are Lua
 * errors naming the call and the field, raised before any connection;
 * a timeout in range still works (sleep(1e10), for ever, is hostile_test's). */
static int seconds_main(void *arg) {
	tn_server s;
	tn_server_start(&s, serve);
	ms_err err = {0};
	lw_config lc = {.name = "seconds"};
	lw_world *w = lw_new(&lc, &err);
	la_set_netns(w, -1);
	la_open(w);
	char src[1536];
	snprintf(
	    src, sizeof src,
	    "URL = 'http://127.0.0.1:%d/ka'\n"
	    "local function refused(want, f, ...)\n"
	    "  local ok, e = pcall(f, ...)\n"
	    "  assert(not ok, want .. ': accepted')\n"
	    "  assert(e:find(want .. ' must be a number of seconds from', 1, true), e)\n"
	    "  return e\n"
	    "end\n"
	    "function f()\n"
	    "  for _, v in ipairs{1e300, -1, 0/0, -math.huge, 'soon'} do\n"
	    "    local e = refused('http.get: timeout', http.get, URL, {timeout = v})\n"
	    "    MSGS = (MSGS or '') .. e .. '\\n'\n"
	    "    refused('http.post: timeout', http.post, URL, 'x', {timeout = v})\n"
	    "    refused('exec.host: timeout', exec.host, {'true'}, {timeout = v})\n"
	    "    refused('tcp.connect: the timeout', tcp.connect, '127.0.0.1', 1, {timeout = v})\n"
	    "    if v ~= 1e300 then refused('sleep: the duration', sleep, v) end\n"
	    "  end\n"
	    "  local r = assert(http.get(URL, {timeout = 5}))\n"
	    "  assert(r.status == 200 and r.body == 'ka')\n"
	    "  sleep(0)\n"
	    "end\n",
	    s.port);
	CHECKF(lw_load(w, "seconds.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "f", &err) == 0, "%s", err.msg);
	CHECKF(s.accepted == 1, "%d connections: a refused timeout connected", s.accepted);
	lw_free(w);
	tn_server_stop(&s, true);
	return 0;
}
TEST(lua_seconds_out_of_range_are_errors) {
	run_rt(2, seconds_main, NULL);
}

/* ─── another network namespace ──────────────────────────────────────── */

static int netns_main(void *arg) {
	tn_netns *a = arg;
	char url[64];
	int nsfd = a->fd;
	snprintf(url, sizeof url, "http://localhost:%d/", a->port);
	http_request req = {.url = url, .timeout_ns = 2000 * MS, .netns_fd = nsfd};
	http_response r;
	ms_err err = {0};
	for (int i = 0; i < 3; i++) { /* again and again: no thread is left in there */
		CHECKF(http_do(&req, &r, &err) == 0, "%s", err.msg);
		CHECK(r.status == 200 && BODY_IS(r, "inside"));
		http_response_free(&r);
	}
	req.netns_fd = -1; /* in ours, nobody listens on that port */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", a->port);
	CHECK(http_do(&req, &r, &err) == -ECONNREFUSED);
	req.netns_fd = nsfd;
	req.url = "http://example.invalid/";
	CHECK(http_do(&req, &r, &err) == -EINVAL && strstr(err.msg, "namespace"));
	return 0;
}

TEST(http_connect_inside_another_netns) {
	tn_with_netns("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ninside", netns_main);
}
