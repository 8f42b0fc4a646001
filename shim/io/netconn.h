/*
 * netconn.h — outgoing TCP connections on the netpoller (prefix nc_), for
 * the clients scripts use (http.c, luatcp.c): resolve a host, make the
 * socket (inside a container's network namespace when asked), connect,
 * send, every wait parked on the netpoller under the caller's deadline.
 *
 * Host names. IPv4 and IPv6 literals are used as they are. Other names are
 * resolved with getaddrinfo on the runtime's blocking pool (rt_blocking),
 * in our own namespaces; the deadline is checked after it returns (glibc's
 * resolver has its own timeouts, from resolv.conf, and cannot be
 * interrupted). In another network namespace (netns_fd >= 0) only literals
 * and "localhost" (127.0.0.1) are accepted: our resolv.conf and /etc/hosts
 * say nothing about the container's names.
 *
 * Another network namespace. A socket stays in the namespace it was created
 * in for its whole life, so only its creation has to happen in there. It
 * is made on a fresh thread started from the blocking pool, which calls
 * setns(CLONE_NEWNET), socket(), and exits: setns changes only the calling
 * thread, and that thread never runs a goroutine or a pool job afterwards,
 * so no M and no pool thread is ever left in the container's namespace
 * (restoring a borrowed thread could fail and poison it). Needs
 * CAP_SYS_ADMIN over that namespace's user namespace; costs a thread start
 * per connection (tens of microseconds).
 */
#ifndef MOONSHIM_NETCONN_H
#define MOONSHIM_NETCONN_H

#include "rt.h"

#include <stdint.h>
#include <sys/uio.h>

#define NC_HOST_MAX 255 /* a DNS name's longest */

typedef struct nc_conn {
	int fd; /* -1: not connected */
	rt_pollfd *pd;
	/* The last read was short: the kernel had nothing more then, so
	 * data that comes later arrives with an edge on pd (nc_read). */
	bool drained;
} nc_conn;

/* What a failed nc_dial was doing ("resolving the host", "connecting",
 * "connecting in the network namespace") and, when strerror would not say
 * it, why (a resolver message, "only IP literals ..."), else NULL. */
typedef struct nc_why {
	const char *stage, *why;
} nc_why;

/* From a goroutine: connect to host:port (port in digits) on the first of
 * its addresses that answers, from inside network namespace netns_fd (-1:
 * ours), parking until deadline. 0 with *c connected (non-blocking,
 * close-on-exec, registered with the netpoller), or -errno with c->fd -1
 * and *why filled in: -EINVAL (a name in another namespace), -ENOENT or
 * -EAGAIN (the name did not resolve, for good or for now), -ETIMEDOUT,
 * -ECONNREFUSED and other socket errors. */
int nc_dial(nc_conn *c, const char *host, const char *port, int netns_fd, int64_t deadline,
            nc_why *why);

/* All of the iovecs (they are advanced), parking until deadline: 0 or
 * -errno. A closed peer is -EPIPE (MSG_NOSIGNAL), never SIGPIPE. */
int nc_send_all(rt_pollfd *pd, struct iovec *iov, int n, int64_t deadline);

/* Up to n bytes, parking until deadline: the count, 0 at EOF, or -errno.
 * After a short read, and unless the netpoller saw a hang-up, it parks
 * first and reads once an edge comes, instead of a read that would only
 * say EAGAIN (a request sent, its response not there yet). */
ssize_t nc_read(nc_conn *c, void *buf, size_t n, int64_t deadline);

/* Deregister and close; c->fd becomes -1. Safe on a closed nc_conn. */
void nc_close(nc_conn *c);

/* ─── Idle connections kept for reuse ────────────────────────────────── */

/* A pool of idle connections (HTTP keep-alive), keyed by (netns_fd, host,
 * port) as given to nc_dial: a pool serves one caller whose namespace fds
 * stay open while it lives (a Lua task's function). At most per_key idle
 * connections per key and max in the pool, NC_IDLE_MAX in all the pools of
 * the process (each holds an fd); one idle longer than NC_POOL_IDLE_NS is
 * closed when its pool is next used. Goroutines may share a pool (it has a
 * lock). */
#define NC_POOL_IDLE_NS (30 * 1000000000LL)
#define NC_IDLE_MAX     4096

typedef struct nc_pool nc_pool;

nc_pool *nc_pool_new(int per_key, int max);
/* Closes every idle connection. NULL allowed. */
void nc_pool_free(nc_pool *p);
/* An idle connection for the key into *c: true, or false (c->fd -1). One
 * whose peer has closed it, or sent bytes nobody asked for, is closed and
 * skipped; a close racing with the next request is the caller's to retry.
 * How it looks: with `retryable` (the caller resends on a fresh connection
 * when the reused one turns out closed) a connection left drained with no
 * edge and no hang-up seen since is taken as it is, without a syscall (the
 * netpoller may not have polled the peer's close yet); otherwise a
 * non-blocking peek asks the kernel. */
bool nc_pool_get(nc_pool *p, const char *host, const char *port, int netns_fd, bool retryable,
                 nc_conn *c);
/* Keep *c idle for the key, or close it when the pool is full; either way
 * *c is left closed (fd -1) for the caller. */
void nc_pool_put(nc_pool *p, const char *host, const char *port, int netns_fd, nc_conn *c);

#endif
