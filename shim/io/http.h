/*
 * http.h — a small HTTP/1.1 client on the netpoller (prefix http_), for
 * health checks (thousands at once, so each costs one socket, a 4 KiB read
 * buffer and a parked goroutine), webhooks, and scraping Go's pprof
 * endpoints. One request per connection (`Connection: close`) unless the
 * caller gives a pool of idle connections (keep-alive), plain http:// only,
 * written from RFC 9110 and RFC 9112.
 *
 * Call http_do from a goroutine: every wait — connect, write, read — parks
 * on the netpoller under one deadline for the whole exchange, so a server
 * that never answers or trickles bytes (slowloris) costs a parked goroutine
 * and ends at the deadline; the P is never blocked. A hostile server is
 * bounded: the response head (status line, fields, chunk trailers, interim
 * 1xx heads together) may take HTTP_MAX_HEADER_BYTES, a chunk-size line
 * HTTP_MAX_CHUNK_LINE, and the body max_body.
 *
 * Keep-alive. With req->pool, a request goes on an idle connection to the
 * same (namespace, host, port) when the pool has one, and its connection
 * goes back to the pool only when the exchange left it clean: an HTTP/1.1
 * response without `Connection: close`, its body framed (Content-Length,
 * chunked, or none) and read to the end, nothing more sent by the server.
 * A pooled connection the server closed is noticed before the request
 * (nc_pool_get); one it closes as the request goes out fails with nothing
 * received, and the request is then sent once more on a new connection —
 * for an idempotent method, or when the request could not be written.
 *
 * Host names and network namespaces are netconn.h's: IPv4 and IPv6
 * literals ("http://[::1]:8080/") as they are, other names resolved in our
 * own namespace on the blocking pool, and in another network namespace
 * only literals and "localhost".
 */
#ifndef MOONSHIM_HTTP_H
#define MOONSHIM_HTTP_H

#include "base.h"
#include "netconn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_TIMEOUT_DEFAULT_NS (10 * 1000000000LL) /* timeout_ns <= 0 */
#define HTTP_MAX_BODY_DEFAULT   (4u << 20)          /* max_body 0: a pprof heap profile fits */
#define HTTP_MAX_HEADER_BYTES   (64 * 1024)         /* whole response head; over: -EPROTO */
#define HTTP_MAX_CHUNK_LINE     4096                /* chunk size + extensions; over: -EPROTO */

typedef struct http_request {
	const char *method; /* NULL: "GET" */
	/* http://host[:port][/path][?query]; a #fragment is dropped. No
	 * userinfo, no https (-EPROTONOSUPPORT). */
	const char *url;
	/* NULL-terminated "Name: value" strings, or NULL. Host and User-Agent
	 * (default "moonshim") may be replaced; Content-Length,
	 * Transfer-Encoding and Connection are http_do's own (-EINVAL). */
	const char *const *headers;
	/* Sent with a Content-Length when non-NULL, or when the method is
	 * POST, PUT or PATCH (then "Content-Length: 0" if NULL). */
	const void *body;
	size_t body_len;
	int64_t timeout_ns; /* the whole exchange, from resolving to the last
	                     * body byte; <= 0: HTTP_TIMEOUT_DEFAULT_NS */
	/* Body bytes kept; 0: HTTP_MAX_BODY_DEFAULT. A longer body is cut:
	 * the first max_body bytes, truncated = true, still success (a health
	 * check wants the status; a scraper that needs it whole checks the
	 * flag). The connection is closed without reading the rest. */
	size_t max_body;
	/* -1: our network namespace. Else an fd of a network namespace
	 * (/proc/<pid>/ns/net): the socket is created inside it, as
	 * netconn.h's nc_dial does it (a throwaway thread, so no runtime
	 * thread is left in there; needs CAP_SYS_ADMIN over the namespace's
	 * user namespace; a thread start per connection). */
	int netns_fd;
	/* NULL: a new connection, closed after the exchange. Else where idle
	 * connections are taken from and given back (see Keep-alive above). */
	nc_pool *pool;
} http_request;

typedef struct http_response {
	int status;      /* final status (interim 1xx responses are skipped) */
	char reason[64]; /* reason phrase, cut to fit, unprintable bytes as '?' */
	char **headers;  /* "Name: value" (value without surrounding whitespace) */
	size_t nheaders;
	char *body; /* NUL-terminated (not counted in body_len); "" when empty */
	size_t body_len;
	bool truncated;     /* the body was longer than max_body */
	int64_t elapsed_ns; /* the whole call, also set on failure */
} http_response;

/* One exchange. 0 with *resp filled in — whatever the status, a 404 or a
 * 500 is a response, not an error — or -errno with *resp empty (but for
 * elapsed_ns) and a message naming the method, the URL and the stage:
 * -EINVAL (bad URL or header), -EPROTONOSUPPORT (https), -ENOENT or -EAGAIN
 * (the name did not resolve, for good or for now),
 * -ETIMEDOUT (the deadline passed), -ECONNREFUSED and other socket errors,
 * -EPROTO (a malformed or unframeable response, or one cut short). */
int http_do(const http_request *req, http_response *resp, ms_err *err);

/* The value of the first header named `name` (any case), or NULL. */
const char *http_header(const http_response *r, const char *name);

void http_response_free(http_response *r); /* and zeroes it; NULL allowed */

#endif
