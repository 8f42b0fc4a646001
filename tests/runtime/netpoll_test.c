/* netpoll_test.c — goroutines park on fds, not threads: pipes, deadlines,
 * TCP and socketpairs, close wakes waiters, and EPOLLPRI on a real cgroup
 * file (cgroup.events) wakes a waiter when the cgroup becomes populated. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static rt_pollfd *open_nb(int fd) {
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	int err = 0;
	rt_pollfd *pd = rt_poll_open(fd, &err);
	CHECKF(pd, "rt_poll_open: %s", strerror(-err));
	return pd;
}

/* ─── pipes ──────────────────────────────────────────────────────────── */

#define BULK (4 << 20)
static rt_pollfd *pr, *pw;

static void bulk_writer(void *arg) {
	static unsigned char buf[65536];
	for (size_t off = 0; off < BULK; off += sizeof buf) {
		for (size_t i = 0; i < sizeof buf; i++)
			buf[i] = (unsigned char)((off + i) * 7);
		CHECK(rt_write(pw, buf, sizeof buf, RT_FOREVER) == (ssize_t)sizeof buf);
	}
	int fd = rt_poll_fd(pw);
	rt_poll_close(pw); /* before close(): see rt.h */
	close(fd);
}

static int pipe_main(void *arg) {
	int fds[2];
	CHECK(pipe(fds) == 0);
	pr = open_nb(fds[0]);
	pw = open_nb(fds[1]);
	rt_go(bulk_writer, NULL, "bulk-writer"); /* fills the pipe, parks on EAGAIN */
	static unsigned char buf[8192];
	size_t got = 0;
	for (;;) {
		ssize_t n = rt_read(pr, buf, sizeof buf, RT_FOREVER);
		CHECKF(n >= 0, "read: %s", strerror((int)-n));
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			CHECKF(buf[i] == (unsigned char)((got + (size_t)i) * 7), "byte %zu", got);
		got += (size_t)n;
	}
	CHECK(got == BULK);
	/* a read on an empty pipe times out at its deadline, not before */
	CHECK(pipe(fds) == 0);
	int old = rt_poll_fd(pr);
	rt_poll_close(pr);
	close(old);
	pr = open_nb(fds[0]);
	int64_t t0 = rt_now();
	CHECK(rt_read(pr, buf, 1, rt_deadline_in(50000000)) == -ETIMEDOUT);
	int64_t took = rt_now() - t0;
	CHECKF(took >= 50000000, "timed out after %lld ns", (long long)took);
	if (scaled(100) == 100)
		CHECKF(took < 250000000, "timed out after %lld ns", (long long)took);
	rt_poll_close(pr);
	close(fds[0]);
	close(fds[1]);
	return 0;
}
TEST(netpoll_pipe_bulk_and_deadline) {
	run_rt(2, pipe_main, NULL);
}

static void late_writer(void *arg) {
	rt_sleep(20000000);
	CHECK(write(*(int *)arg, "x", 1) == 1);
}

static int wake_main(void *arg) {
	int fds[2];
	CHECK(pipe(fds) == 0);
	rt_pollfd *r = open_nb(fds[0]);
	rt_go(late_writer, &fds[1], "late-writer");
	char c;
	CHECK(rt_read(r, &c, 1, rt_deadline_in(5000000000LL)) == 1 && c == 'x');
	rt_poll_close(r);
	close(fds[0]);
	close(fds[1]);
	return 0;
}
TEST(netpoll_parked_reader_woken_by_write) {
	run_rt(1, wake_main, NULL);
}

/* ─── close wakes a waiter ───────────────────────────────────────────── */

static void closer(void *arg) {
	rt_sleep(10000000);
	rt_poll_close(arg);
}

static int close_main(void *arg) {
	int fds[2];
	CHECK(pipe(fds) == 0);
	rt_pollfd *r = open_nb(fds[0]);
	rt_go(closer, r, "closer");
	char c;
	CHECK(rt_read(r, &c, 1, RT_FOREVER) == -ECANCELED);
	close(fds[0]);
	close(fds[1]);
	return 0;
}
TEST(netpoll_close_wakes_waiter) {
	run_rt(2, close_main, NULL);
}

/* ─── TCP echo with many clients; socketpair msgs ────────────────────── */

#define CLIENTS 50
static rt_pollfd *listener;
static int port;

static void echo_conn(void *arg) {
	rt_pollfd *c = arg;
	char buf[256];
	ssize_t n;
	while ((n = rt_read(c, buf, sizeof buf, rt_deadline_in(5000000000LL))) > 0)
		CHECK(rt_write(c, buf, (size_t)n, RT_FOREVER) == n);
	int fd = rt_poll_fd(c);
	rt_poll_close(c);
	close(fd);
}

static void server(void *arg) {
	for (int i = 0; i < CLIENTS; i++) {
		int fd = rt_accept(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC, RT_FOREVER);
		CHECKF(fd >= 0, "accept: %s", strerror(-fd));
		rt_go(echo_conn, open_nb(fd), "echo-conn");
	}
}

static void client(void *arg) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	rt_pollfd *c = open_nb(fd);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(rt_connect(c, (struct sockaddr *)&a, sizeof a, rt_deadline_in(5000000000LL)) == 0);
	char msg[64], back[64];
	int len = snprintf(msg, sizeof msg, "hello from client %d", (int)(intptr_t)arg);
	CHECK(rt_write(c, msg, (size_t)len, RT_FOREVER) == len);
	ssize_t got = 0;
	while (got < len) {
		ssize_t n =
		    rt_read(c, back + got, sizeof back - (size_t)got, rt_deadline_in(5000000000LL));
		CHECKF(n > 0, "read: %zd", n);
		got += n;
	}
	CHECK(memcmp(msg, back, (size_t)len) == 0);
	rt_poll_close(c);
	close(fd);
}

static int tcp_main(void *arg) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 128) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
	port = ntohs(a.sin_port);
	listener = open_nb(fd);
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	rt_go(server, NULL, "server");
	for (int i = 0; i < CLIENTS; i++)
		rt_go(client, (void *)(intptr_t)i, "client");
	/* every client finishes; then the echo goroutines see EOF */
	for (int i = 0; i < 2000 && rt_goroutines() > 1; i++)
		rt_sleep(1000000);
	CHECKF(rt_goroutines() == 1, "%d goroutines left", rt_goroutines());
	(void)wg;
	rt_poll_close(listener);
	close(fd);

	/* sendmsg/recvmsg across a socketpair */
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0);
	rt_pollfd *s0 = open_nb(sp[0]), *s1 = open_nb(sp[1]);
	char out[] = "datagram", in[32];
	struct iovec ov = {out, sizeof out}, iv = {in, sizeof in};
	struct msghdr om = {.msg_iov = &ov, .msg_iovlen = 1},
	              im = {.msg_iov = &iv, .msg_iovlen = 1};
	CHECK(rt_sendmsg(s0, &om, 0, RT_FOREVER) == (ssize_t)sizeof out);
	CHECK(rt_recvmsg(s1, &im, 0, RT_FOREVER) == (ssize_t)sizeof out && !strcmp(in, out));
	CHECK(rt_recvmsg(s1, &im, 0, rt_deadline_in(10000000)) == -ETIMEDOUT);
	rt_poll_close(s0);
	rt_poll_close(s1);
	close(sp[0]);
	close(sp[1]);
	return 0;
}
TEST(netpoll_tcp_echo_50_clients_and_msgs) {
	run_rt(2, tcp_main, NULL);
}

/* ─── EPOLLPRI: cgroup.events on the unified cgroup tree ─────────────── */

static char cg[512];
static pid_t child_pid;
static char events_after[256];
static int pri_result = 1;

static const char *cgroup2_root(void) {
	static char root[256];
	FILE *f = fopen("/proc/self/mounts", "r");
	char dev[128], dir[256], type[64];
	root[0] = 0;
	while (f && fscanf(f, "%127s %255s %63s %*[^\n]", dev, dir, type) == 3)
		if (!strcmp(type, "cgroup2")) {
			snprintf(root, sizeof root, "%s", dir);
			break;
		}
	if (f)
		fclose(f);
	return root[0] ? root : NULL;
}

static void pri_waiter(void *arg) {
	rt_pollfd *pd = arg;
	char buf[256];
	/* the first wait consumes the readiness reported at registration */
	for (int i = 0; i < 5; i++) {
		int r = rt_poll_wait(pd, RT_POLL_PRI, rt_deadline_in(3000000000LL));
		if (r == -ETIMEDOUT)
			break;
		ssize_t n = pread(rt_poll_fd(pd), buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		if (strstr(buf, "populated 1")) {
			snprintf(events_after, sizeof events_after, "%s", buf);
			pri_result = 0;
			return;
		}
	}
}

static void mover(void *arg) {
	rt_sleep(30000000); /* let the waiter park first */
	char path[600], pid[32];
	snprintf(path, sizeof path, "%s/cgroup.procs", cg);
	int fd = open(path, O_WRONLY);
	int n = snprintf(pid, sizeof pid, "%d", child_pid);
	CHECKF(fd >= 0 && write(fd, pid, (size_t)n) == n, "moving %d into %s", child_pid, cg);
	close(fd);
}

static int pri_main(void *arg) {
	char path[600];
	snprintf(path, sizeof path, "%s/cgroup.events", cg);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECKF(fd >= 0, "open %s", path);
	int err;
	rt_pollfd *pd = rt_poll_open(fd, &err);
	CHECKF(pd, "rt_poll_open(cgroup.events): %s", strerror(-err));
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	(void)wg;
	rt_go(pri_waiter, pd, "cgroup-events-waiter");
	rt_go(mover, NULL, "mover");
	for (int i = 0; i < 5000 && rt_goroutines() > 1; i++)
		rt_sleep(1000000);
	rt_poll_close(pd);
	close(fd);
	return pri_result;
}

TEST(netpoll_epollpri_cgroup_events) {
	const char *root = cgroup2_root();
	CHECKF(root, "no cgroup2 mount in /proc/self/mounts");
	snprintf(cg, sizeof cg, "%s/moonshim-test-%d", root, getpid());
	CHECKF(mkdir(cg, 0755) == 0, "mkdir %s: %s", cg, strerror(errno));
	child_pid = fork();
	if (child_pid == 0) {
		pause();
		_exit(0);
	}
	rt_config cfg = {.procs = 2};
	int r = rt_main(&cfg, pri_main, NULL);
	kill(child_pid, SIGKILL);
	waitpid(child_pid, NULL, 0);
	for (int i = 0; i < 100 && rmdir(cg) != 0; i++)
		usleep(10000); /* the kernel may see it populated a moment longer */
	CHECKF(r == 0, "no EPOLLPRI wake-up with populated 1 on %s/cgroup.events", cg);
	CHECK(strstr(events_after, "populated 1"));
	CHECK(rt_exit_leaks() == 0);
}
