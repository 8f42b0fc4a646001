/* testnet.c — testnet.h's servers. */
#define _GNU_SOURCE
#include "testnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define LISTEN_BACKLOG 4096 /* 1,000 clients connect at once */

int tn_listen_local(int *port) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	CHECK(listen(fd, LISTEN_BACKLOG) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

int tn_refusing_port(int *fd) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	CHECK((*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	CHECK(bind(*fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	CHECK(getsockname(*fd, (struct sockaddr *)&sa, &len) == 0);
	return ntohs(sa.sin_port);
}

static void slow(tn_server *s) {
	int64_t ns = __atomic_load_n(&s->slow_ns, __ATOMIC_SEQ_CST);
	if (ns)
		rt_sleep(ns);
}

static void conn_main(void *arg) {
	tn_conn *c = arg;
	c->s->serve(c);
	slow(c->s);
	rt_poll_close(c->pd);
	close(c->fd);
	__atomic_sub_fetch(&c->s->live, 1, __ATOMIC_SEQ_CST);
	rt_wg_done(&c->s->wg);
	free(c);
}

static void accept_main(void *arg) {
	tn_server *s = arg;
	for (;;) {
		int fd = rt_accept(s->pd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC, RT_FOREVER);
		if (fd == -ECANCELED)
			break;
		if (fd < 0)
			continue;
		tn_conn *c = calloc(1, sizeof *c);
		int err;
		c->s = s;
		c->fd = fd;
		CHECK((c->pd = rt_poll_open(fd, &err)));
		slow(s);
		/* live first: tn_wait_conns relies on the order */
		__atomic_add_fetch(&s->live, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&s->accepted, 1, __ATOMIC_SEQ_CST);
		rt_wg_add(&s->wg, 1);
		rt_go(conn_main, c, "test server conn");
	}
	rt_wg_done(&s->wg);
}

void tn_server_start(tn_server *s, void (*serve)(tn_conn *c)) {
	int err, port, fd = tn_listen_local(&port);
	*s = (tn_server){.fd = fd, .port = port, .serve = serve};
	CHECK((s->pd = rt_poll_open(s->fd, &err)));
	rt_wg_add(&s->wg, 1);
	rt_go(accept_main, s, "test server");
}

void tn_server_stop(tn_server *s, bool wait) {
	rt_poll_evict(s->pd);
	if (wait)
		rt_wg_wait(&s->wg);
	rt_poll_close(s->pd);
	close(s->fd);
}

int tn_send(tn_conn *c, const void *p, size_t n) {
	while (n) {
		struct iovec iov = {(void *)p, n};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t w = rt_sendmsg(c->pd, &m, 0, rt_deadline_in(TN_IO_TIMEOUT));
		if (w < 0)
			return (int)w;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

int tn_send_str(tn_conn *c, const char *s) {
	return tn_send(c, s, strlen(s));
}

void tn_wait_live(tn_server *s, int n) {
	for (int i = 0; i < 200 && __atomic_load_n(&s->live, __ATOMIC_SEQ_CST) != n; i++)
		rt_sleep(5 * 1000000LL);
	CHECKF(s->live == n, "the server has %d connections open, not %d", s->live, n);
}

void tn_wait_conns(tn_server *s, int accepted, int live) {
	for (int i = 0; i < 200 && (__atomic_load_n(&s->accepted, __ATOMIC_SEQ_CST) != accepted ||
	                            __atomic_load_n(&s->live, __ATOMIC_SEQ_CST) != live);
	     i++)
		rt_sleep(5 * 1000000LL);
	CHECKF(s->accepted == accepted && s->live == live,
	       "the server has accepted %d connections and has %d open, not %d and %d", s->accepted,
	       s->live, accepted, live);
}

void tn_wait_eof(tn_conn *c) {
	char b[256];
	while (rt_read(c->pd, b, sizeof b, rt_deadline_in(TN_IO_TIMEOUT)) > 0)
		;
}

/* The forked helper: its port goes to `ready`, then it serves forever. */
static void netns_child(int ready, const char *reply) {
	if (unshare(CLONE_NEWNET) < 0)
		_exit(2);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		_exit(3);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		_exit(4);
	int port, lfd = tn_listen_local(&port);
	fcntl(lfd, F_SETFL, 0);
	if (write(ready, &port, sizeof port) != sizeof port)
		_exit(5);
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		char buf[4096];
		if (c < 0)
			_exit(6);
		(void)!read(c, buf, sizeof buf);
		(void)!write(c, reply, strlen(reply));
		close(c);
	}
}

void tn_with_netns(const char *reply, int (*main)(void *netns)) {
	int p[2];
	CHECK(pipe(p) == 0);
	tn_netns a = {.pid = fork()};
	CHECK(a.pid >= 0);
	if (a.pid == 0) {
		close(p[0]);
		netns_child(p[1], reply);
	}
	close(p[1]);
	int got = (int)read(p[0], &a.port, sizeof a.port);
	close(p[0]);
	if (got != sizeof a.port) { /* no CAP_SYS_ADMIN here: nothing to test */
		int st;
		waitpid(a.pid, &st, 0);
		fprintf(stderr,
		        "skipped: the helper could not make a network namespace (exit %d)\n",
		        WEXITSTATUS(st));
		return;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/net", a.pid);
	CHECK((a.fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	run_rt(2, main, &a);
	close(a.fd);
	kill(a.pid, SIGKILL);
	waitpid(a.pid, NULL, 0);
}
