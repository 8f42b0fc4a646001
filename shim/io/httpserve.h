/*
 * httpserve.h — a small HTTP/1.1 server on the netpoller (prefix hs_), for
 * `moonshim metrics`: one goroutine per connection, one request per
 * connection (`Connection: close`), GET and HEAD answered by a handler,
 * written from RFC 9110 and RFC 9112.
 *
 * Bounded against a hostile or stuck client: the request head (request
 * line and fields) may take HS_HEAD_MAX bytes (over: 431), must arrive
 * within the read timeout (else the connection is closed), the response
 * must be taken within the write timeout, and at most conn_max
 * connections are served at once (one more is answered 503 without
 * waiting and closed). A request body is never read: the connection
 * closes after the response. The accepting goroutine and every connection
 * park on the netpoller; nothing blocks a P.
 */
#ifndef MOONSHIM_HTTPSERVE_H
#define MOONSHIM_HTTPSERVE_H

#include "base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HS_HEAD_MAX         8192 /* request line + fields: Prometheus sends ~300 bytes */
#define HS_METHOD_MAX       16
#define HS_ACCEPT_MAX       1024 /* the Accept field kept (several joined by ", ") */
#define HS_READ_TIMEOUT_NS  (5 * 1000000000LL)
#define HS_WRITE_TIMEOUT_NS (10 * 1000000000LL)
#define HS_CONN_MAX_DEFAULT 32

/* ─── Parsing (pure: no I/O, fuzzed by tests/fuzz/httpreq_fuzz.c) ─────── */

typedef struct hs_request {
	char method[HS_METHOD_MAX + 1];
	char path[HS_HEAD_MAX];     /* the target up to '?' (origin-form) */
	char accept[HS_ACCEPT_MAX]; /* "" when absent; cut to fit */
	int minor;                  /* HTTP/1.minor */
} hs_request;

/* Parse the request head at the start of buf[0..len). 0: complete, *r
 * filled, *head_len its length with the blank line. -EAGAIN: not complete
 * yet (read more). Else the status to answer, negated: -400 (malformed:
 * the message names what), -431 (no end within HS_HEAD_MAX), -505 (not
 * HTTP/1.x). */
int hs_parse(const char *buf, size_t len, hs_request *r, size_t *head_len, ms_err *err);

/* ─── Serving ─────────────────────────────────────────────────────────── */

typedef struct hs_response {
	int status;               /* 0: 200 */
	const char *content_type; /* NULL: text/plain; charset=utf-8 */
	const char *allow;        /* an Allow field (405), or NULL */
	char *body;               /* malloc'd, freed by the server; may be NULL */
	size_t len;
} hs_response;

/* Called on the connection's goroutine for every well-formed request; it
 * fills *out (the server writes no body for HEAD, but the length). */
typedef void (*hs_handler)(const hs_request *r, hs_response *out, void *arg);

typedef struct hs_opts {
	int conn_max;                            /* 0: HS_CONN_MAX_DEFAULT */
	int64_t read_ns;                         /* 0: HS_READ_TIMEOUT_NS */
	int64_t write_ns;                        /* 0: HS_WRITE_TIMEOUT_NS */
	void (*log)(const char *msg, void *arg); /* a bad request, an accept error; may be NULL */
	void *log_arg;
} hs_opts;

typedef struct hs_server hs_server;

/* Listen on "ADDR:PORT" (an IPv4 literal, or [IPv6]:PORT; port 0 picks a
 * free one): the socket's fd, or -errno with err naming the address. */
int hs_listen(const char *addr, ms_err *err);
/* The port fd is bound to (after port 0), or -errno. */
int hs_port(int fd);
/* From a goroutine: serve on the listening fd (taken over) until hs_stop.
 * NULL with err on failure (fd is then closed). */
hs_server *hs_start(int fd, hs_handler fn, void *arg, const hs_opts *o, ms_err *err);
/* Stop accepting, wait for the connections being served, close, free. */
void hs_stop(hs_server *s);

/* The reason phrase of a status this server sends ("OK", "Not Found"...). */
const char *hs_reason(int status);

#endif
