/*
 * http.c — the HTTP/1.1 client of http.h: URL parsing, the request (its
 * connection comes from netconn.c), and a response reader that frames the body as
 * RFC 9112 §6.3 says: no body for HEAD, 1xx, 204 and 304, else chunked
 * when it is the final transfer coding, else Content-Length, else to EOF.
 *
 * With a pool, the connection may come from it and go back to it
 * (reusable()), and a reused connection that turns out closed is replaced
 * once (retry_fresh()).
 *
 * One exchange is one `xfer`: everything lives in it or in the response,
 * and every error goes out through fail(), which names the method, the URL
 * and the stage. Parsers that find a protocol error record why in x->why
 * and return -EPROTO. Nothing here holds errno across a call that parks.
 */
#define _GNU_SOURCE
#include "http.h"

#include "netconn.h"
#include "rt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#define AUTHORITY_MAX (NC_HOST_MAX + 8) /* "[" host "]:" port */
#define RBUF_INIT     4096              /* the read buffer's first size on the heap */
#define RBUF_INLINE                                                                                \
	1024                      /* ... and before it, in the xfer: a health                      \
	                           * check's whole response, usually */
#define REQ_INLINE    1024        /* a request head longer goes on the heap */
#define CHUNK_HEX_MAX 15          /* hex digits of a chunk size: < 2^60, no overflow */
#define LENGTH_DIGITS 18          /* Content-Length digits: < 10^18, no overflow */
#define BODY_PREALLOC (64 * 1024) /* most trusted of a Content-Length up front */
#define URL_SHOWN     200         /* URL bytes quoted in an error message */

typedef struct {
	const http_request *req;
	const char *method, *stage, *why; /* stage: what failed; why: -EPROTO's detail */
	bool head;                        /* the method is HEAD: no body comes back */
	bool idempotent; /* RFC 9110 §9.2.2: sending it twice does what sending it once does */
	bool sized;      /* POST, PUT, PATCH: a Content-Length even without a body */
	ms_err *err;
	http_response *resp;
	int64_t deadline;
	/* the URL, split */
	char host[NC_HOST_MAX + 1], authority[AUTHORITY_MAX + 1], port[6];
	const char *target; /* path and query, without '#...'; "" means "/" */
	int target_len;
	bool target_slash; /* it starts with '/' (else "/" goes first) */
	/* the connection and what has been read but not parsed: buf[start, end) */
	nc_conn conn;
	char *buf; /* inline_buf, or the heap once a response outgrew it */
	size_t cap, start, end;
	char *inline_buf; /* RBUF_INLINE bytes on http_do's stack (not zeroed with the xfer) */
	size_t head_left; /* of HTTP_MAX_HEADER_BYTES, for heads and trailers */
	size_t body_cap, max_body;
	/* keep-alive */
	bool reused;      /* the connection came from req->pool */
	bool fresh_only;  /* the retry: dial, do not take from the pool */
	bool send_failed; /* the peer was gone before the request all went out */
	bool framed;      /* the body ended by its framing (or had none), not at EOF */
	int minor;        /* HTTP/1.minor of the final response */
	size_t received;  /* bytes read on this connection */
} xfer;

static int fail(xfer *x, int code) {
	const char *what = x->why ? x->why : strerror(-code);
	if (code == -ETIMEDOUT)
		what = "timed out (the exchange's deadline passed)";
	return ms_fail(x->err, code, "http %s %.*s: %s: %s", x->method, URL_SHOWN,
	               x->req->url ? x->req->url : "(null)", x->stage, what);
}

static int invalid(xfer *x, const char *why) {
	x->why = why;
	return -EINVAL;
}

static int proto(xfer *x, const char *why) {
	x->why = why;
	return -EPROTO;
}

static bool is_tchar(int c) { /* RFC 9110 §5.6.2 token characters */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return n > 0;
}

/* ─── URL ─────────────────────────────────────────────────────────────── */

static int parse_url(xfer *x, const char *url) {
	x->stage = "parsing the URL";
	if (!url)
		return invalid(x, "no URL");
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) /* would corrupt the request line */
			return invalid(x, "a space or a control character in the URL");
	if (!strncasecmp(url, "https://", 8))
		return x->why = "https is not supported", -EPROTONOSUPPORT;
	if (strncasecmp(url, "http://", 7))
		return invalid(x, "not an http:// URL");
	const char *a = url + 7, *end = a + strcspn(a, "/?#"), *h = a, *hend, *colon;
	size_t alen = (size_t)(end - a);
	if (!alen || alen > AUTHORITY_MAX || memchr(a, '@', alen))
		return invalid(x, "no host, a host too long, or userinfo in the URL");
	memcpy(x->authority, a, alen);
	x->authority[alen] = 0;
	if (*a == '[') { /* IPv6 literal */
		if (!(hend = memchr(a, ']', alen)))
			return invalid(x, "no ']' after an IPv6 address");
		h = a + 1;
		colon = hend + 1 < end ? hend + 1 : NULL;
		if (colon && *colon != ':')
			return invalid(x, "junk after an IPv6 address");
	} else {
		colon = memchr(a, ':', alen);
		hend = colon ? colon : end;
	}
	size_t hlen = (size_t)(hend - h), plen = colon ? (size_t)(end - colon - 1) : 0;
	if (!hlen || hlen > NC_HOST_MAX || plen >= sizeof x->port)
		return invalid(x, "bad host or port");
	memcpy(x->host, h, hlen);
	x->host[hlen] = 0;
	strcpy(x->port, "80"); /* also for an empty port, "host:" (RFC 3986 §3.2.3) */
	if (plen) {
		memcpy(x->port, colon + 1, plen);
		x->port[plen] = 0;
		long v = strspn(x->port, "0123456789") == plen ? atol(x->port) : 0;
		if (v < 1 || v > 65535)
			return invalid(x, "bad port");
	}
	x->target = end;
	x->target_len = (int)strcspn(end, "#");
	x->target_slash = *end == '/';
	return 0;
}

/* ─── Dialing ─────────────────────────────────────────────────────────── */

/* RFC 9110 §9.2.2: sending it twice does what sending it once does. */
static bool idempotent(const char *method) {
	static const char *const methods[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
	for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
		if (!strcmp(method, methods[i]))
			return true;
	return false;
}

static int dial(xfer *x) {
	/* an idempotent request is resent on a fresh connection when a reused
	 * one turns out closed (retry_fresh), so the pool may skip its peek */
	if (x->req->pool && !x->fresh_only &&
	    nc_pool_get(x->req->pool, x->host, x->port, x->req->netns_fd, x->idempotent,
	                &x->conn)) {
		x->reused = true;
		return 0;
	}
	nc_why why;
	int r = nc_dial(&x->conn, x->host, x->port, x->req->netns_fd, x->deadline, &why);
	if (r) {
		x->stage = why.stage;
		x->why = why.why;
	}
	return r;
}

/* ─── Request ─────────────────────────────────────────────────────────── */

static bool header_named(const char *h, const char *name) {
	size_t n = strlen(name);
	return !strncasecmp(h, name, n) && h[n] == ':';
}

/* The request head, written at out (when non-NULL) as it is measured:
 * its length. Checked by build_request first. */
static size_t write_head(const xfer *x, char *out, bool own_host, bool own_ua, const char *clen) {
	size_t n = 0;
#define PUT(s, k) ((out ? memcpy(out + n, (s), (k)) : NULL), n += (k))
#define PUTS(s)   PUT((s), strlen(s))
	PUTS(x->method);
	PUT(" /", x->target_slash ? 1 : 2);
	PUT(x->target, (size_t)x->target_len);
	PUTS(" HTTP/1.1\r\n");
	if (!own_host) {
		PUTS("Host: ");
		PUTS(x->authority);
		PUTS("\r\n");
	}
	if (!own_ua)
		PUTS("User-Agent: moonshim\r\n");
	for (const char *const *h = x->req->headers; h && *h; h++) {
		PUTS(*h);
		PUTS("\r\n");
	}
	if (clen) {
		PUTS("Content-Length: ");
		PUTS(clen);
		PUTS("\r\n");
	}
	PUTS(x->req->pool ? "\r\n" : "Connection: close\r\n\r\n"); /* 1.1 keeps it open */
#undef PUTS
#undef PUT
	return n;
}

/* The request head into *out: `inline_buf` (REQ_INLINE bytes) when it
 * fits, else the heap. */
static int build_request(xfer *x, char *inline_buf, char **out, size_t *len) {
	x->stage = "building the request";
	bool own_host = false, own_ua = false;
	for (const char *const *h = x->req->headers; h && *h; h++) {
		const char *colon = strchr(*h, ':');
		if (!colon || !is_token(*h, (size_t)(colon - *h)) || strpbrk(*h, "\r\n"))
			return invalid(x, "a request header is not \"Name: value\" on one line");
		if (header_named(*h, "Content-Length") || header_named(*h, "Transfer-Encoding") ||
		    header_named(*h, "Connection"))
			return invalid(x, "Content-Length, Transfer-Encoding and Connection "
			                  "are http_do's own");
		own_host |= header_named(*h, "Host");
		own_ua |= header_named(*h, "User-Agent");
	}
	if (!is_token(x->method, strlen(x->method)))
		return invalid(x, "the method is not a token");
	char clen[24];
	bool sized = x->req->body || x->sized;
	if (sized)
		snprintf(clen, sizeof clen, "%zu", x->req->body ? x->req->body_len : 0);
	*len = write_head(x, NULL, own_host, own_ua, sized ? clen : NULL);
	*out = *len <= REQ_INLINE ? inline_buf : malloc(*len);
	if (!*out)
		return -ENOMEM;
	write_head(x, *out, own_host, own_ua, sized ? clen : NULL);
	return 0;
}

/* ─── Reading ─────────────────────────────────────────────────────────── */

/* Read more into the buffer, growing it up to `limit` bytes: >0, 0 at EOF,
 * or -errno. */
static ssize_t fill(xfer *x, size_t limit) {
	if (x->start == x->end)
		x->start = x->end = 0;
	if (x->end == x->cap && x->start) {
		memmove(x->buf, x->buf + x->start, x->end - x->start);
		x->end -= x->start;
		x->start = 0;
	}
	if (x->end == x->cap) {
		size_t cap = x->cap < RBUF_INIT ? RBUF_INIT : x->cap * 2;
		cap = cap < limit ? cap : limit;
		bool on_heap = x->buf != x->inline_buf;
		char *p = cap <= x->cap ? NULL : on_heap ? realloc(x->buf, cap) : malloc(cap);
		if (!p)
			return -ENOMEM;
		if (!on_heap)
			memcpy(p, x->buf, x->end);
		x->buf = p;
		x->cap = cap;
	}
	ssize_t k = nc_read(&x->conn, x->buf + x->end, x->cap - x->end, x->deadline);
	if (k > 0)
		x->received += (size_t)k;
	return k;
}

/* The next line, its CRLF (or bare LF, RFC 9112 §2.2) cut off and NUL
 * put in its place; it may take *budget bytes, which it uses up. 1, 0 at
 * EOF, -EPROTO for a line over budget (`toolong`) or with NUL or a bare CR. */
static int get_line(xfer *x, size_t *budget, const char *toolong, char **line, size_t *len) {
	size_t scanned = 0;
	for (;;) {
		char *s = x->buf + x->start;
		char *nl = memchr(s + scanned, '\n', x->end - x->start - scanned);
		if (nl) {
			size_t n = (size_t)(nl - s);
			if (n + 1 > *budget)
				return proto(x, toolong);
			*budget -= n + 1;
			x->start += n + 1;
			*nl = 0;
			if (n && s[n - 1] == '\r')
				s[--n] = 0;
			if (memchr(s, '\r', n) || memchr(s, 0, n))
				return proto(x, "a bare CR or a NUL in the response head");
			*line = s;
			*len = n;
			return 1;
		}
		scanned = x->end - x->start;
		if (scanned >= *budget)
			return proto(x, toolong);
		ssize_t k = fill(x, *budget + RBUF_INIT);
		if (k <= 0)
			return (int)k;
		x->end += (size_t)k;
	}
}

/* Up to `max` buffered bytes (reading if none): their count, 0 at EOF. */
static ssize_t take(xfer *x, size_t max, const char **p) {
	if (x->start == x->end) {
		char *big;
		if (x->buf == x->inline_buf && max > x->cap && (big = malloc(RBUF_INIT))) {
			x->buf = big; /* a long body: read it in bigger pieces */
			x->cap = RBUF_INIT;
			x->start = x->end = 0;
		}
		ssize_t k = fill(x, x->cap);
		if (k <= 0)
			return k;
		x->end += (size_t)k;
	}
	size_t n = x->end - x->start < max ? x->end - x->start : max;
	*p = x->buf + x->start;
	x->start += n;
	return (ssize_t)n;
}

/* ─── Response head ───────────────────────────────────────────────────── */

static int parse_status(xfer *x, const char *l, size_t n) {
	const char *d = l + 9;
	if (n < 12 || memcmp(l, "HTTP/1.", 7) || l[7] < '0' || l[7] > '9' || l[8] != ' ' ||
	    strspn(d, "0123456789") < 3 || (n > 12 && l[12] != ' '))
		return proto(x, "malformed status line");
	http_response *r = x->resp;
	x->minor = l[7] - '0';
	r->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	if (r->status < 100 || r->status > 599)
		return proto(x, "status code out of range");
	size_t i = 0;
	for (const char *p = n > 12 ? l + 13 : ""; *p && i < sizeof r->reason - 1; p++)
		r->reason[i++] = (*p >= ' ' && *p < 0x7f) || *p == '\t' ? *p : '?';
	r->reason[i] = 0;
	return 0;
}

static char *trim(char *s, char **end) { /* optional whitespace off both ends */
	while (*s == ' ' || *s == '\t')
		s++;
	while (*end > s && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
		(*end)--;
	**end = 0;
	return s;
}

static int add_header(xfer *x, char *l, size_t n) {
	http_response *r = x->resp;
	char *end = l + n, *colon = memchr(l, ':', n), *s;
	if (*l == ' ' || *l == '\t') { /* obs-fold: joined with a space (RFC 9112 §5.2) */
		if (!r->nheaders)
			return proto(x, "a continuation line before any header");
		char *v = trim(l, &end), *prev = r->headers[r->nheaders - 1];
		size_t pl = strlen(prev), vl = (size_t)(end - v);
		if (!(s = realloc(prev, pl + 1 + vl + 1)))
			return -ENOMEM;
		s[pl] = ' ';
		memcpy(s + pl + 1, v, vl + 1);
		r->headers[r->nheaders - 1] = s;
		return 0;
	}
	if (!colon || !is_token(l, (size_t)(colon - l))) /* no space before ':' (§5.1) */
		return proto(x, "malformed header line");
	char *v = trim(colon + 1, &end);
	size_t nl = (size_t)(colon - l), vl = (size_t)(end - v);
	if (!(s = malloc(nl + 2 + vl + 1)))
		return -ENOMEM;
	memcpy(s, l, nl);
	memcpy(s + nl, ": ", 2);
	memcpy(s + nl + 2, v, vl + 1);
	size_t n8 = r->nheaders;
	if (!n8 || (n8 >= 8 && !(n8 & (n8 - 1)))) { /* room for 8, then doubled */
		char **h = realloc(r->headers, (r->nheaders ? r->nheaders * 2 : 8) * sizeof *h);
		if (!h) {
			free(s);
			return -ENOMEM;
		}
		r->headers = h;
	}
	r->headers[r->nheaders++] = s;
	return 0;
}

static void drop_headers(http_response *r) {
	for (size_t i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
}

/* Status line and fields of the final response; interim 1xx heads are
 * skipped, all of them drawing on one HTTP_MAX_HEADER_BYTES budget. */
static int read_head(xfer *x) {
	x->stage = "reading the response head";
	size_t *budget = &x->head_left;
	_Static_assert(HTTP_MAX_HEADER_BYTES == 64 * 1024, "the message below says 64 KiB");
	const char *toolong = "response head over 64 KiB";
	for (bool first = true;; first = false) {
		char *l;
		size_t n;
		int r = get_line(x, budget, toolong, &l, &n);
		if (r <= 0)
			return r ? r
			         : proto(x, first ? "connection closed without a response"
			                          : "connection closed in the response head");
		if ((r = parse_status(x, l, n)))
			return r;
		while ((r = get_line(x, budget, toolong, &l, &n)) > 0 && n)
			if ((r = add_header(x, l, n)))
				return r;
		if (r <= 0)
			return r ? r : proto(x, "connection closed in the response head");
		if (x->resp->status == 101)
			return proto(x, "101 Switching Protocols, which was not asked for");
		if (x->resp->status >= 200)
			return 0;
		drop_headers(x->resp); /* 100 Continue, 103 Early Hints, ... */
	}
}

/* ─── Body ────────────────────────────────────────────────────────────── */

/* Keep n more bytes, up to max_body: 1 to go on, 0 once truncated, -ENOMEM. */
static int body_add(xfer *x, const char *p, size_t n) {
	http_response *r = x->resp;
	if (n > x->max_body - r->body_len) {
		n = x->max_body - r->body_len;
		r->truncated = true;
	}
	if (r->body_len + n + 1 > x->body_cap) {
		size_t cap = x->body_cap * 2 > RBUF_INIT ? x->body_cap * 2 : RBUF_INIT;
		cap = cap < r->body_len + n + 1 ? r->body_len + n + 1 : cap;
		cap = cap > x->max_body + 1 ? x->max_body + 1 : cap;
		char *b = realloc(r->body, cap);
		if (!b)
			return -ENOMEM;
		r->body = b;
		x->body_cap = cap;
	}
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	r->body[r->body_len] = 0;
	return r->truncated ? 0 : 1;
}

/* Exactly `len` bytes; the connection ending sooner is -EPROTO. */
static int body_sized(xfer *x, uint64_t len) {
	if (len && !x->body_cap) { /* trust a Content-Length only so far */
		size_t pre = len < BODY_PREALLOC ? (size_t)len + 1 : BODY_PREALLOC;
		pre = pre > x->max_body + 1 ? x->max_body + 1 : pre;
		if ((x->resp->body = malloc(pre)))
			x->body_cap = pre;
	}
	while (len) {
		const char *p;
		ssize_t k = take(x, len < SIZE_MAX ? (size_t)len : SIZE_MAX, &p);
		if (k <= 0)
			return k ? (int)k : proto(x, "connection closed before the body's end");
		len -= (uint64_t)k;
		int r = body_add(x, p, (size_t)k);
		if (r <= 0)
			return r;
	}
	return 1;
}

static int body_to_eof(xfer *x) {
	const char *p;
	ssize_t k;
	int r = 1;
	while (r > 0 && (k = take(x, SIZE_MAX, &p)) != 0)
		r = k < 0 ? (int)k : body_add(x, p, (size_t)k);
	return r < 0 ? r : 0;
}

/* RFC 9112 §7.1: hex size, extensions ignored, data, CRLF; after the last
 * (size 0) chunk, trailer fields up to an empty line, read and dropped. */
static int body_chunked(xfer *x) {
	char *l;
	size_t n, budget;
	int r;
	for (;;) {
		budget = HTTP_MAX_CHUNK_LINE;
		if ((r = get_line(x, &budget, "chunk-size line too long", &l, &n)) <= 0)
			return r ? r : proto(x, "connection closed before the last chunk");
		size_t digits = strspn(l, "0123456789abcdefABCDEF"), ws = strspn(l + digits, " \t");
		if (!digits || digits > CHUNK_HEX_MAX || (l[digits + ws] && l[digits + ws] != ';'))
			return proto(x, "bad chunk size");
		uint64_t size = strtoull(l, NULL, 16);
		if (!size)
			break;
		if ((r = body_sized(x, size)) <= 0)
			return r;
		budget = 2;
		if ((r = get_line(x, &budget, "no CRLF after chunk data", &l, &n)) <= 0 || n)
			return r < 0 ? r : proto(x, "no CRLF after chunk data");
	}
	while ((r = get_line(x, &x->head_left, "trailer fields too long", &l, &n)) > 0 && n)
		;
	return r < 0 ? r : r ? 0 : proto(x, "connection closed in the trailer fields");
}

/* The last Transfer-Encoding's last coding is chunked (§6.3 rule 4). */
static bool chunked_last(const char *te) {
	const char *c = strrchr(te, ',');
	c = c ? c + 1 : te;
	c += strspn(c, " \t");
	return !strncasecmp(c, "chunked", 7) && !c[7 + strspn(c + 7, " \t")];
}

/* Every Content-Length value (fields and comma lists) must agree: the
 * length, -1 for none, or -EPROTO. */
static int64_t content_length(xfer *x) {
	int64_t len = -1;
	const http_response *r = x->resp;
	for (size_t i = 0; i < r->nheaders; i++) {
		if (!header_named(r->headers[i], "Content-Length"))
			continue;
		for (const char *p = r->headers[i] + strlen("Content-Length: "); *p;) {
			p += strspn(p, " \t,");
			size_t d = strspn(p, "0123456789");
			if (!*p)
				break;
			if (!d || d > LENGTH_DIGITS || (p[d] && !strchr(" \t,", p[d])))
				return proto(x, "malformed Content-Length");
			int64_t v = strtoll(p, NULL, 10);
			if (len >= 0 && v != len)
				return proto(x, "conflicting Content-Length values");
			len = v;
			p += d;
		}
	}
	return len;
}

static int read_body(xfer *x) {
	x->stage = "reading the body";
	int status = x->resp->status;
	x->framed = true;
	if (x->head || status == 204 || status == 304)
		return 0;
	const char *te = NULL;
	for (size_t i = 0; i < x->resp->nheaders; i++)
		if (header_named(x->resp->headers[i], "Transfer-Encoding"))
			te = x->resp->headers[i] + strlen("Transfer-Encoding: ");
	int64_t len = te ? -1 : content_length(x); /* Transfer-Encoding overrides it */
	if (len < -1)
		return (int)len;
	x->framed = te ? chunked_last(te) : len >= 0;
	if (te && x->framed)
		return body_chunked(x);
	if (!x->framed) /* an unknown coding, or no length: the body ends at EOF */
		return body_to_eof(x);
	int r = body_sized(x, (uint64_t)len);
	return r < 0 ? r : 0;
}

/* ─── The exchange ────────────────────────────────────────────────────── */

static int exchange(xfer *x) {
	char inline_head[REQ_INLINE], *head = NULL;
	size_t head_len = 0;
	int r = parse_url(x, x->req->url);
	if (!r)
		r = build_request(x, inline_head, &head, &head_len);
	if (!r)
		r = dial(x);
	/* A server may answer and close before taking the whole body (413):
	 * its response is still the answer. */
	int sent = 0;
	if (!r) {
		x->stage = "sending the request";
		struct iovec iov[2] = {{head, head_len}, {(void *)x->req->body, x->req->body_len}};
		r = nc_send_all(x->conn.pd, iov, x->req->body ? 2 : 1, x->deadline);
		if (r == -EPIPE || r == -ECONNRESET)
			sent = r, r = 0, x->send_failed = true;
	}
	if (head != inline_head)
		free(head);
	if (r)
		return r;
	x->buf = x->inline_buf;
	x->cap = RBUF_INLINE;
	if ((r = read_head(x)) || (r = read_body(x))) {
		if (!sent)
			return r;
		x->stage = "sending the request";
		x->why = NULL;
		return sent;
	}
	if (!x->resp->body && !(x->resp->body = calloc(1, 1)))
		return -ENOMEM;
	return 0;
}

/* ─── Keep-alive ──────────────────────────────────────────────────────── */

/* Does the comma-separated list v hold token t (any case)? */
static bool has_token(const char *v, const char *t) {
	size_t n = strlen(t);
	for (const char *p = v; *p; p += strcspn(p, ",")) {
		p += strspn(p, ", \t");
		if (!strncasecmp(p, t, n) && (!p[n] || strchr(", \t", p[n])))
			return true;
	}
	return false;
}

/* May the connection carry another request? Only when nothing of this
 * exchange is left on it in either direction and the server meant to keep
 * it (RFC 9112 §9.3: HTTP/1.1 persists unless "close"; a 1.0 response does
 * not unless it says keep-alive, which we do not ask for). */
static bool reusable(const xfer *x) {
	const http_response *r = x->resp;
	if (!x->req->pool || !x->framed || r->truncated || x->minor < 1 || x->start != x->end ||
	    x->send_failed)
		return false;
	for (size_t i = 0; i < r->nheaders; i++)
		if (header_named(r->headers[i], "Connection") &&
		    has_token(r->headers[i] + strlen("Connection: "), "close"))
			return false;
	return true;
}

/* A reused connection the server had closed as the request went out: not
 * a byte came back. Send it again on a new connection when that cannot do
 * the request twice: an idempotent method (RFC 9110 §9.2.2), or a request
 * the closed socket refused (-EPIPE, -ECONNRESET on sending). */
static bool retry_fresh(const xfer *x, int r) {
	if (!x->reused || x->received || (r != -EPIPE && r != -ECONNRESET && r != -EPROTO))
		return false;
	return x->idempotent || x->send_failed;
}

static void free_buf(xfer *x) {
	if (x->buf != x->inline_buf)
		free(x->buf);
	x->buf = NULL;
}

/* Back to the state before the first exchange, but for dialing afresh. */
static void restart(xfer *x) {
	nc_close(&x->conn);
	free_buf(x);
	http_response_free(x->resp);
	x->cap = x->start = x->end = x->body_cap = x->received = 0;
	x->head_left = HTTP_MAX_HEADER_BYTES;
	x->reused = x->send_failed = x->framed = false;
	x->fresh_only = true;
	x->why = NULL;
}

/* ─── The call ────────────────────────────────────────────────────────── */

int http_do(const http_request *req, http_response *resp, ms_err *err) {
	int64_t t0 = rt_now();
	char rbuf[RBUF_INLINE];
	const char *method = req->method ? req->method : "GET";
	xfer x = {
	    .inline_buf = rbuf,
	    .req = req,
	    .method = method,
	    .head = !strcmp(method, "HEAD"),
	    .idempotent = idempotent(method),
	    .sized = !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH"),
	    .err = err,
	    .resp = resp,
	    .deadline =
	        rt_deadline_at(t0, req->timeout_ns > 0 ? req->timeout_ns : HTTP_TIMEOUT_DEFAULT_NS),
	    .conn = {.fd = -1},
	    .head_left = HTTP_MAX_HEADER_BYTES,
	    .max_body = req->max_body ? req->max_body : HTTP_MAX_BODY_DEFAULT,
	};
	if (x.max_body > SIZE_MAX / 2) /* max_body + 1 must not wrap */
		x.max_body = SIZE_MAX / 2;
	memset(resp, 0, sizeof *resp);
	int r = exchange(&x);
	if (r && retry_fresh(&x, r)) {
		restart(&x);
		r = exchange(&x);
	}
	if (!r && reusable(&x))
		nc_pool_put(req->pool, x.host, x.port, req->netns_fd, &x.conn);
	nc_close(&x.conn);
	free_buf(&x);
	if (r) {
		http_response_free(resp);
		fail(&x, r);
	}
	resp->elapsed_ns = rt_now() - t0;
	return r;
}

const char *http_header(const http_response *r, const char *name) {
	for (size_t i = 0; i < r->nheaders; i++)
		if (header_named(r->headers[i], name))
			return r->headers[i] + strlen(name) + 2;
	return NULL;
}

void http_response_free(http_response *r) {
	if (!r)
		return;
	drop_headers(r);
	free(r->body);
	memset(r, 0, sizeof *r);
}
