/*
 * httpserve.c — httpserve.h's server: the request-head parser (pure, over
 * a byte buffer), the listening socket, the accepting goroutine and one
 * goroutine per connection.
 * Invariants: a connection never holds more than HS_HEAD_MAX bytes of a
 * request, never waits past its deadlines, and is counted in `active`
 * from accept to close; hs_stop returns only when every connection
 * goroutine and the acceptor have ended.
 */
#define _GNU_SOURCE
#include "httpserve.h"

#include "netconn.h"
#include "rt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG  128
#define LINGER_NS       (1000000000LL) /* reading what a client still sends, after the response */
#define LINGER_MAX      (64 * 1024)
#define ACCEPT_PAUSE_NS (100 * 1000000LL) /* out of fds: try again after this */
#define STATUS_LINE_MAX 512

/* ─── Parsing ─────────────────────────────────────────────────────────── */

static bool is_tchar(unsigned char c) {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field value's octets: VCHAR, SP, HTAB, obs-text (RFC 9110 5.5). */
static bool is_field_char(unsigned char c) {
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

typedef struct {
	const char *p; /* the line without its CR LF */
	size_t n;
} line;

/* The next line at buf[*pos..len): true with *l, *pos past its LF; false
 * when no LF is there yet. A CR is allowed only right before the LF. */
static int next_line(const char *buf, size_t len, size_t *pos, line *l, ms_err *err) {
	const char *lf = memchr(buf + *pos, '\n', len - *pos);
	if (!lf)
		return -EAGAIN;
	l->p = buf + *pos;
	l->n = (size_t)(lf - l->p);
	*pos = (size_t)(lf - buf) + 1;
	if (l->n && l->p[l->n - 1] == '\r')
		l->n--;
	if (memchr(l->p, '\r', l->n))
		return ms_fail(err, -400, "a bare CR in the request head");
	return 0;
}

static int parse_version(const char *v, size_t n, hs_request *r, ms_err *err) {
	if (n != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return ms_fail(err, -400, "the request line does not end in HTTP/x.y");
	if (v[5] != '1')
		return ms_fail(err, -505, "HTTP/%c.%c: only HTTP/1.x is served", v[5], v[7]);
	r->minor = v[7] - '0';
	return 0;
}

/* method SP request-target SP HTTP-version (RFC 9112 3) */
static int parse_request_line(const line *l, hs_request *r, ms_err *err) {
	size_t i = 0;
	while (i < l->n && is_tchar((unsigned char)l->p[i]))
		i++;
	if (!i || i > HS_METHOD_MAX || i >= l->n || l->p[i] != ' ')
		return ms_fail(err, -400,
		               "the request line does not start with a method and a space");
	memcpy(r->method, l->p, i);
	r->method[i] = 0;
	size_t t = ++i;
	while (i < l->n && l->p[i] > 0x20 && l->p[i] < 0x7f)
		i++;
	if (i == t || i >= l->n || l->p[i] != ' ')
		return ms_fail(err, -400, "the request target is empty or holds a control byte");
	size_t tn = (size_t)(i - t);
	const char *q = memchr(l->p + t, '?', tn);
	size_t pn = q ? (size_t)(q - (l->p + t)) : tn;
	memcpy(r->path, l->p + t, pn); /* pn < HS_HEAD_MAX: the whole head fits */
	r->path[pn] = 0;
	return parse_version(l->p + i + 1, l->n - i - 1, r, err);
}

static void keep_accept(hs_request *r, const char *v, size_t n) {
	size_t have = strlen(r->accept);
	const char *sep = have ? ", " : "";
	size_t room = sizeof r->accept - 1 - have;
	size_t sl = strlen(sep) < room ? strlen(sep) : room;
	memcpy(r->accept + have, sep, sl);
	have += sl, room -= sl;
	if (n > room)
		n = room;
	memcpy(r->accept + have, v, n);
	r->accept[have + n] = 0;
}

/* field-name ":" OWS field-value OWS (RFC 9112 5); *hosts counts Host. */
static int parse_field(const line *l, hs_request *r, int *hosts, ms_err *err) {
	if (l->p[0] == ' ' || l->p[0] == '\t')
		return ms_fail(err, -400, "a folded field line (obs-fold)");
	size_t i = 0;
	while (i < l->n && is_tchar((unsigned char)l->p[i]))
		i++;
	if (!i || i >= l->n || l->p[i] != ':')
		return ms_fail(err, -400, "a field line without a name and a colon");
	size_t nl = i++;
	while (i < l->n && (l->p[i] == ' ' || l->p[i] == '\t'))
		i++;
	size_t e = l->n;
	while (e > i && (l->p[e - 1] == ' ' || l->p[e - 1] == '\t'))
		e--;
	for (size_t k = i; k < e; k++)
		if (!is_field_char((unsigned char)l->p[k]))
			return ms_fail(err, -400, "a control byte in the value of %.*s", (int)nl,
			               l->p);
	if (nl == 4 && !strncasecmp(l->p, "host", 4))
		++*hosts;
	else if (nl == 6 && !strncasecmp(l->p, "accept", 6))
		keep_accept(r, l->p + i, e - i);
	return 0;
}

int hs_parse(const char *buf, size_t len, hs_request *r, size_t *head_len, ms_err *err) {
	size_t pos = 0, scan = len < HS_HEAD_MAX ? len : HS_HEAD_MAX;
	line l;
	int rc, hosts = 0;
	memset(r, 0, sizeof *r);
	do { /* a server should ignore empty lines before the request line */
		if ((rc = next_line(buf, scan, &pos, &l, err)))
			goto incomplete;
	} while (!l.n);
	if ((rc = parse_request_line(&l, r, err)))
		return rc;
	for (;;) {
		if ((rc = next_line(buf, scan, &pos, &l, err)))
			goto incomplete;
		if (!l.n)
			break;
		if ((rc = parse_field(&l, r, &hosts, err)))
			return rc;
	}
	if (r->minor >= 1 && hosts != 1)
		return ms_fail(err, -400, "an HTTP/1.1 request needs exactly one Host field (%d)",
		               hosts);
	*head_len = pos;
	return 0;
incomplete:
	if (rc != -EAGAIN)
		return rc;
	if (len >= HS_HEAD_MAX)
		return ms_fail(err, -431, "the request head is longer than %d bytes", HS_HEAD_MAX);
	return -EAGAIN;
}

const char *hs_reason(int status) {
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

/* ─── Listening ───────────────────────────────────────────────────────── */

static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len, ms_err *err) {
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = addr[0] == '[' ? strstr(addr, "]:") : strrchr(addr, ':');
	const char *h = addr[0] == '[' ? addr + 1 : addr;
	if (!colon || (size_t)(colon - h) >= sizeof host)
		return ms_fail(err, -EINVAL, "listen address \"%s\": want ADDR:PORT", addr);
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = 0;
	const char *port = colon + (addr[0] == '[' ? 2 : 1);
	char *end;
	long p = strtol(port, &end, 10);
	if (!*port || *end || p < 0 || p > 65535)
		return ms_fail(err, -EINVAL, "listen address \"%s\": bad port", addr);
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET, v4->sin_port = htons((uint16_t)p);
		*len = sizeof *v4;
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6, v6->sin6_port = htons((uint16_t)p);
		*len = sizeof *v6;
	} else {
		return ms_fail(err, -EINVAL,
		               "listen address \"%s\": the host must be an IP literal", addr);
	}
	return 0;
}

int hs_listen(const char *addr, ms_err *err) {
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	int r = parse_addr(addr, &ss, &sl, err);
	if (r)
		return r;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ms_fail(err, -errno, "listen %s: socket: %s", addr, strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		close(fd);
		return ms_fail(err, r, "listen %s: %s", addr, strerror(-r));
	}
	return fd;
}

int hs_port(int fd) {
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                      : ((struct sockaddr_in *)&ss)->sin_port);
}

/* ─── Serving ─────────────────────────────────────────────────────────── */

typedef struct conn conn;
struct hs_server {
	int fd;
	rt_pollfd *pd;
	hs_handler fn;
	void *arg;
	hs_opts o;
	rt_waitgroup wg; /* the acceptor and every connection */
	rt_mutex mu;     /* guards conns and stopping */
	conn *conns;
	int active;
	bool stopping;
};

struct conn {
	hs_server *s;
	int fd;
	rt_pollfd *pd;
	conn *prev, *next;
};

static void logf_(hs_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(hs_server *s, const char *fmt, ...) {
	if (!s->o.log)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	s->o.log(msg, s->o.log_arg);
}

static int send_response(rt_pollfd *pd, const hs_response *resp, bool head, int64_t deadline) {
	int st = resp->status ? resp->status : 200;
	char line[STATUS_LINE_MAX];
	int n = snprintf(line, sizeof line,
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n%s%s%s\r\n",
	                 st, hs_reason(st),
	                 resp->content_type ? resp->content_type : "text/plain; charset=utf-8",
	                 resp->len, resp->allow ? "Allow: " : "", resp->allow ? resp->allow : "",
	                 resp->allow ? "\r\n" : "");
	struct iovec iov[2] = {{line, (size_t)n}, {resp->body, head ? 0 : resp->len}};
	return nc_send_all(pd, iov, resp->body && !head ? 2 : 1, deadline);
}

/* After the response: no more writes, and what the client still sends is
 * read (briefly, boundedly) before close, so its unread bytes do not turn
 * the close into a reset that could cut the response short. */
static void linger(conn *c) {
	char sink[4096];
	shutdown(c->fd, SHUT_WR);
	int64_t end = rt_deadline_in(LINGER_NS);
	for (size_t got = 0; got < LINGER_MAX;) {
		ssize_t r = rt_read(c->pd, sink, sizeof sink, end);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
}

static void error_response(hs_response *resp, int status, const char *msg) {
	resp->status = status;
	resp->len = strlen(msg) + 1;
	if ((resp->body = malloc(resp->len + 1)))
		snprintf(resp->body, resp->len + 1, "%s\n", msg);
	else
		resp->len = 0;
}

/* Read the head, answer it. */
static void serve(conn *c, char *buf, hs_request *req) {
	hs_server *s = c->s;
	int64_t rd = rt_deadline_in(s->o.read_ns);
	size_t n = 0, head_len;
	ms_err err = {0};
	int rc = -EAGAIN;
	while (rc == -EAGAIN) {
		ssize_t r = rt_read(c->pd, buf + n, HS_HEAD_MAX - n, rd);
		if (r <= 0)
			return; /* closed, failed or too slow: nobody to answer */
		n += (size_t)r;
		rc = hs_parse(buf, n, req, &head_len, &err);
	}
	hs_response resp = {0};
	if (rc)
		error_response(&resp, -rc, err.msg);
	else
		s->fn(req, &resp, s->arg);
	bool head = !rc && !strcmp(req->method, "HEAD");
	if (!send_response(c->pd, &resp, head, rt_deadline_in(s->o.write_ns)))
		linger(c);
	free(resp.body);
}

static void conn_unlink(conn *c) {
	hs_server *s = c->s;
	rt_mutex_lock(&s->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->active--;
	rt_mutex_unlock(&s->mu);
}

static void conn_run(void *arg) {
	conn *c = arg;
	hs_server *s = c->s;
	char *buf = malloc(HS_HEAD_MAX);
	hs_request *req = malloc(sizeof *req);
	if (buf && req)
		serve(c, buf, req);
	free(buf);
	free(req);
	conn_unlink(c);
	rt_poll_close(c->pd);
	close(c->fd);
	free(c);
	rt_wg_done(&s->wg);
}

/* Over the cap: a 503 if the socket takes it at once, then close. */
static void refuse(int fd) {
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
	                           "Connection: close\r\n\r\n";
	ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	close(fd);
}

/* Register fd as a connection and start its goroutine, unless the server
 * is full or stopping. */
static void admit(hs_server *s, int fd) {
	conn *c = calloc(1, sizeof *c);
	int perr = 0;
	rt_mutex_lock(&s->mu);
	bool ok = c && !s->stopping && s->active < s->o.conn_max;
	if (ok && !(c->pd = rt_poll_open(fd, &perr)))
		ok = false;
	if (ok) {
		c->s = s, c->fd = fd, c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->active++;
		rt_wg_add(&s->wg, 1);
	}
	rt_mutex_unlock(&s->mu);
	if (!ok) {
		free(c);
		refuse(fd);
		return;
	}
	rt_go(conn_run, c, "metrics conn");
}

static void acceptor(void *arg) {
	hs_server *s = arg;
	for (;;) {
		int fd = rt_accept(s->pd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC, RT_FOREVER);
		if (fd == -ECANCELED)
			break;
		if (fd >= 0) {
			admit(s, fd);
			continue;
		}
		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
			logf_(s, "accept: %s (pausing)", strerror(-fd));
			rt_sleep(ACCEPT_PAUSE_NS);
		}
		/* ECONNABORTED and the like: the next one */
	}
	rt_wg_done(&s->wg);
}

hs_server *hs_start(int fd, hs_handler fn, void *arg, const hs_opts *o, ms_err *err) {
	hs_server *s = calloc(1, sizeof *s);
	int perr = 0;
	if (!s || !(s->pd = rt_poll_open(fd, &perr))) {
		ms_fail(err, s ? perr : -ENOMEM, "serving: %s", strerror(s ? -perr : ENOMEM));
		free(s);
		close(fd);
		return NULL;
	}
	s->fd = fd, s->fn = fn, s->arg = arg;
	s->o = o ? *o : (hs_opts){0};
	if (s->o.conn_max <= 0)
		s->o.conn_max = HS_CONN_MAX_DEFAULT;
	if (s->o.read_ns <= 0)
		s->o.read_ns = HS_READ_TIMEOUT_NS;
	if (s->o.write_ns <= 0)
		s->o.write_ns = HS_WRITE_TIMEOUT_NS;
	s->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	s->mu = (rt_mutex)RT_MUTEX_INIT;
	rt_wg_add(&s->wg, 1);
	rt_go(acceptor, s, "metrics accept");
	return s;
}

void hs_stop(hs_server *s) {
	if (!s)
		return;
	rt_mutex_lock(&s->mu);
	s->stopping = true;
	for (conn *c = s->conns; c; c = c->next)
		rt_poll_evict(c->pd);
	rt_mutex_unlock(&s->mu);
	rt_poll_evict(s->pd);
	rt_wg_wait(&s->wg);
	rt_poll_close(s->pd);
	close(s->fd);
	free(s);
}
