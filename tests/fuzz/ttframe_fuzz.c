/*
 * ttframe_fuzz.c — ttrpc's server as containerd's end of the socket meets
 * it: the 10-byte frame header, the frame reader (shim/ttrpc.c read_frame,
 * fill, discard), the per-connection reader loop and dispatch, and the
 * handlers they start. The input is the raw byte stream a peer writes on
 * one connection; the server is the real one (tt_serve on a listening unix
 * socket, a reader goroutine per connection), with a test service
 * (moonshim.fuzz.v1.Test: Echo, Fail, Wait) and the real task service
 * (shim/task.c, no container: every method but Create answers from an
 * empty task list; Create, which would mount and spawn, is taken first by
 * a handler that refuses it).
 *
 * The runtime runs for the whole session on a thread of its own (as in
 * luajson_fuzz.c); its main goroutine serves and never stops. Per input,
 * libFuzzer's thread connects, writes the input, shuts its write side and
 * reads every answer until the server closes the connection.
 *
 * Must hold: no crash, leak, undefined behaviour or hang; the connection
 * ends cleanly (EOF, no reset; the owner's on_close hears reason 0); the
 * answer is a sequence of whole frames, each with length ≤ TT_MAX_FRAME,
 * type response, flags 0, data that decodes as a Response with a status
 * code in gRPC's range; and the answers are exactly one per request frame
 * the input holds whole (an input parsed here as the reader should),
 * matched by stream id and, where this file knows the outcome, by code
 * (even stream: InvalidArgument; not a Request: InvalidArgument; unknown
 * service or method: Unimplemented; Echo: OK with the payload echoed;
 * Fail: its code; Wait: Canceled once the connection ends). Every input
 * runs on a new connection of the same server, so each one also checks
 * that the server kept serving after the one before.
 *
 * Not reached: a frame over TT_MAX_FRAME answered after its data was
 * discarded (the data, 4 MiB, exceeds any -max_len); one cut short only
 * checks that nothing answers it. tests/containerd/ttrpc_test.c covers it.
 */
#define _GNU_SOURCE
#include "fuzz.h"
#include "rt.h"
#include "task.h"
#include "ttrpc.h"
#include "ttrpc.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HDR_SIZE       10 /* u32 length, u32 stream id, u8 type, u8 flags */
#define TYPE_REQUEST   1
#define TYPE_RESPONSE  2
#define TEST_SVC       "moonshim.fuzz.v1.Test"
#define TASK_SVC       "containerd.task.v2.Task"
#define ANY_CODE       (-1) /* an expected answer whose code this file does not model */
#define LISTEN_BACKLOG 16
#define READ_CHUNK     4096 /* the answer buffer's first size; doubles */

static struct {
	struct sockaddr_un addr; /* abstract: nothing left on disk */
	socklen_t addrlen;
	int lfd;
	sem_t ready;
	tt_server *srv; /* globals: LeakSanitizer does not scan goroutine stacks */
	task_service *tasks;
	int closed, bad_close; /* atomic: on_close calls, and those with a reason */
	pthread_t thread;
} fz;

/* ─── the server side (goroutines) ──────────────────────────────────── */

static int h_echo(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	if (c->len) {
		if (!(*out = malloc(c->len)))
			abort();
		memcpy(*out, c->payload, c->len);
		*out_len = c->len;
	}
	return TT_OK;
}

/* The first payload byte as the status (out of gRPC's range: Unknown). */
static int fail_code(const uint8_t *p, size_t n) {
	return n ? (int)p[0] - 1 : -1;
}

static int h_fail(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	int code = fail_code(c->payload, c->len);
	if (code == TT_OK) /* a payload alongside: what an OK reply carries */
		return h_echo(c, arg, out, out_len, msg);
	return tt_fail(msg, code, "fail %d", code);
}

/* Parked until the connection ends, as Wait on a running process. */
static int h_wait(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	rt_chan_recv(c->done, NULL);
	return tt_fail(msg, TT_CANCELED, "connection closed");
}

static int h_refuse(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	return tt_fail(msg, TT_PERMISSION_DENIED, "Create: not while fuzzing");
}

static void on_close(void *arg, int reason) {
	__atomic_add_fetch(&fz.closed, 1, __ATOMIC_SEQ_CST);
	if (reason)
		__atomic_add_fetch(&fz.bad_close, 1, __ATOMIC_SEQ_CST);
}

static int serve(void *arg) {
	if (!(fz.srv = tt_server_new()))
		abort();
	if (tt_register(fz.srv, TEST_SVC, "Echo", h_echo, NULL) ||
	    tt_register(fz.srv, TEST_SVC, "Fail", h_fail, NULL) ||
	    tt_register(fz.srv, TEST_SVC, "Wait", h_wait, NULL) ||
	    tt_register(fz.srv, TASK_SVC, "Create", h_refuse, NULL)) /* before the real one */
		abort();
	task_opts o = {.ns = "fuzz"};
	if (!(fz.tasks = task_service_new(fz.srv, &o)))
		abort();
	tt_server_on_close(fz.srv, on_close, NULL);
	sem_post(&fz.ready);
	ms_err err = {0};
	int r = tt_serve(fz.srv, fz.lfd, &err); /* never stopped */
	fprintf(stderr, "tt_serve returned %d: %s\n", r, err.msg);
	abort();
}

static void *runtime_thread(void *arg) {
	rt_config cfg = {.procs = 1, .quiet_leaks = true};
	rt_main(&cfg, serve, NULL);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	signal(SIGPIPE, SIG_IGN);
	fz.addr.sun_family = AF_UNIX;
	int n = snprintf(fz.addr.sun_path + 1, sizeof fz.addr.sun_path - 1,
	                 "moonshim-ttframe-fuzz-%d", (int)getpid());
	fz.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	fz.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fz.lfd < 0 || bind(fz.lfd, (struct sockaddr *)&fz.addr, fz.addrlen) ||
	    listen(fz.lfd, LISTEN_BACKLOG) || sem_init(&fz.ready, 0, 0))
		abort();
	/* libFuzzer's timers (SIGALRM) go to its own thread, not the runtime's */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (pthread_create(&fz.thread, NULL, runtime_thread, NULL))
		abort();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (sem_wait(&fz.ready))
		;
	return 0;
}

/* ─── what the input should be answered with ────────────────────────── */

typedef struct {
	uint32_t stream;
	int code;               /* or ANY_CODE */
	const uint8_t *payload; /* Echo's (inside the input), else NULL */
	size_t len;
	bool matched;
} expect;

static uint32_t get_be32(const uint8_t *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One request frame's expected answer. */
static expect expect_for(uint32_t stream, const uint8_t *data, size_t len) {
	expect e = {.stream = stream, .code = TT_INVALID_ARGUMENT};
	if (stream % 2 == 0)
		return e;
	Ttrpc__Request *rq = ttrpc__request__unpack(NULL, len, data);
	if (!rq)
		return e;
	const uint8_t *pl = rq->payload.data;
	size_t pn = rq->payload.len;
	const uint8_t *in_input = pn ? memmem(data, len, pl, pn) : NULL; /* outlives rq */
	e.code = TT_UNIMPLEMENTED;
	if (!strcmp(rq->service, TASK_SVC)) {
		e.code = ANY_CODE; /* the real handlers: not modelled here */
	} else if (!strcmp(rq->service, TEST_SVC)) {
		if (!strcmp(rq->method, "Echo")) {
			e.code = TT_OK, e.payload = in_input, e.len = pn;
			FUZZ_CHECK(!pn || in_input);
		} else if (!strcmp(rq->method, "Fail")) {
			e.code = fail_code(pl, pn);
			if (e.code < TT_OK || e.code > TT_UNAUTHENTICATED)
				e.code = TT_UNKNOWN;
			if (e.code == TT_OK) /* OK: the payload echoed */
				e.payload = in_input, e.len = pn;
		} else if (!strcmp(rq->method, "Wait")) {
			e.code = TT_CANCELED;
		}
	}
	ttrpc__request__free_unpacked(rq, NULL);
	return e;
}

/* The input read as the reader should read it: the answers it must get. */
static size_t model(const uint8_t *in, size_t n, expect *ex) {
	size_t k = 0;
	while (n >= HDR_SIZE) {
		uint32_t len = get_be32(in), stream = get_be32(in + 4);
		uint8_t type = in[8];
		in += HDR_SIZE, n -= HDR_SIZE;
		if (n < len) /* cut short: EOF, no answer (too big or not) */
			break;
		if (len > TT_MAX_FRAME)
			ex[k++] = (expect){.stream = stream, .code = TT_RESOURCE_EXHAUSTED};
		else if (type == TYPE_REQUEST)
			ex[k++] = expect_for(stream, in, len);
		in += len, n -= len;
	}
	return k;
}

/* ─── the client side (libFuzzer's thread) ──────────────────────────── */

typedef struct {
	uint8_t *buf;
	size_t len, cap;
} bytes;

/* Write the input, shut the write side, read until EOF; the answer. */
static bytes exchange(const uint8_t *data, size_t size) {
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(connect(fd, (struct sockaddr *)&fz.addr, fz.addrlen) == 0);
	FUZZ_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	bytes b = {0};
	size_t sent = 0;
	bool shut = false;
	if (!size)
		shut = !shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT)};
		FUZZ_CHECK(poll(&p, 1, -1) == 1 || errno == EINTR);
		if (!shut && (p.revents & POLLOUT)) {
			ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
			FUZZ_CHECK(w > 0 || errno == EAGAIN); /* the server reads to EOF */
			sent += w > 0 ? (size_t)w : 0;
			if (sent == size) {
				FUZZ_CHECK(shutdown(fd, SHUT_WR) == 0);
				shut = true;
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			if (b.len == b.cap) {
				b.cap = b.cap ? b.cap * 2 : READ_CHUNK;
				if (!(b.buf = realloc(b.buf, b.cap)))
					abort();
			}
			ssize_t r = read(fd, b.buf + b.len, b.cap - b.len);
			if (r < 0 && errno == EAGAIN)
				continue;
			FUZZ_CHECK(r >= 0); /* no ECONNRESET: the connection ends cleanly */
			if (r == 0)
				break;
			b.len += (size_t)r;
		}
	}
	FUZZ_CHECK(shut); /* the server did not close before reading it all */
	close(fd);
	return b;
}

/* Match one answer to the expected one with its stream: the modelled
 * outcome first (identical ones are interchangeable), else an ANY_CODE. */
static void match(expect *ex, size_t n, uint32_t stream, const Ttrpc__Response *rs) {
	int code = rs->status ? rs->status->code : TT_OK;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			expect *e = &ex[i];
			if (e->matched || e->stream != stream || (e->code == ANY_CODE) != pass)
				continue;
			if (!pass && (e->code != code ||
			              (code == TT_OK &&
			               (rs->payload.len != e->len ||
			                (e->len && memcmp(rs->payload.data, e->payload, e->len))))))
				continue;
			e->matched = true;
			return;
		}
	fprintf(stderr, "unexpected answer: stream %u code %d\n", stream, code);
	FUZZ_CHECK(!"an answer matches a request frame of the input");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	expect *ex = calloc(size / HDR_SIZE + 1, sizeof *ex);
	if (!ex)
		abort();
	size_t nex = model(data, size, ex);
	int closed = __atomic_load_n(&fz.closed, __ATOMIC_SEQ_CST);
	bytes b = exchange(data, size);
	/* the reader told the owner before the last reference closed the socket */
	FUZZ_CHECK(__atomic_load_n(&fz.closed, __ATOMIC_SEQ_CST) == closed + 1);
	FUZZ_CHECK(__atomic_load_n(&fz.bad_close, __ATOMIC_SEQ_CST) == 0);
	size_t at = 0, answers = 0;
	while (at < b.len) {
		FUZZ_CHECK(b.len - at >= HDR_SIZE); /* whole headers */
		const uint8_t *h = b.buf + at;
		uint32_t len = get_be32(h), stream = get_be32(h + 4);
		FUZZ_CHECK(len <= TT_MAX_FRAME);
		FUZZ_CHECK(h[8] == TYPE_RESPONSE && h[9] == 0);
		FUZZ_CHECK(b.len - at - HDR_SIZE >= len); /* whole frames */
		Ttrpc__Response *rs = ttrpc__response__unpack(NULL, len, h + HDR_SIZE);
		FUZZ_CHECK(rs != NULL);
		if (rs->status) {
			FUZZ_CHECK(rs->status->code > TT_OK &&
			           rs->status->code <= TT_UNAUTHENTICATED);
			FUZZ_CHECK(rs->payload.len == 0);
		}
		match(ex, nex, stream, rs);
		ttrpc__response__free_unpacked(rs, NULL);
		answers++;
		at += HDR_SIZE + len;
	}
	FUZZ_CHECK(answers == nex); /* every request frame answered once */
	free(b.buf);
	free(ex);
	return 0;
}
