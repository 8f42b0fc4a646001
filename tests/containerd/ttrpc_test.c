/* ttrpc_test.c — ttrpc as containerd and the shim see it: a round trip
 * with metadata and errors, 100 calls on one connection answered out of
 * order (Wait pending while Start runs), the protocol's error statuses
 * (unknown method, even stream id, oversized frame, undecodable request),
 * garbage that must not take the server down, a peer of another uid shut
 * out, timeout_nano as the handler's deadline, connection ends seen by the
 * owner and by blocked handlers, our client against a hand-made server
 * checking the bytes it sends, and the real shim given 3 MB ids (small
 * error replies, memory back after them). */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/containerd/ttrpc.h"
#include "containerd/task.pb-c.h"
#include "ttrpc.pb-c.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define MS       1000000LL
#define SVC      "moonshim.test.v1.Test"
#define NOBODY   65534
#define N_CALLS  100
#define HDR_SIZE 10

/* ─── a server with test handlers ────────────────────────────────────── */

typedef struct {
	tt_server *s;
	char path[108];
	int lfd;
	rt_chan *served; /* int: what tt_serve returned */
	rt_chan *gate;   /* closed by Release; Wait handlers park on it */
	rt_chan *closed; /* int: on_close reasons */
	int parked;      /* atomic: handlers parked in Wait or Block */
} fixture;

static int reply_copy(const void *p, size_t n, uint8_t **out, size_t *out_len) {
	if (n) {
		*out = malloc(n);
		memcpy(*out, p, n);
		*out_len = n;
	}
	return TT_OK;
}

static int h_echo(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	return reply_copy(c->payload, c->len, out, out_len);
}

static int h_namespace(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	const char *ns = c->namespace_ ? c->namespace_ : "-";
	return reply_copy(ns, strlen(ns), out, out_len);
}

static int h_fail(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	return tt_fail(msg, TT_NOT_FOUND, "container %.*s not created", (int)c->len, c->payload);
}

/* Like Wait: parked until Release (or the connection ends), then echoes. */
static int h_wait(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	fixture *fx = arg;
	__atomic_add_fetch(&fx->parked, 1, __ATOMIC_SEQ_CST);
	rt_case cs[2] = {{.c = fx->gate, .dir = RT_RECV}, {.c = c->done, .dir = RT_RECV}};
	if (rt_select(cs, 2, RT_FOREVER) == 1)
		return tt_fail(msg, TT_CANCELED, "connection closed");
	return reply_copy(c->payload, c->len, out, out_len);
}

static int h_release(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	rt_chan_close(((fixture *)arg)->gate);
	return TT_OK;
}

/* Parked until the connection ends or the server stops. */
static int h_block(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	fixture *fx = arg;
	__atomic_add_fetch(&fx->parked, 1, __ATOMIC_SEQ_CST);
	rt_chan_recv(c->done, NULL);
	return tt_fail(msg, TT_CANCELED, "connection closed");
}

/* The time left until the deadline, in ns as text; -1 for none. */
static int h_deadline(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%lld",
	                 c->deadline == RT_FOREVER ? -1LL : (long long)(c->deadline - rt_now()));
	return reply_copy(buf, (size_t)n, out, out_len);
}

/* Works until the deadline, as a handler honouring it does. */
static int h_sleep(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	rt_case cs = {.c = c->done, .dir = RT_RECV};
	if (rt_select(&cs, 1, c->deadline) == -ETIMEDOUT)
		return tt_fail(msg, TT_DEADLINE_EXCEEDED, "context deadline exceeded");
	return TT_CANCELED;
}

/* Answers 300 ms late. */
static int h_late(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	rt_sleep(300 * MS);
	return reply_copy(c->payload, c->len, out, out_len);
}

static void on_close(void *arg, int reason) {
	fixture *fx = arg;
	if (rt_chan_len(fx->closed) < rt_chan_cap(fx->closed))
		rt_chan_send(fx->closed, &reason);
}

static void serve_main(void *arg) {
	fixture *fx = arg;
	ms_err err = {0};
	int r = tt_serve(fx->s, fx->lfd, &err);
	if (r)
		fprintf(stderr, "tt_serve: %s\n", err.msg);
	rt_chan_send(fx->served, &r);
}

static int listen_unix(const char *path) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECKF(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind %s: %m", path);
	CHECK(listen(fd, 128) == 0);
	return fd;
}

static void start_server(fixture *fx) {
	static int seq;
	*fx = (fixture){0};
	snprintf(fx->path, sizeof fx->path, "/tmp/moonshim-tt-%d-%d.sock", getpid(), seq++);
	fx->lfd = listen_unix(fx->path);
	fx->served = rt_chan_new(sizeof(int), 1);
	fx->gate = rt_chan_new(1, 0);
	fx->closed = rt_chan_new(sizeof(int), 16);
	CHECK((fx->s = tt_server_new()));
	static const struct {
		const char *method;
		tt_handler h;
	} routes[] = {{"Echo", h_echo},         {"Namespace", h_namespace}, {"Fail", h_fail},
	              {"Wait", h_wait},         {"Release", h_release},     {"Block", h_block},
	              {"Deadline", h_deadline}, {"Sleep", h_sleep},         {"Late", h_late}};
	for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
		CHECK(tt_register(fx->s, SVC, routes[i].method, routes[i].h, fx) == 0);
	CHECK(tt_register(fx->s, SVC, "Echo", h_echo, fx) == -EEXIST);
	tt_server_on_close(fx->s, on_close, fx);
	rt_go(serve_main, fx, "test tt_serve");
}

static void stop_server(fixture *fx) {
	tt_server_stop(fx->s);
	int r = -1;
	rt_chan_recv(fx->served, &r);
	CHECKF(r == 0, "tt_serve returned %d", r);
	tt_server_free(fx->s);
	close(fx->lfd);
	unlink(fx->path);
	rt_chan_free(fx->served);
	rt_chan_free(fx->gate);
	rt_chan_free(fx->closed);
}

static tt_client *dial(const char *path) {
	ms_err err = {0};
	tt_client *c = tt_dial(path, &err);
	CHECKF(c, "%s", err.msg);
	return c;
}

/* A call whose reply must be text; returns the status, text in out. */
static int call_text(tt_client *c, const char *method, const char *req, int64_t timeout, char *text,
                     size_t n, char *msg) {
	uint8_t *out;
	size_t len;
	char m[256];
	int r = tt_call_sync(c, SVC, method, (const uint8_t *)req, strlen(req), NULL, timeout, &out,
	                     &len, msg ? msg : m, sizeof m);
	snprintf(text, n, "%.*s", (int)len, out ? (char *)out : "");
	free(out);
	return r;
}

static void wait_parked(fixture *fx, int n) {
	for (int64_t end = rt_deadline_in(10000 * MS); rt_now() < end; rt_sleep(MS))
		if (__atomic_load_n(&fx->parked, __ATOMIC_SEQ_CST) >= n)
			return;
	CHECKF(0, "%d handlers parked, expected %d", fx->parked, n);
}

/* ─── raw frames, for what our client never sends ────────────────────── */

typedef struct {
	int fd;
	rt_pollfd *pd;
} raw;

static raw raw_connect(const char *path) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	raw r = {.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
	int perr;
	CHECK(r.fd >= 0 && (r.pd = rt_poll_open(r.fd, &perr)));
	CHECK(rt_connect(r.pd, (struct sockaddr *)&sa, sizeof sa, rt_deadline_in(1000 * MS)) == 0);
	return r;
}

static void raw_close(raw *r) {
	rt_poll_close(r->pd);
	close(r->fd);
}

static void header(uint8_t *h, uint32_t len, uint32_t stream, uint8_t type) {
	uint8_t v[HDR_SIZE] = {len >> 24,    len >> 16,   len >> 8, len,  stream >> 24,
	                       stream >> 16, stream >> 8, stream,   type, 0};
	memcpy(h, v, HDR_SIZE);
}

/* A Request frame for SVC/method: malloc'd, *n bytes. */
static uint8_t *request_frame(uint32_t stream, const char *method, const char *payload, size_t *n) {
	Ttrpc__Request rq = TTRPC__REQUEST__INIT;
	rq.service = SVC;
	rq.method = (char *)method;
	rq.payload = (ProtobufCBinaryData){.len = strlen(payload), .data = (uint8_t *)payload};
	size_t len = ttrpc__request__get_packed_size(&rq);
	uint8_t *f = malloc(HDR_SIZE + len);
	ttrpc__request__pack(&rq, f + HDR_SIZE);
	header(f, (uint32_t)len, stream, 1);
	*n = HDR_SIZE + len;
	return f;
}

static void raw_send(raw *r, const void *p, size_t n) {
	CHECK(rt_write(r->pd, p, n, rt_deadline_in(5000 * MS)) == (ssize_t)n);
}

static void raw_request(raw *r, uint32_t stream, const char *method, const char *payload) {
	size_t n;
	uint8_t *f = request_frame(stream, method, payload, &n);
	raw_send(r, f, n);
	free(f);
}

/* n bytes: 1, or 0 at EOF / reset. */
static int read_exact(raw *r, void *buf, size_t n, int64_t deadline) {
	for (size_t got = 0; got < n;) {
		ssize_t k = rt_read(r->pd, (char *)buf + got, n - got, deadline);
		CHECKF(k != -ETIMEDOUT, "no reply in time");
		if (k <= 0)
			return 0;
		got += (size_t)k;
	}
	return 1;
}

typedef struct {
	uint32_t stream;
	int code;
	char msg[256], payload[256];
} response;

/* The next frame, which must be a well-formed Response: 1, or 0 at EOF. */
static int raw_response(raw *r, response *out) {
	uint8_t h[HDR_SIZE];
	int64_t deadline = rt_deadline_in(5000 * MS);
	if (!read_exact(r, h, HDR_SIZE, deadline))
		return 0;
	uint32_t len = (uint32_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
	CHECKF(len <= TT_MAX_FRAME && h[8] == 2 && h[9] == 0, "bad response header: len %u type %d",
	       len, h[8]);
	uint8_t *body = malloc(len + 1);
	CHECK(read_exact(r, body, len, deadline));
	Ttrpc__Response *resp = ttrpc__response__unpack(NULL, len, body);
	CHECK(resp);
	*out = (response){.stream = (uint32_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7]};
	out->code = resp->status ? resp->status->code : 0;
	snprintf(out->msg, sizeof out->msg, "%s", resp->status ? resp->status->message : "");
	snprintf(out->payload, sizeof out->payload, "%.*s", (int)resp->payload.len,
	         resp->payload.data ? (char *)resp->payload.data : "");
	ttrpc__response__free_unpacked(resp, NULL);
	free(body);
	return 1;
}

/* A write to a peer that hung up fails with EPIPE instead of killing the case. */
static void run_tt(int (*fn)(void *)) {
	signal(SIGPIPE, SIG_IGN);
	run_rt(2, fn, NULL);
#ifdef __SANITIZE_ADDRESS__ /* the harness leaves with _exit, which skips LSan */
	CHECKF(__lsan_do_recoverable_leak_check() == 0, "memory leaked");
#endif
}

/* ─── round trip ─────────────────────────────────────────────────────── */

static int round_trip_main(void *arg) {
	fixture fx;
	start_server(&fx);
	tt_client *c = dial(fx.path);
	char text[256], msg[256];
	CHECK(call_text(c, "Echo", "hello", 0, text, sizeof text, NULL) == 0);
	CHECKF(!strcmp(text, "hello"), "echo: %s", text);

	uint8_t *out = (uint8_t *)"x";
	size_t len = 9;
	CHECK(tt_call_sync(c, SVC, "Echo", NULL, 0, NULL, 0, &out, &len, NULL, 0) == 0);
	CHECK(out == NULL && len == 0); /* Empty: a Response of zero bytes */

	const char *const md[] = {"other", "x", TT_NAMESPACE_KEY, "k8s.io", NULL};
	CHECK(tt_call_sync(c, SVC, "Namespace", NULL, 0, md, 0, &out, &len, NULL, 0) == 0);
	CHECKF(len == 6 && !memcmp(out, "k8s.io", 6), "namespace %.*s", (int)len, (char *)out);
	free(out);
	CHECK(call_text(c, "Namespace", "", 0, text, sizeof text, NULL) == 0);
	const char *many[35] = {0}; /* 17 pairs: more than a call carries */
	for (int i = 0; i < 34; i++)
		many[i] = "k";
	CHECK(tt_call_sync(c, SVC, "Echo", NULL, 0, many, 0, NULL, NULL, NULL, 0) == -EINVAL);
	CHECKF(!strcmp(text, "-"), "namespace without metadata: %s", text);

	CHECK(call_text(c, "Fail", "abc", 0, text, sizeof text, msg) == TT_NOT_FOUND);
	CHECKF(!strcmp(msg, "container abc not created") && !text[0], "msg %s", msg);
	tt_client_close(c);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_echo_round_trip_metadata_and_error_status) {
	run_tt(round_trip_main);
}

/* ─── 100 calls on one connection, answered out of order ─────────────── */

typedef struct {
	fixture *fx;
	tt_client *c;
	int i, code, done_before_release;
	char text[32];
	rt_waitgroup *wg;
	int *completed;
} waiter_arg;

static void waiter_main(void *arg) {
	waiter_arg *w = arg;
	char req[32];
	snprintf(req, sizeof req, "call %d", w->i);
	w->code = call_text(w->c, "Wait", req, 0, w->text, sizeof w->text, NULL);
	__atomic_add_fetch(w->completed, 1, __ATOMIC_SEQ_CST);
	rt_wg_done(w->wg);
}

static int concurrent_main(void *arg) {
	fixture fx;
	start_server(&fx);
	tt_client *c = dial(fx.path);
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	int completed = 0;
	waiter_arg w[N_CALLS - 1];
	for (int i = 0; i < N_CALLS - 1; i++) {
		w[i] = (waiter_arg){.fx = &fx, .c = c, .i = i, .wg = &wg, .completed = &completed};
		rt_wg_add(&wg, 1);
		rt_go(waiter_main, &w[i], "test Wait caller");
	}
	/* all 99 are parked in their handlers at once on the one connection */
	wait_parked(&fx, N_CALLS - 1);
	/* none can have been answered: their handlers are parked on the gate */
	CHECKF(__atomic_load_n(&completed, __ATOMIC_SEQ_CST) == 0,
	       "a Wait finished before Release");
	/* so the 100th call is served while the 99 sent before it are pending (a
	 * server answering in order would never get to it). Which replies the
	 * client sees first after that is the scheduler's business: Release
	 * opens the gate before its own reply is written. */
	char text[32];
	CHECK(call_text(c, "Release", "", 0, text, sizeof text, NULL) == 0);
	rt_wg_wait(&wg);
	for (int i = 0; i < N_CALLS - 1; i++) {
		char want[32];
		snprintf(want, sizeof want, "call %d", i);
		CHECKF(w[i].code == 0 && !strcmp(w[i].text, want), "call %d: %d %s", i, w[i].code,
		       w[i].text);
	}
	tt_client_close(c);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_100_concurrent_calls_one_connection_out_of_order) {
	run_tt(concurrent_main);
}

/* ─── protocol errors ────────────────────────────────────────────────── */

static int unknown_main(void *arg) {
	fixture fx;
	start_server(&fx);
	tt_client *c = dial(fx.path);
	char msg[256];
	CHECK(tt_call_sync(c, SVC, "Nope", NULL, 0, NULL, 0, NULL, NULL, msg, sizeof msg) ==
	      TT_UNIMPLEMENTED);
	CHECKF(!strcmp(msg, "method Nope"), "msg %s", msg);
	CHECK(tt_call_sync(c, "nope.Svc", "Echo", NULL, 0, NULL, 0, NULL, NULL, msg, sizeof msg) ==
	      TT_UNIMPLEMENTED);
	CHECKF(!strcmp(msg, "service nope.Svc"), "msg %s", msg);
	tt_client_close(c);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_unknown_service_or_method_unimplemented) {
	run_tt(unknown_main);
}

static int even_main(void *arg) {
	fixture fx;
	start_server(&fx);
	raw r = raw_connect(fx.path);
	response resp;
	raw_request(&r, 2, "Echo", "even");
	CHECK(raw_response(&r, &resp));
	CHECKF(resp.stream == 2 && resp.code == TT_INVALID_ARGUMENT &&
	           !strcmp(resp.msg, "StreamID must be odd"),
	       "stream %u code %d %s", resp.stream, resp.code, resp.msg);
	/* a frame that is no request is ignored: the next answer is stream 5's */
	uint8_t h[HDR_SIZE];
	header(h, 0, 3, 2);
	raw_send(&r, h, sizeof h);
	raw_request(&r, 5, "Echo", "odd");
	CHECK(raw_response(&r, &resp));
	CHECKF(resp.stream == 5 && resp.code == 0 && !strcmp(resp.payload, "odd"), "stream %u %d",
	       resp.stream, resp.code);
	raw_close(&r);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_even_stream_id_invalid_argument) {
	run_tt(even_main);
}

/* The payload length that makes a Request to SVC/Echo exactly `size` bytes. */
static size_t payload_for_request_size(size_t size) {
	Ttrpc__Request rq = TTRPC__REQUEST__INIT;
	rq.service = SVC;
	rq.method = "Echo";
	size_t len = size - 64;
	for (;;) {
		rq.payload.len = len;
		size_t got = ttrpc__request__get_packed_size(&rq);
		if (got == size)
			return len;
		len += size - got;
	}
}

static int oversized_main(void *arg) {
	fixture fx;
	start_server(&fx);
	raw r = raw_connect(fx.path);
	size_t big = TT_MAX_FRAME + 1;
	uint8_t *junk = calloc(1, big);
	uint8_t h[HDR_SIZE];
	header(h, (uint32_t)big, 7, 1);
	raw_send(&r, h, sizeof h);
	raw_send(&r, junk, big); /* the server discards it as it comes */
	response resp;
	CHECK(raw_response(&r, &resp));
	CHECKF(resp.stream == 7 && resp.code == TT_RESOURCE_EXHAUSTED, "stream %u code %d %s",
	       resp.stream, resp.code, resp.msg);
	raw_request(&r, 9, "Echo", "still here");
	CHECK(raw_response(&r, &resp));
	CHECKF(resp.stream == 9 && resp.code == 0 && !strcmp(resp.payload, "still here"),
	       "stream %u code %d", resp.stream, resp.code);
	raw_close(&r);

	/* through the client: a request of exactly the maximum goes and comes
	 * back; one byte more is refused before it is sent */
	tt_client *c = dial(fx.path);
	size_t len = payload_for_request_size(TT_MAX_FRAME);
	memset(junk, 'j', len + 1);
	uint8_t *out;
	size_t out_len;
	CHECK(tt_call_sync(c, SVC, "Echo", junk, len, NULL, 0, &out, &out_len, NULL, 0) == 0);
	CHECK(out_len == len && !memcmp(out, junk, len));
	free(out);
	char msg[128];
	CHECK(tt_call_sync(c, SVC, "Echo", junk, len + 1, NULL, 0, &out, &out_len, msg,
	                   sizeof msg) == -EMSGSIZE);
	CHECK(tt_call_sync(c, SVC, "Echo", junk, 3, NULL, 0, NULL, NULL, NULL, 0) == 0);
	free(junk);
	tt_client_close(c);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_oversized_frame_resource_exhausted_connection_usable) {
	run_tt(oversized_main);
}

/* ─── garbage ─────────────────────────────────────────────────────────── */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void) { /* xorshift64*: the same inputs every run */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

/* One hostile input, `kind` chooses the shape; returns its length. */
static size_t hostile(int kind, uint8_t *buf, size_t cap) {
	size_t n = rnd() % 600;
	for (size_t i = 0; i < cap; i++)
		buf[i] = (uint8_t)rnd();
	switch (kind) {
	case 0: /* random bytes */
		return n;
	case 1: /* a truncated header */
		return 1 + rnd() % (HDR_SIZE - 1);
	case 2: /* a huge length, then a little */
		header(buf, rnd() % 2 ? 0xffffffffu : TT_MAX_FRAME + 1 + rnd() % 1000, 1, 1);
		return HDR_SIZE + n % 100;
	case 3: /* zero-length frames, odd and even */
		header(buf, 0, rnd() | 1, 1);
		header(buf + HDR_SIZE, 0, rnd() & ~1u, 1);
		return 2 * HDR_SIZE;
	default: /* a plausible header, random data */
		header(buf, (uint32_t)n, rnd() | 1, 1);
		return HDR_SIZE + n;
	}
}

static int garbage_main(void *arg) {
	fixture fx;
	start_server(&fx);
	tt_client *c = dial(fx.path);
	uint8_t buf[HDR_SIZE + 700];
	int replies[TT_UNAUTHENTICATED + 1] = {0};
	long rounds = scaled(400);
	for (long i = 0; i < rounds; i++) {
		raw r = raw_connect(fx.path);
		size_t n = hostile((int)(i % 5), buf, sizeof buf);
		if (n)
			raw_send(&r, buf, n);
		shutdown(r.fd, SHUT_WR);
		response resp; /* any answer is a well-formed Response; then EOF */
		while (raw_response(&r, &resp)) {
			CHECKF(resp.code == TT_INVALID_ARGUMENT || resp.code == TT_UNIMPLEMENTED,
			       "round %ld: code %d %s", i, resp.code, resp.msg);
			replies[resp.code]++;
		}
		raw_close(&r);
		if (i % 10 == 0) { /* another connection is served all along */
			char text[32];
			CHECK(call_text(c, "Echo", "alive", 0, text, sizeof text, NULL) == 0);
			CHECK(!strcmp(text, "alive"));
		}
	}
	fprintf(stderr, "%ld inputs: %d InvalidArgument, %d Unimplemented\n", rounds,
	        replies[TT_INVALID_ARGUMENT], replies[TT_UNIMPLEMENTED]);
	CHECK(replies[TT_INVALID_ARGUMENT] > 0 && replies[TT_UNIMPLEMENTED] > 0);

	/* one connection, many well-framed hostile frames in each write (random
	 * type, stream and data): answered or ignored, and a real call after
	 * them is still answered */
	raw r = raw_connect(fx.path);
	static uint8_t burst[64 * 1024];
	for (long round = 0; round < scaled(20); round++) {
		size_t off = 0;
		while (off + HDR_SIZE + 64 < sizeof burst - 128) {
			uint32_t len = rnd() % 64;
			header(burst + off, len, rnd(), (uint8_t)(rnd() % 4));
			for (uint32_t k = 0; k < len; k++)
				burst[off + HDR_SIZE + k] = (uint8_t)rnd();
			off += HDR_SIZE + len;
		}
		size_t n;
		uint8_t *f = request_frame(0x7ffffff1, "Echo", "through", &n);
		memcpy(burst + off, f, n);
		free(f);
		raw_send(&r, burst, off + n);
		response resp;
		do
			CHECK(raw_response(&r, &resp));
		while (resp.stream != 0x7ffffff1);
		CHECKF(resp.code == 0 && !strcmp(resp.payload, "through"), "code %d", resp.code);
	}

	/* data that is no Request: InvalidArgument, the connection kept */
	static const uint8_t bad[] = {0x0a, 0x7f, 'x'}; /* field 1, length past the end */
	header(buf, sizeof bad, 11, 1);
	memcpy(buf + HDR_SIZE, bad, sizeof bad);
	raw_send(&r, buf, HDR_SIZE + sizeof bad);
	response resp;
	CHECK(raw_response(&r, &resp) && resp.stream == 11 && resp.code == TT_INVALID_ARGUMENT);
	/* a zero-length Request has no service */
	header(buf, 0, 13, 1);
	raw_send(&r, buf, HDR_SIZE);
	CHECK(raw_response(&r, &resp) && resp.stream == 13 && resp.code == TT_UNIMPLEMENTED);
	CHECKF(!strcmp(resp.msg, "service "), "msg %s", resp.msg);
	/* frames split across writes, then two frames in one */
	size_t n1, n2;
	uint8_t *f1 = request_frame(15, "Echo", "one", &n1),
	        *f2 = request_frame(17, "Echo", "two", &n2);
	for (size_t i = 0; i < n1; i++) {
		raw_send(&r, f1 + i, 1);
		rt_sleep(MS / 10);
	}
	CHECK(raw_response(&r, &resp) && resp.stream == 15 && !strcmp(resp.payload, "one"));
	uint8_t both[256];
	memcpy(both, f1, n1);
	memcpy(both + n1, f2, n2);
	raw_send(&r, both, n1 + n2);
	int seen = 0;
	for (int k = 0; k < 2; k++) {
		CHECK(raw_response(&r, &resp) && resp.code == 0);
		seen |= resp.stream == 15 ? 1 : resp.stream == 17 ? 2 : 4;
	}
	CHECK(seen == 3);
	free(f1);
	free(f2);
	raw_close(&r);
	tt_client_close(c);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_garbage_answered_or_closed_server_keeps_serving) {
	run_tt(garbage_main);
}

/* ─── a peer of another uid ──────────────────────────────────────────── */

static intptr_t wait_child(void *arg) {
	int st;
	if (waitpid((pid_t)(intptr_t)arg, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int other_uid_main(void *arg) {
	if (geteuid() != 0) { /* setuid needs root */
		fprintf(stderr, "skipped: not root\n");
		return 0;
	}
	fixture fx;
	start_server(&fx);
	CHECK(chmod(fx.path, 0777) == 0);
	size_t n;
	uint8_t *f = request_frame(1, "Echo", "nobody", &n);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", fx.path);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) { /* only plain syscalls here: exit 0 if shut out */
		if (setgid(NOBODY) || setuid(NOBODY))
			_exit(10);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa))
			_exit(11);
		if (write(fd, f, n) < 0 && errno != EPIPE)
			_exit(12);
		char b[64];
		_exit(read(fd, b, sizeof b) <= 0 ? 0 : 13);
	}
	free(f);
	intptr_t st = rt_blocking(wait_child, (void *)(intptr_t)pid);
	CHECKF(st == 0, "the uid %d peer: exit %ld (13: it got an answer)", NOBODY, (long)st);
	tt_client *c = dial(fx.path); /* and we are still served */
	char text[32];
	CHECK(call_text(c, "Echo", "root", 0, text, sizeof text, NULL) == 0);
	tt_client_close(c);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_peer_with_other_uid_rejected) {
	run_tt(other_uid_main);
}

/* ─── deadlines and timeouts ─────────────────────────────────────────── */

static int deadline_main(void *arg) {
	fixture fx;
	start_server(&fx);
	tt_client *c = dial(fx.path);
	char text[64], msg[128];
	CHECK(call_text(c, "Deadline", "", 2000 * MS, text, sizeof text, NULL) == 0);
	long long left = atoll(text);
	CHECKF(left > 1000 * MS && left <= 2000 * MS, "deadline in %lld ns", left);
	CHECK(call_text(c, "Deadline", "", 0, text, sizeof text, NULL) == 0);
	CHECKF(!strcmp(text, "-1"), "no timeout: %s", text);

	/* a handler honouring it answers DeadlineExceeded, and that arrives */
	int64_t t0 = rt_now();
	CHECK(call_text(c, "Sleep", "", 100 * MS, text, sizeof text, msg) == TT_DEADLINE_EXCEEDED);
	int64_t took = rt_now() - t0;
	CHECKF(took >= 100 * MS && took < 1000 * MS, "took %lld ms", (long long)(took / MS));

	/* a reply later than the timeout: -ETIMEDOUT, and the late reply is
	 * dropped, not given to the next call */
	CHECK(call_text(c, "Late", "late", 50 * MS, text, sizeof text, msg) == -ETIMEDOUT);
	CHECK(call_text(c, "Echo", "next", 0, text, sizeof text, NULL) == 0);
	CHECK(!strcmp(text, "next"));
	rt_sleep(400 * MS); /* the late reply has come and gone */
	CHECK(call_text(c, "Echo", "after", 0, text, sizeof text, NULL) == 0);
	CHECK(!strcmp(text, "after"));
	tt_client_close(c);
	stop_server(&fx);
	return 0;
}

TEST(ttrpc_timeout_nano_is_the_handlers_deadline) {
	run_tt(deadline_main);
}

/* ─── connection ends ─────────────────────────────────────────────────── */

typedef struct {
	tt_client *c;
	int code;
	rt_waitgroup wg;
} block_arg;

static void block_main(void *arg) {
	block_arg *b = arg;
	b->code = tt_call_sync(b->c, SVC, "Block", NULL, 0, NULL, 0, NULL, NULL, NULL, 0);
	rt_wg_done(&b->wg);
}

static int ends_main(void *arg) {
	fixture fx;
	start_server(&fx);
	/* the peer closes: the owner is told (reason 0), the handler's done
	 * closes, and the caller still waiting fails with -EPIPE */
	block_arg b = {.c = dial(fx.path), .wg = RT_WAITGROUP_INIT};
	rt_wg_add(&b.wg, 1);
	rt_go(block_main, &b, "test Block caller");
	wait_parked(&fx, 1);
	tt_client_close(b.c);
	rt_wg_wait(&b.wg);
	CHECKF(b.code == -EPIPE, "call during close: %d", b.code);
	int reason = 1;
	rt_chan_recv(fx.closed, &reason);
	CHECKF(reason == 0, "reason %d", reason);

	/* the server stops under a blocked call: the handler sees done and
	 * its reply still reaches the caller (as a Shutdown reply must), the
	 * owner hears -ECANCELED, tt_serve returns 0, then the socket closes */
	b.c = dial(fx.path);
	rt_wg_add(&b.wg, 1);
	rt_go(block_main, &b, "test Block caller");
	wait_parked(&fx, 2);
	tt_server_stop(fx.s);
	rt_wg_wait(&b.wg);
	CHECKF(b.code == TT_CANCELED, "call during stop: %d", b.code);
	rt_chan_recv(fx.closed, &reason);
	CHECKF(reason == -ECANCELED, "reason %d", reason);
	char msg[128];
	CHECK(tt_call_sync(b.c, SVC, "Echo", NULL, 0, NULL, 0, NULL, NULL, msg, sizeof msg) ==
	      -EPIPE);
	tt_client_close(b.c);
	stop_server(&fx); /* a second stop is harmless */

	ms_err err = {0};
	CHECK(tt_dial("/tmp/moonshim-tt-nonexistent.sock", &err) == NULL);
	CHECKF(err.code == -ENOENT && strstr(err.msg, "nonexistent"), "%d %s", err.code, err.msg);
	return 0;
}

TEST(ttrpc_connection_close_seen_by_owner_handlers_and_callers) {
	run_tt(ends_main);
}

/* ─── our client against a hand-made server ──────────────────────────── */

typedef struct {
	int lfd;
	rt_chan *done; /* int: 0 when every check passed */
} fake_arg;

/* Read a request frame; check its header; decode it. */
static Ttrpc__Request *fake_recv(raw *r, uint32_t *stream, uint8_t *first) {
	uint8_t h[HDR_SIZE];
	if (!read_exact(r, h, HDR_SIZE, rt_deadline_in(5000 * MS)))
		return NULL;
	uint32_t len = (uint32_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
	*stream = (uint32_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
	CHECKF(h[0] == 0 && h[8] == 1 && h[9] == 0, "request header type %d flags %d", h[8], h[9]);
	uint8_t *body = malloc(len + 1);
	CHECK(read_exact(r, body, len, rt_deadline_in(5000 * MS)));
	if (first)
		memcpy(first, body, 2);
	Ttrpc__Request *rq = ttrpc__request__unpack(NULL, len, body);
	free(body);
	CHECK(rq);
	return rq;
}

static void fake_send(raw *r, uint32_t stream, uint8_t type, int code, const char *payload) {
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Ttrpc__Status st = TTRPC__STATUS__INIT;
	if (code) {
		st.code = code;
		st.message = "failed precondition";
		resp.status = &st;
	}
	resp.payload = (ProtobufCBinaryData){.len = strlen(payload), .data = (uint8_t *)payload};
	uint8_t f[512];
	size_t len = ttrpc__response__pack(&resp, f + HDR_SIZE);
	header(f, (uint32_t)len, stream, type);
	raw_send(r, f, HDR_SIZE + len);
}

static void fake_server(void *arg) {
	fake_arg *fa = arg;
	int perr;
	CHECK(fcntl(fa->lfd, F_SETFL, O_NONBLOCK) == 0);
	rt_pollfd *lpd = rt_poll_open(fa->lfd, &perr);
	CHECK(lpd);
	raw r = {.fd = rt_accept(lpd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC,
	                         rt_deadline_in(5000 * MS))};
	rt_poll_close(lpd);
	CHECK(r.fd >= 0 && (r.pd = rt_poll_open(r.fd, &perr)));
	/* first call alone: the bytes containerd's Forward gets */
	uint32_t stream;
	uint8_t first[2];
	Ttrpc__Request *rq = fake_recv(&r, &stream, first);
	CHECKF(stream == 1 && first[0] == 0x0a && first[1] == strlen(SVC), "stream %u", stream);
	CHECK(!strcmp(rq->service, SVC) && !strcmp(rq->method, "Forward"));
	CHECKF(rq->timeout_nano == 5000 * MS, "timeout_nano %lld", (long long)rq->timeout_nano);
	CHECK(rq->n_metadata == 1 && !strcmp(rq->metadata[0]->key, TT_NAMESPACE_KEY) &&
	      !strcmp(rq->metadata[0]->value, "default"));
	ttrpc__request__free_unpacked(rq, NULL);
	fake_send(&r, 99, 2, 0, "nobody asked"); /* no caller: dropped */
	fake_send(&r, 1, 3, 0, "data frame");    /* not a response: ignored */
	fake_send(&r, 1, 2, 0, "");
	/* three at once: ids 3, 5, 7; answered in reverse, 5 with an error */
	Ttrpc__Request *rqs[3];
	uint32_t ids[3];
	for (int i = 0; i < 3; i++)
		rqs[i] = fake_recv(&r, &ids[i], NULL);
	CHECKF(ids[0] == 3 && ids[1] == 5 && ids[2] == 7, "ids %u %u %u", ids[0], ids[1], ids[2]);
	for (int i = 2; i >= 0; i--) {
		char p[64];
		snprintf(p, sizeof p, "%.*s", (int)rqs[i]->payload.len,
		         (char *)rqs[i]->payload.data);
		fake_send(&r, ids[i], 2, ids[i] == 5 ? TT_FAILED_PRECONDITION : 0, p);
		ttrpc__request__free_unpacked(rqs[i], NULL);
	}
	raw_close(&r); /* then the connection goes away */
	int ok = 0;
	rt_chan_send(fa->done, &ok);
}

typedef struct {
	tt_client *c;
	char req[16], text[64], msg[64];
	int code;
	rt_waitgroup *wg;
} caller_arg;

static void caller_main(void *arg) {
	caller_arg *a = arg;
	a->code = call_text(a->c, "Echo", a->req, 0, a->text, sizeof a->text, a->msg);
	rt_wg_done(a->wg);
}

static int client_main(void *arg) {
	char path[108];
	snprintf(path, sizeof path, "/tmp/moonshim-tt-%d-fake.sock", getpid());
	fake_arg fa = {.lfd = listen_unix(path), .done = rt_chan_new(sizeof(int), 1)};
	rt_go(fake_server, &fa, "test fake server");
	tt_client *c = dial(path);
	const char *const md[] = {TT_NAMESPACE_KEY, "default", NULL};
	uint8_t *out;
	size_t len;
	CHECK(tt_call_sync(c, SVC, "Forward", (const uint8_t *)"ev", 2, md, 5000 * MS, &out, &len,
	                   NULL, 0) == 0);
	CHECK(out == NULL);
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	caller_arg a[3];
	for (int i = 0; i < 3; i++) {
		a[i] = (caller_arg){.c = c, .wg = &wg};
		snprintf(a[i].req, sizeof a[i].req, "req %d", i);
		rt_wg_add(&wg, 1);
		rt_go(caller_main, &a[i], "test caller");
		rt_sleep(5 * MS); /* in this order: ids 3, 5, 7 */
	}
	rt_wg_wait(&wg);
	for (int i = 0; i < 3; i++)
		if (i == 1)
			CHECKF(a[i].code == TT_FAILED_PRECONDITION && !a[i].text[0] &&
			           !strcmp(a[i].msg, "failed precondition"),
			       "call %d: %d %s", i, a[i].code, a[i].msg);
		else
			CHECKF(a[i].code == 0 && !strcmp(a[i].text, a[i].req), "call %d: %d %s", i,
			       a[i].code, a[i].text);
	int ok = -1;
	rt_chan_recv(fa.done, &ok);
	CHECK(ok == 0);
	char msg[64];
	CHECK(tt_call_sync(c, SVC, "Echo", NULL, 0, NULL, 0, NULL, NULL, msg, sizeof msg) ==
	      -EPIPE);
	CHECKF(strstr(msg, "pipe"), "msg %s", msg);
	tt_client_close(c);
	close(fa.lfd);
	unlink(path);
	rt_chan_free(fa.done);
	return 0;
}

TEST(ttrpc_client_stream_ids_bytes_and_replies_by_stream) {
	run_tt(client_main);
}

/* ─── the shim against hostile ids ──────────────────────────────────── */

#define TASK_SVC      "containerd.task.v2.Task"
#define HUGE_ID       (3u << 20) /* a 3 MB id: under the 4 MiB frame cap, so it is unpacked */
#define HUGE_ROUNDS   4
#define RSS_SLACK_KB  1024 /* what the shim may keep after them */
#define REPLY_MAX     (TT_MSG_MAX + 64)
#define SHIM_EXIT_MAX (5000 * MS)

/* build/containerd-shim-moon-v2 (the native one, also for the ASan tests:
 * their RSS would say nothing), or $MOONSHIM_SHIM. */
static const char *shim_bin(char *path, size_t n) {
	const char *env = getenv("MOONSHIM_SHIM");
	if (env)
		return env;
	char self[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(k > 0);
	self[k] = 0;
	*strrchr(self, '/') = 0; /* build/tests or build/asan/tests */
	snprintf(path, n, "%s/%s/containerd-shim-moon-v2", self,
	         strstr(self, "/asan/") ? "../.." : "..");
	CHECKF(access(path, X_OK) == 0, "no shim at %s (set MOONSHIM_SHIM)", path);
	return path;
}

static long rss_kb(pid_t pid) {
	char p[64], line[256];
	snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "re");
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

typedef struct {
	int code;
	uint32_t len; /* the Response frame's length */
	char msg[128];
} task_reply;

/* One Task call on a raw connection: the payload is a message whose field
 * 1 is `id` (every Task request's id), field 2 `second` if not NULL (exec
 * ids, bundles). */
static task_reply task_call(raw *r, uint32_t stream, const char *method, const char *id,
                            const char *second) {
	Containerd__Task__V2__ExecProcessRequest rq =
	    CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
	rq.id = (char *)id;
	if (second)
		rq.exec_id = (char *)second;
	size_t plen = containerd__task__v2__exec_process_request__get_packed_size(&rq);
	uint8_t *payload = malloc(plen ? plen : 1);
	containerd__task__v2__exec_process_request__pack(&rq, payload);
	Ttrpc__Request req = TTRPC__REQUEST__INIT;
	req.service = TASK_SVC;
	req.method = (char *)method;
	req.payload = (ProtobufCBinaryData){.len = plen, .data = payload};
	size_t len = ttrpc__request__get_packed_size(&req);
	uint8_t *f = malloc(HDR_SIZE + len);
	ttrpc__request__pack(&req, f + HDR_SIZE);
	header(f, (uint32_t)len, stream, 1);
	raw_send(r, f, HDR_SIZE + len);
	free(f);
	free(payload);
	task_reply out = {.code = -1};
	uint8_t h[HDR_SIZE];
	int64_t deadline = rt_deadline_in(10000 * MS);
	if (!read_exact(r, h, HDR_SIZE, deadline))
		return out;
	out.len = (uint32_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
	CHECKF(out.len <= TT_MAX_FRAME, "a reply of %u bytes", out.len);
	uint8_t *body = malloc(out.len + 1);
	CHECK(read_exact(r, body, out.len, deadline));
	Ttrpc__Response *resp = ttrpc__response__unpack(NULL, out.len, body);
	CHECK(resp);
	out.code = resp->status ? resp->status->code : 0;
	snprintf(out.msg, sizeof out.msg, "%s", resp->status ? resp->status->message : "");
	ttrpc__response__free_unpacked(resp, NULL);
	free(body);
	return out;
}

static int hostile_ids_main(void *arg) {
	char bin[PATH_MAX + 64], dir[] = "/tmp/moonshim-tt-shim.XXXXXX", cmd[3 * PATH_MAX];
	const char *shim = shim_bin(bin, sizeof bin);
	CHECK(mkdtemp(dir));
	snprintf(cmd, sizeof cmd,
	         "cd %s && %s -namespace tt-test-%d -address %s/containerd.sock "
	         "-publish-binary /bin/true -id huge start",
	         dir, shim, (int)getpid(), dir);
	FILE *p = popen(cmd, "r");
	char addr[PATH_MAX] = "";
	CHECK(p && fgets(addr, sizeof addr, p));
	pclose(p);
	addr[strcspn(addr, "\n")] = 0;
	CHECKF(!strncmp(addr, "unix://", 7), "start printed \"%s\"", addr);
	raw r = raw_connect(addr + 7);
	uint32_t stream = 1;
	/* the daemon's pid: Connect's shim_pid */
	tt_client *c = dial(addr + 7);
	uint8_t *out;
	size_t out_len;
	CHECK(tt_call_sync(c, TASK_SVC, "Connect", NULL, 0, NULL, 0, &out, &out_len, NULL, 0) == 0);
	Containerd__Task__V2__ConnectResponse *cr =
	    containerd__task__v2__connect_response__unpack(NULL, out_len, out);
	CHECK(cr && cr->shim_pid > 0);
	pid_t pid = (pid_t)cr->shim_pid;
	containerd__task__v2__connect_response__free_unpacked(cr, NULL);
	free(out);
	tt_client_close(c);

	for (int i = 0; i < HUGE_ROUNDS; i++) /* warm: the small-call baseline */
		CHECK(task_call(&r, stream += 2, "State", "small", NULL).code == TT_NOT_FOUND);
	long base = rss_kb(pid);

	char *huge = malloc(HUGE_ID + 1);
	memset(huge, 'x', HUGE_ID);
	huge[HUGE_ID] = 0;
	for (int i = 0; i < HUGE_ROUNDS; i++) {
		static const char *const methods[] = {"State", "Kill", "Wait", "Delete"};
		task_reply t = task_call(&r, stream += 2, methods[i % 4], huge, NULL);
		CHECKF(t.code == TT_NOT_FOUND && t.len <= REPLY_MAX,
		       "%s: code %d, a reply of %u bytes (%.60s)", methods[i % 4], t.code, t.len,
		       t.msg);
	}
	/* ids that would not fit where they are kept are refused, not cut */
	task_reply t = task_call(&r, stream += 2, "Create", huge, NULL);
	CHECKF(t.code == TT_INVALID_ARGUMENT && t.len <= REPLY_MAX && strstr(t.msg, "container id"),
	       "Create: code %d, %u bytes: %.100s", t.code, t.len, t.msg);
	char long_id[300];
	memset(long_id, 'e', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = 0;
	t = task_call(&r, stream += 2, "Exec", "c1", long_id);
	CHECKF(t.code == TT_INVALID_ARGUMENT && strstr(t.msg, "exec id"), "Exec: code %d: %.100s",
	       t.code, t.msg);
	free(huge);
	for (int i = 0; i < HUGE_ROUNDS; i++)
		CHECK(task_call(&r, stream += 2, "State", "small", NULL).code == TT_NOT_FOUND);
	long after = rss_kb(pid);
	fprintf(stderr, "    shim VmRSS: %ld kB before, %ld kB after %d 3 MB ids\n", base, after,
	        HUGE_ROUNDS);
	CHECKF(base > 0 && after > 0 && after <= base + RSS_SLACK_KB,
	       "shim VmRSS %ld kB before, %ld kB after", base, after);

	CHECK(task_call(&r, stream += 2, "Shutdown", "huge", NULL).code == TT_OK);
	raw_close(&r);
	int64_t end = rt_deadline_in(SHIM_EXIT_MAX);
	while (kill(pid, 0) == 0 && rt_now() < end)
		rt_sleep(10 * MS);
	CHECKF(kill(pid, 0) != 0, "the shim (pid %d) did not exit after Shutdown", (int)pid);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return 0;
}

TEST(ttrpc_shim_hostile_ids_small_replies_memory_returned) {
	run_tt(hostile_ids_main);
}
