/*
 * ttrpc.c — containerd's ttrpc on the netpoller (see ttrpc.h): the 10-byte
 * frame header and a frame reader shared by both ends, the server (accept
 * loop, a reader goroutine per connection, a goroutine per request) and the
 * client (odd stream ids, a reader goroutine handing each response to its
 * waiting caller). Request and Response are protobuf-c's (ttrpc.pb-c.h).
 *
 * Lifetimes. A server connection is shared by its reader and the handlers
 * it started; each holds a reference and the last one closes the fd, so
 * replies still go out after the reader ended. The reader ends at EOF:
 * the peer closed, or tt_server_stop shut our read side; it then closes
 * the connection's done channel, which a long handler (Wait) selects on.
 * The server's wait group counts tt_serve, readers and handlers, which is
 * what tt_server_stop waits for. A write that fails or stalls (a torn
 * frame) shuts the whole socket down, which ends the reader too.
 */
#define _GNU_SOURCE
#include "ttrpc.h"

#include "ttrpc.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HDR_SIZE      10 /* u32 length, u32 stream id, u8 type, u8 flags */
#define TYPE_REQUEST  1
#define TYPE_RESPONSE 2
/* A reader's buffer: enough for many small frames per read; it grows to one
 * whole frame (up to HDR_SIZE + TT_MAX_FRAME) and is let go once empty. */
#define RBUF_MIN (64 * 1024)
/* Out of fds or memory in accept: retry after this, doubling (Go's net/http). */
#define ACCEPT_BACKOFF_MIN_NS (5 * 1000000LL)
#define ACCEPT_BACKOFF_MAX_NS (1000 * 1000000LL)
#define DIAL_TIMEOUT_NS       (5 * 1000000000LL)
/* A peer that takes no reply for this long is taken for dead. */
#define WRITE_TIMEOUT_NS (30 * 1000000000LL)
/* A client waits this much past its timeout so that a server honouring the
 * same deadline can answer DeadlineExceeded before we give up. */
#define REPLY_GRACE_NS (100 * 1000000LL)
#define STATUS_MSG_MAX 512 /* protocol error messages built here */
#define MAX_METADATA   16  /* key/value pairs a client call sends (containerd's: one) */

/* ─── Frames ──────────────────────────────────────────────────────────── */

typedef struct {
	uint8_t *buf;
	size_t cap, start, end; /* buffered bytes: buf[start, end) */
} rbuf;

typedef struct {
	uint32_t len, stream;
	uint8_t type;
	bool too_big;        /* over TT_MAX_FRAME: its data was discarded */
	const uint8_t *data; /* len bytes inside the rbuf, valid until the next read */
} frame;

static uint32_t get_be32(const uint8_t *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_header(uint8_t *p, uint32_t len, uint32_t stream, uint8_t type) {
	put_be32(p, len);
	put_be32(p + 4, stream);
	p[8] = type;
	p[9] = 0;
}

/* Read until `need` bytes are buffered: 1, 0 at EOF, or -errno. Reads take
 * whatever fits, so several frames can arrive in one. */
static int fill(rt_pollfd *pd, rbuf *b, size_t need) {
	while (b->end - b->start < need) {
		if (b->start && b->cap - b->start < need) {
			memmove(b->buf, b->buf + b->start, b->end - b->start);
			b->end -= b->start;
			b->start = 0;
		}
		if (b->cap < need) {
			size_t cap = b->cap * 2 > RBUF_MIN ? b->cap * 2 : RBUF_MIN;
			cap = cap > HDR_SIZE + TT_MAX_FRAME ? HDR_SIZE + TT_MAX_FRAME : cap;
			cap = cap < need ? need : cap;
			uint8_t *p = realloc(b->buf, cap);
			if (!p)
				return -ENOMEM;
			b->buf = p;
			b->cap = cap;
		}
		ssize_t n = rt_read(pd, b->buf + b->end, b->cap - b->end, RT_FOREVER);
		if (n <= 0)
			return (int)n;
		b->end += (size_t)n;
	}
	return 1;
}

/* Drop the next n bytes of the stream (an oversized frame's data). */
static int discard(rt_pollfd *pd, rbuf *b, uint64_t n) {
	while (n) {
		if (b->start == b->end) {
			b->start = b->end = 0;
			int r = fill(pd, b, 1);
			if (r <= 0)
				return r;
		}
		size_t k = b->end - b->start < n ? b->end - b->start : (size_t)n;
		b->start += k;
		n -= k;
	}
	return 1;
}

/* The next frame: 1, 0 at EOF (also in the middle of a frame), -errno. */
static int read_frame(rt_pollfd *pd, rbuf *b, frame *f) {
	if (b->start == b->end && b->cap > RBUF_MIN) { /* after a big frame */
		free(b->buf);
		*b = (rbuf){0};
	}
	int r = fill(pd, b, HDR_SIZE);
	if (r <= 0)
		return r;
	const uint8_t *h = b->buf + b->start;
	*f = (frame){.len = get_be32(h), .stream = get_be32(h + 4), .type = h[8]};
	b->start += HDR_SIZE;
	if ((f->too_big = f->len > TT_MAX_FRAME))
		return discard(pd, b, f->len);
	if ((r = fill(pd, b, f->len)) <= 0)
		return r;
	f->data = b->buf + b->start;
	b->start += f->len;
	return 1;
}

/* All of p, however many writes it takes. 0 or -errno; after an error the
 * stream may hold part of a frame, so the caller ends the connection. */
static int send_all(rt_pollfd *pd, const uint8_t *p, size_t n, int64_t deadline) {
	while (n) {
		struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t w = rt_sendmsg(pd, &m, 0, deadline); /* MSG_NOSIGNAL: EPIPE, no SIGPIPE */
		if (w < 0)
			return (int)w;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* msg encoded after room for a header, into a malloc'd *f of *n bytes.
 * 0, -EMSGSIZE (the data would exceed TT_MAX_FRAME) or -ENOMEM. */
static int pack_frame(const ProtobufCMessage *msg, uint32_t stream, uint8_t type, uint8_t **f,
                      size_t *n) {
	size_t len = protobuf_c_message_get_packed_size(msg);
	*f = NULL;
	if (len > TT_MAX_FRAME)
		return -EMSGSIZE;
	if (!(*f = malloc(HDR_SIZE + len)))
		return -ENOMEM;
	protobuf_c_message_pack(msg, *f + HDR_SIZE);
	put_header(*f, (uint32_t)len, stream, type);
	*n = HDR_SIZE + len;
	return 0;
}

/* ─── Server ──────────────────────────────────────────────────────────── */

typedef struct {
	char *service, *method;
	tt_handler h;
	void *arg;
} route;

typedef struct conn {
	tt_server *s;
	int fd;
	rt_pollfd *pd;
	rt_mutex wmu;  /* one frame at a time on the socket */
	rt_chan *done; /* closed when the reader ends */
	int refs;      /* atomic: the reader and each running handler */
	struct conn *prev, *next;
} conn;

struct tt_server {
	rt_mutex mu; /* everything below but wg */
	route *routes;
	size_t nroutes;
	conn *conns;
	rt_pollfd *lpd; /* the listener while tt_serve runs */
	bool stopping;
	tt_closed_fn on_close;
	void *on_close_arg;
	rt_waitgroup wg; /* tt_serve, readers, handlers */
};

typedef struct {
	tt_call call;
	Ttrpc__Request *req; /* call's strings point into it */
	conn *c;
	tt_handler h;
	void *arg;
} running_call;

int tt_fail(char **msg, int code, const char *fmt, ...) {
	if (!msg)
		return code;
	static const char cut[] = "...";
	if (!(*msg = malloc(TT_MSG_MAX)))
		return code;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(*msg, TT_MSG_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		(*msg)[0] = '\0';
	else if (n >= TT_MSG_MAX)
		memcpy(*msg + TT_MSG_MAX - sizeof cut, cut, sizeof cut);
	return code;
}

tt_server *tt_server_new(void) {
	return calloc(1, sizeof(tt_server)); /* all zero: RT_MUTEX_INIT, RT_WAITGROUP_INIT */
}

int tt_register(tt_server *s, const char *service, const char *method, tt_handler h, void *arg) {
	route r = {strdup(service), strdup(method), h, arg}, *grown = NULL;
	int ret = r.service && r.method ? 0 : -ENOMEM;
	rt_mutex_lock(&s->mu);
	for (size_t i = 0; !ret && i < s->nroutes; i++)
		if (!strcmp(s->routes[i].service, service) && !strcmp(s->routes[i].method, method))
			ret = -EEXIST;
	if (!ret && !(grown = realloc(s->routes, (s->nroutes + 1) * sizeof *grown)))
		ret = -ENOMEM;
	if (!ret) {
		s->routes = grown;
		s->routes[s->nroutes++] = r;
	}
	rt_mutex_unlock(&s->mu);
	if (ret) {
		free(r.service);
		free(r.method);
	}
	return ret;
}

void tt_server_on_close(tt_server *s, tt_closed_fn fn, void *arg) {
	rt_mutex_lock(&s->mu);
	s->on_close = fn;
	s->on_close_arg = arg;
	rt_mutex_unlock(&s->mu);
}

static void conn_unref(conn *c) {
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	rt_poll_close(c->pd);
	close(c->fd);
	rt_chan_free(c->done);
	free(c);
}

/* Write a Response: the payload on success, else a status (no payload). */
static void reply(conn *c, uint32_t stream, int code, const char *msg, const uint8_t *payload,
                  size_t len) {
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Ttrpc__Status st = TTRPC__STATUS__INIT;
	if (code) {
		st.code = code;
		st.message = (char *)(msg ? msg : "");
		resp.status = &st;
	} else {
		resp.payload = (ProtobufCBinaryData){.len = len, .data = (uint8_t *)payload};
	}
	size_t n;
	uint8_t *f;
	if (pack_frame(&resp.base, stream, TYPE_RESPONSE, &f, &n)) {
		if (code != TT_RESOURCE_EXHAUSTED) /* too big to send, or ENOMEM */
			reply(c, stream, TT_RESOURCE_EXHAUSTED,
			      "response exceeds the maximum frame", NULL, 0);
		return;
	}
	rt_mutex_lock(&c->wmu);
	if (send_all(c->pd, f, n, rt_deadline_in(WRITE_TIMEOUT_NS)))
		shutdown(c->fd, SHUT_RDWR); /* the reader sees EOF and ends it */
	rt_mutex_unlock(&c->wmu);
	free(f);
}

static void handler_main(void *arg) {
	running_call *rc = arg;
	tt_server *s = rc->c->s;
	uint8_t *out = NULL;
	size_t out_len = 0;
	char *msg = NULL;
	int code = rc->h(&rc->call, rc->arg, &out, &out_len, &msg);
	if (code < TT_OK || code > TT_UNAUTHENTICATED)
		code = TT_UNKNOWN;
	reply(rc->c, rc->call.stream, code, msg, out, out_len);
	free(out);
	free(msg);
	ttrpc__request__free_unpacked(rc->req, NULL);
	conn_unref(rc->c);
	free(rc);
	rt_wg_done(&s->wg);
}

/* One frame from the peer: a handler goroutine, or a status right away. */
static void dispatch(conn *c, const frame *f) {
	char why[STATUS_MSG_MAX];
	if (f->too_big) { /* answered whatever its type, as ttrpc's recv error */
		snprintf(why, sizeof why, "message length %u exceed maximum message size of %u",
		         f->len, TT_MAX_FRAME);
		reply(c, f->stream, TT_RESOURCE_EXHAUSTED, why, NULL, 0);
		return;
	}
	if (f->type != TYPE_REQUEST)
		return;
	if (f->stream % 2 == 0) {
		reply(c, f->stream, TT_INVALID_ARGUMENT, "StreamID must be odd", NULL, 0);
		return;
	}
	running_call *rc = calloc(1, sizeof *rc);
	if (!rc || !(rc->req = ttrpc__request__unpack(NULL, f->len, f->data))) {
		reply(c, f->stream, rc ? TT_INVALID_ARGUMENT : TT_RESOURCE_EXHAUSTED,
		      rc ? "unmarshal request error" : "out of memory", NULL, 0);
		free(rc);
		return;
	}
	Ttrpc__Request *req = rc->req;
	bool service_known = false;
	rt_mutex_lock(&c->s->mu);
	for (size_t i = 0; i < c->s->nroutes && !rc->h; i++) {
		const route *r = &c->s->routes[i];
		if (!strcmp(r->service, req->service)) {
			service_known = true;
			if (!strcmp(r->method, req->method))
				rc->h = r->h, rc->arg = r->arg;
		}
	}
	rt_mutex_unlock(&c->s->mu);
	if (!rc->h) { /* ttrpc's words */
		snprintf(why, sizeof why, service_known ? "method %s" : "service %s",
		         service_known ? req->method : req->service);
		reply(c, f->stream, TT_UNIMPLEMENTED, why, NULL, 0);
		ttrpc__request__free_unpacked(req, NULL);
		free(rc);
		return;
	}
	rc->c = c;
	rc->call = (tt_call){
	    .service = req->service,
	    .method = req->method,
	    .payload = req->payload.data,
	    .len = req->payload.len,
	    .deadline = req->timeout_nano > 0 ? rt_deadline_in(req->timeout_nano) : RT_FOREVER,
	    .stream = f->stream,
	    .done = c->done,
	};
	for (size_t i = 0; i < req->n_metadata && !rc->call.namespace_; i++)
		if (!strcmp(req->metadata[i]->key, TT_NAMESPACE_KEY))
			rc->call.namespace_ = req->metadata[i]->value;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	rt_wg_add(&c->s->wg, 1);
	rt_go(handler_main, rc, "ttrpc handler");
}

static void conn_reader(void *arg) {
	conn *c = arg;
	tt_server *s = c->s;
	rbuf b = {0};
	frame f;
	int r;
	while ((r = read_frame(c->pd, &b, &f)) > 0)
		dispatch(c, &f);
	free(b.buf);
	rt_mutex_lock(&s->mu);
	*(c->prev ? &c->prev->next : &s->conns) = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (s->stopping)
		r = -ECANCELED;
	tt_closed_fn on_close = s->on_close;
	void *on_close_arg = s->on_close_arg;
	rt_mutex_unlock(&s->mu);
	rt_chan_close(c->done);
	if (on_close)
		on_close(on_close_arg, r);
	conn_unref(c);
	rt_wg_done(&s->wg);
}

/* A new connection: same user as us, or closed. false once stopping. */
static bool admit(tt_server *s, int fd) {
	struct ucred cr;
	socklen_t len = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.uid != geteuid() ||
	    cr.gid != getegid()) {
		close(fd);
		return true;
	}
	int perr;
	conn *c = calloc(1, sizeof *c);
	if (c && !(c->done = rt_chan_new(1, 0)))
		goto fail;
	if (!c || !(c->pd = rt_poll_open(fd, &perr)))
		goto fail;
	c->s = s;
	c->fd = fd;
	c->refs = 1;
	rt_mutex_lock(&s->mu);
	if (s->stopping) {
		rt_mutex_unlock(&s->mu);
		goto fail;
	}
	if ((c->next = s->conns))
		c->next->prev = c;
	s->conns = c;
	rt_wg_add(&s->wg, 1);
	rt_mutex_unlock(&s->mu);
	rt_go(conn_reader, c, "ttrpc connection");
	return true;
fail:
	if (c) {
		rt_poll_close(c->pd);
		if (c->done)
			rt_chan_free(c->done);
		free(c);
	}
	close(fd);
	return !__atomic_load_n(&s->stopping, __ATOMIC_RELAXED);
}

int tt_serve(tt_server *s, int listen_fd, ms_err *err) {
	int fl = fcntl(listen_fd, F_GETFL), perr = 0;
	rt_pollfd *pd = NULL;
	if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		perr = -errno;
	else
		pd = rt_poll_open(listen_fd, &perr);
	if (!pd)
		return ms_fail(err, perr, "ttrpc: listener fd %d: %s", listen_fd, strerror(-perr));
	rt_mutex_lock(&s->mu);
	s->lpd = pd;
	if (s->stopping) /* stopped already: the loop ends at once */
		rt_poll_evict(pd);
	rt_wg_add(&s->wg, 1);
	rt_mutex_unlock(&s->mu);
	int ret = 0;
	int64_t backoff = 0;
	for (;;) {
		int fd = rt_accept(pd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC, RT_FOREVER);
		if (fd >= 0) {
			backoff = 0;
			if (!admit(s, fd))
				break;
		} else if (fd == -ECANCELED) {
			break;
		} else if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
			backoff = backoff ? backoff * 2 : ACCEPT_BACKOFF_MIN_NS;
			backoff = backoff > ACCEPT_BACKOFF_MAX_NS ? ACCEPT_BACKOFF_MAX_NS : backoff;
			rt_sleep(backoff);
		} else if (fd != -ECONNABORTED && fd != -EINTR && fd != -EPROTO) {
			ret = ms_fail(err, fd, "ttrpc: accept on fd %d: %s", listen_fd,
			              strerror(-fd));
			break;
		}
	}
	rt_mutex_lock(&s->mu);
	s->lpd = NULL;
	rt_mutex_unlock(&s->mu);
	rt_poll_close(pd);
	rt_wg_done(&s->wg);
	return ret;
}

void tt_server_stop(tt_server *s) {
	rt_mutex_lock(&s->mu);
	__atomic_store_n(&s->stopping, true, __ATOMIC_RELAXED);
	rt_poll_evict(s->lpd);
	for (conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RD); /* its reader sees EOF; replies still go out */
	rt_mutex_unlock(&s->mu);
	rt_wg_wait(&s->wg);
}

void tt_server_free(tt_server *s) {
	if (!s)
		return;
	for (size_t i = 0; i < s->nroutes; i++) {
		free(s->routes[i].service);
		free(s->routes[i].method);
	}
	free(s->routes);
	free(s);
}

/* ─── Client ──────────────────────────────────────────────────────────── */

typedef struct {
	int code;      /* TT_RESOURCE_EXHAUSTED, -errno, or 0: data holds the Response */
	uint8_t *data; /* malloc'd */
	size_t len;
} reply_msg;

typedef struct waiter {
	uint32_t stream;
	rt_chan *ch; /* one reply_msg; capacity 1, so the reader never blocks */
	struct waiter *next;
} waiter;

struct tt_client {
	int fd;
	rt_pollfd *pd;
	rt_mutex wmu; /* sending; stream ids are taken under it, so they go out in order */
	rt_mutex mu;  /* waiting, next_stream, err */
	waiter *waiting;
	uint32_t next_stream;
	int err;         /* the connection is gone: calls fail with it */
	rt_waitgroup wg; /* the reader and calls in progress */
};

static waiter *take_waiter(tt_client *c, uint32_t stream) {
	rt_mutex_lock(&c->mu);
	waiter **p = &c->waiting;
	while (*p && (*p)->stream != stream)
		p = &(*p)->next;
	waiter *w = *p;
	if (w)
		*p = w->next;
	rt_mutex_unlock(&c->mu);
	return w;
}

static void client_reader(void *arg) {
	tt_client *c = arg;
	rbuf b = {0};
	frame f;
	while (read_frame(c->pd, &b, &f) > 0) {
		waiter *w = f.type == TYPE_RESPONSE ? take_waiter(c, f.stream) : NULL;
		if (!w)
			continue; /* not a response, or its caller gave up */
		reply_msg m = {.code = f.too_big ? TT_RESOURCE_EXHAUSTED : 0};
		if (!m.code && !(m.data = malloc(f.len ? f.len : 1)))
			m.code = -ENOMEM;
		if (m.data) {
			memcpy(m.data, f.data, f.len);
			m.len = f.len;
		}
		rt_chan_send(w->ch, &m);
	}
	free(b.buf);
	rt_mutex_lock(&c->mu);
	c->err = -EPIPE;
	waiter *all = c->waiting;
	c->waiting = NULL;
	rt_mutex_unlock(&c->mu);
	for (waiter *w = all, *next; w; w = next) {
		next = w->next; /* w belongs to its caller once sent */
		rt_chan_send(w->ch, &(reply_msg){.code = -EPIPE});
	}
	rt_wg_done(&c->wg);
}

tt_client *tt_dial(const char *path, ms_err *err) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		ms_fail(err, -ENAMETOOLONG, "ttrpc: socket path too long: %s", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ms_fail(err, -errno, "ttrpc: socket: %s", strerror(errno));
		return NULL;
	}
	int r = -ENOMEM;
	tt_client *c = calloc(1, sizeof *c);
	if (c && (c->pd = rt_poll_open(fd, &r)))
		r = rt_connect(c->pd, (struct sockaddr *)&sa, sizeof sa,
		               rt_deadline_in(DIAL_TIMEOUT_NS));
	if (r) {
		ms_fail(err, r, "ttrpc: connect %s: %s", path, strerror(-r));
		if (c)
			rt_poll_close(c->pd);
		close(fd);
		free(c);
		return NULL;
	}
	c->fd = fd; /* calloc'd: the mutexes and wait group are initialised */
	c->next_stream = 1;
	rt_wg_add(&c->wg, 1);
	rt_go(client_reader, c, "ttrpc client reader");
	return c;
}

/* A Request frame, its stream id filled in when sent: 0 or -errno. */
static int pack_request(const char *service, const char *method, const uint8_t *req, size_t len,
                        const char *const *metadata, int64_t timeout_ns, uint8_t **f, size_t *n) {
	Ttrpc__KeyValue kv[MAX_METADATA], *kvp[MAX_METADATA];
	Ttrpc__Request rq = TTRPC__REQUEST__INIT;
	for (; metadata && metadata[2 * rq.n_metadata]; rq.n_metadata++) {
		size_t i = rq.n_metadata;
		if (i == MAX_METADATA || !metadata[2 * i + 1])
			return -EINVAL;
		kv[i] = (Ttrpc__KeyValue)TTRPC__KEY_VALUE__INIT;
		kv[i].key = (char *)metadata[2 * i];
		kv[i].value = (char *)metadata[2 * i + 1];
		kvp[i] = &kv[i];
	}
	rq.metadata = kvp;
	rq.service = (char *)service;
	rq.method = (char *)method;
	rq.payload = (ProtobufCBinaryData){.len = len, .data = (uint8_t *)req};
	rq.timeout_nano = timeout_ns > 0 ? timeout_ns : 0;
	return pack_frame(&rq.base, 0, TYPE_REQUEST, f, n);
}

/* Send f as a new stream and register w for its reply. 0 or -errno. */
static int send_request(tt_client *c, uint8_t *f, size_t n, waiter *w, int64_t deadline) {
	rt_mutex_lock(&c->wmu);
	rt_mutex_lock(&c->mu);
	int r = c->err;
	if (!r) {
		w->stream = c->next_stream;
		c->next_stream += 2;
		w->next = c->waiting;
		c->waiting = w;
		rt_wg_add(&c->wg, 1);
	}
	rt_mutex_unlock(&c->mu);
	if (!r) {
		put_be32(f + 4, w->stream);
		if ((r = send_all(c->pd, f, n, deadline)))
			shutdown(c->fd, SHUT_RDWR); /* a torn frame: the reader ends it all */
	}
	rt_mutex_unlock(&c->wmu);
	return r;
}

/* Decode what the reader handed over into the caller's outputs. */
static int finish_call(reply_msg m, uint8_t **out, size_t *out_len, char *msg, size_t msglen) {
	if (m.code) {
		snprintf(msg, msglen, "ttrpc: %s",
		         m.code == TT_RESOURCE_EXHAUSTED ? "response exceeds the maximum frame"
		                                         : strerror(-m.code));
		return m.code;
	}
	Ttrpc__Response *resp = ttrpc__response__unpack(NULL, m.len, m.data);
	free(m.data);
	if (!resp) {
		snprintf(msg, msglen, "ttrpc: malformed response");
		return -EPROTO;
	}
	int code = resp->status ? resp->status->code : TT_OK;
	if (code < TT_OK) /* not ours to pass as an errno */
		code = TT_UNKNOWN;
	if (code) {
		snprintf(msg, msglen, "%s", resp->status->message ? resp->status->message : "");
	} else if (out && resp->payload.len) {
		if ((*out = malloc(resp->payload.len))) {
			memcpy(*out, resp->payload.data, resp->payload.len);
			*out_len = resp->payload.len;
		} else {
			code = -ENOMEM;
		}
	}
	ttrpc__response__free_unpacked(resp, NULL);
	return code;
}

int tt_call_sync(tt_client *c, const char *service, const char *method, const uint8_t *req,
                 size_t len, const char *const *metadata, int64_t timeout_ns, uint8_t **out,
                 size_t *out_len, char *msg, size_t msglen) {
	char scratch[1];
	if (!msg || !msglen) {
		msg = scratch;
		msglen = sizeof scratch;
	}
	msg[0] = 0;
	if (out) {
		*out = NULL;
		*out_len = 0;
	}
	size_t n;
	uint8_t *f = NULL;
	int r = pack_request(service, method, req, len, metadata, timeout_ns, &f, &n);
	waiter w = {0};
	if (!r && !(w.ch = rt_chan_new(sizeof(reply_msg), 1)))
		r = -ENOMEM;
	int64_t deadline =
	    timeout_ns > 0 ? rt_deadline_in(timeout_ns + REPLY_GRACE_NS) : RT_FOREVER;
	if (!r)
		r = send_request(c, f, n, &w,
		                 timeout_ns > 0 ? deadline : rt_deadline_in(WRITE_TIMEOUT_NS));
	free(f);
	if (!w.stream) { /* never registered: nothing will answer */
		if (w.ch)
			rt_chan_free(w.ch);
		return finish_call((reply_msg){.code = r}, out, out_len, msg, msglen);
	}
	reply_msg m = {0};
	rt_case rc = {.c = w.ch, .dir = RT_RECV, .elem = &m};
	if (r || rt_select(&rc, 1, deadline) < 0) {
		if (take_waiter(c, w.stream))
			m = (reply_msg){.code = r ? r : -ETIMEDOUT};
		else /* the reader took it first: its reply is on the way */
			rt_chan_recv(w.ch, &m);
	}
	rt_chan_free(w.ch);
	int code = finish_call(m, out, out_len, msg, msglen);
	rt_wg_done(&c->wg);
	return code;
}

void tt_client_close(tt_client *c) {
	if (!c)
		return;
	rt_mutex_lock(&c->mu);
	c->err = -EPIPE;
	rt_mutex_unlock(&c->mu);
	shutdown(c->fd, SHUT_RDWR); /* the reader sees EOF, fails the waiting calls */
	rt_wg_wait(&c->wg);
	rt_poll_close(c->pd);
	close(c->fd);
	free(c);
}
