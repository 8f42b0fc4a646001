/*
 * testnet.h — servers for the network clients' tests (http_test.c,
 * tcp_test.c; prefix tn_): a listening socket on 127.0.0.1, an accept loop
 * on goroutines handing each connection to the test's serve function, and
 * a forked helper answering inside a network namespace of its own.
 */
#ifndef MOONSHIM_TESTNET_H
#define MOONSHIM_TESTNET_H

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>

#define TN_IO_TIMEOUT (5000 * 1000000LL) /* a server's deadline per read or write */

typedef struct tn_server tn_server;

/* One accepted connection; req/len: room for what serve reads. */
typedef struct tn_conn {
	tn_server *s;
	int fd;
	rt_pollfd *pd;
	char req[8192];
	size_t len;
} tn_conn;

struct tn_server {
	int fd, port;
	rt_pollfd *pd;
	rt_waitgroup wg;           /* the accept loop and each connection */
	int accepted, live;        /* connections so far, and open now (atomics) */
	void (*serve)(tn_conn *c); /* on the connection's goroutine; it is closed after */
	/* a slow server (atomic; 0: none): it counts a connection this long
	 * after accepting it, and closes it this long after serve returns */
	int64_t slow_ns;
};

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel. */
int tn_listen_local(int *port);

/* A port on 127.0.0.1 that refuses connections: bound, never listening
 * (close *fd after). */
int tn_refusing_port(int *fd);

/* Listen and accept on goroutines, each connection given to serve. */
void tn_server_start(tn_server *s, void (*serve)(tn_conn *c));
/* Stop accepting and close the listening socket (connects are refused
 * from then on); with `wait`, also wait for every connection to end. */
void tn_server_stop(tn_server *s, bool wait);

/* All n bytes to the client: 0, or -errno once it is gone (no SIGPIPE). */
int tn_send(tn_conn *c, const void *p, size_t n);
int tn_send_str(tn_conn *c, const char *s);
/* Wait (up to a second) until the server has n connections open; the
 * case fails if it does not. */
void tn_wait_live(tn_server *s, int n);
/* Wait (up to a second) until the server has accepted `accepted`
 * connections and has `live` of them open. A connection is counted live
 * before accepted, and its socket is closed before it stops being live,
 * so once both match every socket the server holds is one of the live
 * ones (tn_wait_live alone cannot tell one connection that ended and
 * another that began from neither). */
void tn_wait_conns(tn_server *s, int accepted, int live);
/* Read until the peer closes (or TN_IO_TIMEOUT). */
void tn_wait_eof(tn_conn *c);

/* Fork a helper into a new network namespace with lo up, listening on
 * 127.0.0.1; per connection it reads once, writes `reply` and closes.
 * Then run main(&netns) as the main goroutine on 2 P's and kill the
 * helper. Without CAP_SYS_ADMIN it says "skipped" and runs nothing. */
typedef struct {
	pid_t pid;
	int port;
	int fd; /* its /proc/PID/ns/net, open while main runs */
} tn_netns;
void tn_with_netns(const char *reply, int (*main)(void *netns));

#endif
