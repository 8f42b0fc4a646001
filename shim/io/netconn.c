/*
 * netconn.c — netconn.h's dialing: host resolution (literals here, names on
 * the blocking pool), sockets made inside another network namespace by a
 * throwaway thread, connect with a deadline, sending everything, and the
 * pool of idle connections.
 * Nothing here holds errno across a call that parks.
 */
#define _GNU_SOURCE
#include "netconn.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define NS_THREAD_STACK (64 * 1024) /* the setns thread runs two syscalls */

/* ─── Resolving ───────────────────────────────────────────────────────── */

typedef struct {
	const char *host, *port;
	int flags;
	struct addrinfo *res;
} lookup;

static intptr_t lookup_job(void *arg) {
	lookup *l = arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = l->flags | AI_NUMERICSERV};
	return getaddrinfo(l->host, l->port, &hints, &l->res);
}

/* A literal is parsed right here (AI_NUMERICHOST does no I/O); a name is
 * looked up on the blocking pool. */
static int resolve(const char *host, const char *port, bool theirs, int64_t deadline,
                   struct addrinfo **res, nc_why *why) {
	why->stage = "resolving the host";
	lookup l = {theirs && !strcasecmp(host, "localhost") ? "127.0.0.1" : host, port,
	            AI_NUMERICHOST, NULL};
	int r = (int)lookup_job(&l);
	if (r == EAI_NONAME && theirs) {
		why->why = "only IP literals and localhost in another network namespace";
		return -EINVAL;
	}
	if (r == EAI_NONAME) {
		l.flags = AI_ADDRCONFIG;
		if (!(r = (int)rt_blocking(lookup_job, &l)) && rt_now() >= deadline) {
			freeaddrinfo(l.res);
			return -ETIMEDOUT;
		}
	}
	if (r) {
		why->why = r == EAI_SYSTEM ? NULL : gai_strerror(r);
		return r == EAI_MEMORY   ? -ENOMEM
		       : r == EAI_AGAIN  ? -EAGAIN
		       : r == EAI_SYSTEM ? -EIO
		                         : -ENOENT;
	}
	*res = l.res;
	return 0;
}

/* ─── Sockets in another network namespace ────────────────────────────── */

typedef struct {
	int netns, family, fd;
} ns_socket;

static void *ns_socket_thread(void *arg) {
	ns_socket *s = arg;
	if (setns(s->netns, CLONE_NEWNET) < 0)
		s->fd = -errno;
	else if ((s->fd = socket(s->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		s->fd = -errno;
	return NULL; /* the thread, and the namespace it joined, end here */
}

static intptr_t ns_socket_job(void *arg) { /* on the blocking pool: it waits for the thread */
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, NS_THREAD_STACK);
	int r = pthread_create(&t, &at, ns_socket_thread, arg);
	pthread_attr_destroy(&at);
	if (r)
		return -r;
	pthread_join(t, NULL);
	return 0;
}

static int new_socket(int netns_fd, int family) {
	if (netns_fd < 0) {
		int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	ns_socket s = {netns_fd, family, -EIO};
	int r = (int)rt_blocking(ns_socket_job, &s);
	return r ? r : s.fd;
}

/* ─── Connecting and sending ──────────────────────────────────────────── */

int nc_dial(nc_conn *c, const char *host, const char *port, int netns_fd, int64_t deadline,
            nc_why *why) {
	struct addrinfo *res = NULL;
	*c = (nc_conn){.fd = -1};
	*why = (nc_why){0};
	int r = resolve(host, port, netns_fd >= 0, deadline, &res, why);
	if (!r)
		why->stage = netns_fd >= 0 ? "connecting in the network namespace" : "connecting";
	for (struct addrinfo *ai = res; !r && ai; ai = ai->ai_next) {
		if ((c->fd = new_socket(netns_fd, ai->ai_family)) < 0) {
			r = c->fd;
			c->fd = -1;
			break;
		}
		if ((c->pd = rt_poll_open(c->fd, &r)) &&
		    !(r = rt_connect(c->pd, ai->ai_addr, ai->ai_addrlen, deadline)))
			break;
		nc_close(c);
		if (r != -ETIMEDOUT && ai->ai_next)
			r = 0; /* try the next address */
	}
	if (res)
		freeaddrinfo(res);
	return r;
}

int nc_send_all(rt_pollfd *pd, struct iovec *iov, int n, int64_t deadline) {
	while (n) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = rt_sendmsg(pd, &m, 0, deadline); /* it adds MSG_NOSIGNAL */
		if (w < 0)
			return (int)w;
		for (; n && (size_t)w >= iov->iov_len; iov++, n--)
			w -= (ssize_t)iov->iov_len;
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* After a short read the receive queue was empty: data that comes later
 * comes with an edge, and an EOF or error already there was (or will be,
 * once polled) seen as a hang-up. So unless one was seen, the read can
 * wait for the edge first. */
ssize_t nc_read(nc_conn *c, void *buf, size_t n, int64_t deadline) {
	if (c->drained && !rt_poll_hup(c->pd)) {
		int w = rt_poll_wait(c->pd, RT_POLL_READ, deadline);
		if (w)
			return w;
	}
	ssize_t k = rt_read(c->pd, buf, n, deadline);
	c->drained = k > 0 && (size_t)k < n; /* TCP: a short read emptied the queue */
	return k;
}

void nc_close(nc_conn *c) {
	if (c->pd)
		rt_poll_close(c->pd);
	if (c->fd >= 0)
		close(c->fd);
	c->pd = NULL;
	c->fd = -1;
	c->drained = false;
}

/* ─── The idle pool ───────────────────────────────────────────────────── */

typedef struct {
	int netns;
	char host[NC_HOST_MAX + 1], port[6];
	nc_conn c;
	int64_t since; /* idle from, rt_now_coarse(): the expiry is in seconds */
} idle_conn;

static int idle_total; /* in every pool of the process (atomic) */

struct nc_pool {
	rt_mutex mu;
	int per_key, max, n;
	idle_conn *idle; /* [max]: [0, n) in use, oldest first */
};

nc_pool *nc_pool_new(int per_key, int max) {
	nc_pool *p = calloc(1, sizeof *p);
	if (p && !(p->idle = calloc((size_t)max, sizeof *p->idle))) {
		free(p);
		return NULL;
	}
	if (p) {
		p->per_key = per_key;
		p->max = max;
	}
	return p;
}

void nc_pool_free(nc_pool *p) {
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		nc_close(&p->idle[i].c);
	__atomic_sub_fetch(&idle_total, p->n, __ATOMIC_RELAXED);
	free(p->idle);
	free(p);
}

static bool same_key(const idle_conn *e, const char *host, const char *port, int netns) {
	return e->netns == netns && !strcmp(e->host, host) && !strcmp(e->port, port);
}

/* Take entry i out (the order of the rest kept); its connection to *c. */
static void take_out(nc_pool *p, int i, nc_conn *c) {
	*c = p->idle[i].c;
	__atomic_sub_fetch(&idle_total, 1, __ATOMIC_RELAXED);
	memmove(&p->idle[i], &p->idle[i + 1], (size_t)(p->n - i - 1) * sizeof *p->idle);
	p->n--;
}

/* Close what has been idle too long (the oldest are first). Under mu. */
static void expire(nc_pool *p) {
	int64_t now = rt_now_coarse();
	while (p->n && now - p->idle[0].since > NC_POOL_IDLE_NS) {
		nc_conn c;
		take_out(p, 0, &c);
		nc_close(&c);
	}
}

/* Idle and quiet: no EOF, no error, no unasked-for bytes waiting (see
 * nc_pool_get for when the netpoller's word is enough). The edge is taken
 * before the peek, so one after it is kept for the next look. */
__attribute__((noinline)) /* errno read where no park came before */
static bool
still_open(nc_conn *c, bool retryable) {
	if (!rt_poll_take_edge(c->pd, RT_POLL_READ) && c->drained && retryable &&
	    !rt_poll_hup(c->pd))
		return true;
	char b;
	ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	c->drained = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	return c->drained;
}

bool nc_pool_get(nc_pool *p, const char *host, const char *port, int netns_fd, bool retryable,
                 nc_conn *c) {
	*c = (nc_conn){.fd = -1};
	rt_mutex_lock(&p->mu);
	expire(p);
	for (int i = p->n - 1; i >= 0 && c->fd < 0; i--) { /* the newest first */
		if (!same_key(&p->idle[i], host, port, netns_fd))
			continue;
		take_out(p, i, c);
		if (!still_open(c, retryable))
			nc_close(c);
	}
	rt_mutex_unlock(&p->mu);
	return c->fd >= 0;
}

void nc_pool_put(nc_pool *p, const char *host, const char *port, int netns_fd, nc_conn *c) {
	rt_mutex_lock(&p->mu);
	expire(p);
	int same = 0;
	for (int i = 0; i < p->n; i++)
		same += same_key(&p->idle[i], host, port, netns_fd);
	if (same < p->per_key && p->n < p->max && strlen(port) < sizeof p->idle->port &&
	    strlen(host) < sizeof p->idle->host &&
	    __atomic_load_n(&idle_total, __ATOMIC_RELAXED) < NC_IDLE_MAX) {
		__atomic_add_fetch(&idle_total, 1, __ATOMIC_RELAXED);
		idle_conn *e = &p->idle[p->n++];
		e->netns = netns_fd;
		strcpy(e->host, host);
		strcpy(e->port, port);
		e->c = *c;
		e->since = rt_now_coarse();
		*c = (nc_conn){.fd = -1};
	}
	rt_mutex_unlock(&p->mu);
	nc_close(c);
}
