/*
 * netconn.c — netconn.h's dialing: host resolution (literals here, names on
 * the blocking pool), sockets made inside another network namespace by a
 * throwaway thread, connect with a deadline, and sending everything.
 * Nothing here holds errno across a call that parks.
 */
#define _GNU_SOURCE
#include "netconn.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
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

void nc_close(nc_conn *c) {
	if (c->pd)
		rt_poll_close(c->pd);
	if (c->fd >= 0)
		close(c->fd);
	c->pd = NULL;
	c->fd = -1;
}
