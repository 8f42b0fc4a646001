/*
 * http_fuzz.c — the HTTP/1.1 response reader of shim/io/http.c (status line,
 * fields, obs-fold, interim 1xx heads, Content-Length, chunked bodies and
 * trailers, bodies to EOF, max_body) through http_do, on whatever bytes a
 * hostile server sends.
 *
 * The socket is the one thing replaced: this file defines netconn.h's
 * functions (so netconn.o is not linked), and nc_read hands out the input
 * in pieces, then EOF — a connection per input would cost the fuzzer
 * 100x its speed and add nothing to the parser. The first input byte
 * picks the request: bit 0 HEAD, bit 1 a keep-alive pool (reusable() is
 * asked), bits 2-3 max_body (0: default, 1, 16, 1000), bits 4-7 the read
 * size (1..16 bytes, 16 as 4096), so lines and chunk sizes split across
 * reads.
 *
 * Must hold: no crash, leak or undefined behaviour; success means a final
 * status in 200..599 (1xx skipped, 101 refused), a reason that is
 * printable and terminated, "Name: value" headers, a NUL-terminated body
 * of at most max_body bytes (truncated only when cut to exactly that),
 * and never more bytes read than were sent; failure means an empty
 * response and a message.
 */
#include "fuzz.h"
#include "http.h"
#include "netconn.h"

#include <errno.h>

static struct {
	const uint8_t *p;
	size_t left, piece, served;
} sock;

int nc_dial(nc_conn *c, const char *host, const char *port, int netns_fd, int64_t deadline,
            nc_why *why) {
	c->fd = 1000; /* never used as an fd: nc_read and nc_close below are ours */
	c->pd = NULL;
	c->drained = false;
	return 0;
}

int nc_send_all(rt_pollfd *pd, struct iovec *iov, int n, int64_t deadline) {
	return 0;
}

ssize_t nc_read(nc_conn *c, void *buf, size_t n, int64_t deadline) {
	FUZZ_CHECK(c->fd == 1000 && n > 0);
	size_t k = n < sock.piece ? n : sock.piece;
	k = k < sock.left ? k : sock.left;
	memcpy(buf, sock.p, k);
	sock.p += k;
	sock.left -= k;
	sock.served += k;
	return (ssize_t)k;
}

void nc_close(nc_conn *c) {
	c->fd = -1;
}

bool nc_pool_get(nc_pool *p, const char *host, const char *port, int netns_fd, bool retryable,
                 nc_conn *c) {
	c->fd = -1;
	return false;
}

void nc_pool_put(nc_pool *p, const char *host, const char *port, int netns_fd, nc_conn *c) {
	c->fd = -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (!size)
		return 0;
	static const size_t max_bodies[] = {0, 1, 16, 1000};
	uint8_t mode = data[0];
	size_t piece = (size_t)(mode >> 4) + 1;
	sock.piece = piece == 16 ? 4096 : piece;
	sock.p = data + 1;
	sock.left = size - 1;
	sock.served = 0;
	static int dummy_pool; /* only compared with NULL: the pool functions are ours */
	http_request req = {
	    .method = mode & 1 ? "HEAD" : "GET",
	    .url = "http://127.0.0.1:8080/debug/pprof/goroutine?debug=1",
	    .max_body = max_bodies[(mode >> 2) & 3],
	    .netns_fd = -1,
	    .pool = mode & 2 ? (nc_pool *)&dummy_pool : NULL,
	};
	size_t max_body = req.max_body ? req.max_body : HTTP_MAX_BODY_DEFAULT;
	http_response resp;
	ms_err err = {0};
	int r = http_do(&req, &resp, &err);
	FUZZ_CHECK(sock.served <= size - 1);
	if (r) {
		FUZZ_CHECK(r < 0 && err.msg[0]);
		FUZZ_CHECK(!resp.headers && !resp.nheaders && !resp.body && !resp.body_len);
	} else {
		FUZZ_CHECK(resp.status >= 200 && resp.status <= 599);
		FUZZ_CHECK(fuzz_terminated(resp.reason, sizeof resp.reason));
		for (const char *c = resp.reason; *c; c++)
			FUZZ_CHECK((*c >= ' ' && *c < 0x7f) || *c == '\t');
		for (size_t i = 0; i < resp.nheaders; i++)
			FUZZ_CHECK(strstr(resp.headers[i], ": ") != NULL);
		FUZZ_CHECK(resp.body && resp.body[resp.body_len] == 0);
		FUZZ_CHECK(resp.body_len <= max_body);
		FUZZ_CHECK(!resp.truncated || resp.body_len == max_body);
		FUZZ_CHECK(!(mode & 1) || resp.body_len == 0); /* HEAD: no body */
	}
	http_response_free(&resp);
	return 0;
}
