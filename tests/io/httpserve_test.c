/* httpserve_test.c — the metrics server's HTTP (shim/io/httpserve.c): the
 * request-head parser on good, split, malformed, oversized and
 * wrong-version heads, then a real server on loopback driven by the shim's
 * own client (http.c) and raw sockets: GET, HEAD (no body, same length),
 * the handler's 404 and 405, a slow client cut at the read timeout, and a
 * connection over the cap answered 503 at once. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/http.h"
#include "../../shim/io/httpserve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static hs_request req;

static int parse(const char *s, size_t *head) {
	ms_err err = {0};
	size_t h = 0;
	int r = hs_parse(s, strlen(s), &req, head ? head : &h, &err);
	if (r && r != -EAGAIN)
		CHECKF(err.msg[0], "no message for %d", r);
	return r;
}

TEST(hs_parse_good) {
	const char *s = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\n"
	                "accept:  application/openmetrics-text \r\n\r\nBODY";
	size_t head;
	CHECK(parse(s, &head) == 0);
	CHECK(!strcmp(req.method, "GET") && !strcmp(req.path, "/metrics") && req.minor == 1);
	CHECKF(!strcmp(req.accept, "text/plain, application/openmetrics-text"), "%s", req.accept);
	CHECK(head == strlen(s) - 4);
	/* LF alone ends lines; empty lines before the request line are skipped;
	 * HTTP/1.0 needs no Host */
	CHECK(parse("\r\n\nHEAD / HTTP/1.0\n\n", NULL) == 0);
	CHECK(!strcmp(req.method, "HEAD") && req.minor == 0);
}

TEST(hs_parse_split) {
	const char *s = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	char buf[128];
	size_t n = strlen(s), head;
	ms_err err;
	for (size_t i = 0; i < n; i++) {
		memcpy(buf, s, i);
		CHECKF(hs_parse(buf, i, &req, &head, &err) == -EAGAIN, "prefix %zu", i);
	}
	CHECK(hs_parse(s, n, &req, &head, &err) == 0 && head == n);
}

TEST(hs_parse_bad) {
	CHECK(parse("GET /metrics HTTP/1.1\r\n\r\n", NULL) == -400);                /* no Host */
	CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", NULL) == -400); /* two */
	CHECK(parse("GET / HTTP/2.0\r\n\r\n", NULL) == -505);
	CHECK(parse("GET / HTTP/1.1 x\r\n\r\n", NULL) == -400);
	CHECK(parse("GET  / HTTP/1.1\r\n\r\n", NULL) == -400);
	CHECK(parse("G(T / HTTP/1.1\r\n\r\n", NULL) == -400);
	CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", NULL) == -400);
	CHECK(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", NULL) == -400);
	CHECK(parse("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", NULL) == -400);
	CHECK(parse("GET /\ra HTTP/1.1\r\nHost: a\r\n\r\n", NULL) == -400);
	CHECK(parse("GETTINGVERYLONGMETHODNAME / HTTP/1.1\r\n\r\n", NULL) == -400);
}

TEST(hs_parse_too_long) {
	static char big[HS_HEAD_MAX + 64];
	int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'x', sizeof big - (size_t)n - 1);
	ms_err err;
	size_t head;
	CHECK(hs_parse(big, HS_HEAD_MAX - 1, &req, &head, &err) == -EAGAIN);
	CHECK(hs_parse(big, HS_HEAD_MAX, &req, &head, &err) == -431);
	CHECK(hs_parse(big, sizeof big - 1, &req, &head, &err) == -431);
	CHECK(strstr(err.msg, "longer than"));
}

/* ─── A real server ───────────────────────────────────────────────────── */

typedef struct {
	int port;
	hs_server *s;
} srv;

static void handler(const hs_request *r, hs_response *out, void *arg) {
	if (strcmp(r->path, "/metrics")) {
		out->status = 404;
		return;
	}
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
		out->status = 405;
		out->allow = "GET, HEAD";
		return;
	}
	out->body = strdup(r->accept[0] ? r->accept : "hello\n");
	out->len = strlen(out->body);
	out->content_type = "text/plain; version=0.0.4";
}

static void start(srv *v, int conn_max, int64_t read_ns) {
	ms_err err;
	int fd = hs_listen("127.0.0.1:0", &err);
	CHECKF(fd >= 0, "%s", err.msg);
	v->port = hs_port(fd);
	CHECK(v->port > 0);
	hs_opts o = {.conn_max = conn_max, .read_ns = read_ns};
	CHECK((v->s = hs_start(fd, handler, NULL, &o, &err)));
}

static int get(srv *v, const char *method, const char *path, const char *const *hdr,
               http_response *resp) {
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", v->port, path);
	http_request rq = {.method = method,
	                   .url = url,
	                   .headers = hdr,
	                   .netns_fd = -1,
	                   .timeout_ns = 5 * RT_SECOND};
	ms_err err;
	return http_do(&rq, resp, &err);
}

static int serve_main(void *arg) {
	srv v;
	start(&v, 0, 0);
	http_response r;
	CHECK(get(&v, "GET", "/metrics", NULL, &r) == 0);
	CHECK(r.status == 200 && !strcmp(r.body, "hello\n"));
	CHECK(!strcmp(http_header(&r, "Connection"), "close"));
	http_response_free(&r);
	const char *acc[] = {"Accept: application/openmetrics-text", NULL};
	CHECK(get(&v, "GET", "/metrics", acc, &r) == 0);
	CHECK(!strcmp(r.body, "application/openmetrics-text"));
	http_response_free(&r);
	CHECK(get(&v, "HEAD", "/metrics", NULL, &r) == 0);
	CHECK(r.status == 200 && r.body_len == 0 &&
	      !strcmp(http_header(&r, "Content-Length"), "6"));
	http_response_free(&r);
	CHECK(get(&v, "GET", "/nope", NULL, &r) == 0 && r.status == 404);
	http_response_free(&r);
	CHECK(get(&v, "POST", "/metrics", NULL, &r) == 0 && r.status == 405);
	CHECK(!strcmp(http_header(&r, "Allow"), "GET, HEAD"));
	http_response_free(&r);
	hs_stop(v.s);
	return 0;
}

TEST(hs_serve) {
	run_rt(2, serve_main, NULL);
}

static int raw_connect(int port) {
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
	struct timeval tv = {3, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* Blocking reads of a raw socket happen on the blocking pool. */
typedef struct {
	int fd;
	char buf[256];
	ssize_t n;
} rd;
static intptr_t read_job(void *arg) {
	rd *r = arg;
	r->n = recv(r->fd, r->buf, sizeof r->buf - 1, 0);
	if (r->n >= 0)
		r->buf[r->n] = 0;
	return 0;
}

static int bounds_main(void *arg) {
	srv v;
	start(&v, 2, 300 * RT_MILLISECOND);
	/* a client that sends half a head and stalls is closed at the timeout */
	int slow = raw_connect(v.port);
	CHECK(send(slow, "GET /metr", 9, 0) == 9);
	int64_t t0 = rt_now();
	rd r = {.fd = slow};
	rt_blocking(read_job, &r);
	CHECKF(r.n == 0, "read %zd", r.n); /* EOF, no answer */
	CHECK(rt_now() - t0 >= 250 * RT_MILLISECOND && rt_now() - t0 < 2 * RT_SECOND);
	close(slow);
	/* two stalled clients fill the cap: a third gets 503 at once */
	int a = raw_connect(v.port), b = raw_connect(v.port);
	rt_sleep(50 * RT_MILLISECOND);
	int c = raw_connect(v.port);
	rd r3 = {.fd = c};
	rt_blocking(read_job, &r3);
	CHECKF(r3.n > 0 && strstr(r3.buf, "503"), "%s", r3.buf);
	close(a), close(b), close(c);
	rt_sleep(100 * RT_MILLISECOND); /* the server sees the two close */
	/* a bad head gets its status and a message */
	int d = raw_connect(v.port);
	CHECK(send(d, "GET / HTTP/3.0\r\n\r\n", 18, 0) == 18);
	rd r4 = {.fd = d};
	rt_blocking(read_job, &r4);
	CHECKF(strstr(r4.buf, "HTTP/1.1 505") && strstr(r4.buf, "only HTTP/1.x"), "%s", r4.buf);
	close(d);
	hs_stop(v.s);
	return 0;
}

TEST(hs_bounds) {
	run_rt(2, bounds_main, NULL);
}
