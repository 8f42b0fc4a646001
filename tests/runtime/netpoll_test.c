/* netpoll_test.c — goroutines park on fds and wake on readiness, deadline or rt_poll_close. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define MS 1000000LL

/* ─── helpers ────────────────────────────────────────────────────────── */

/* Make fd non-blocking and register it with the netpoller. */
static rt_pollfd *np_open(int fd) {
	CHECKF(fd >= 0, "bad fd %d", fd);
	int fl = fcntl(fd, F_GETFL);
	CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
	int err = 0;
	rt_pollfd *pd = rt_poll_open(fd, &err);
	CHECKF(pd, "rt_poll_open(%d): %s", fd, strerror(-err));
	return pd;
}

/* Deregister before close (rt.h: epoll knows fds by number). */
static void np_close(rt_pollfd *pd) {
	int fd = rt_poll_fd(pd);
	rt_poll_close(pd);
	close(fd);
}

/* How late a wake-up may be on a noisy machine (more under sanitizers/qemu). */
static int64_t np_slack(void) {
	return scaled(100) == 100 ? 150 * MS : 1000 * MS;
}

/* True once rt_leak_report shows goroutine `label` blocked in `reason`
 * (polled for up to 3 s): proof that it parked rather than spun. */
static bool np_parked(const char *label, const char *reason) {
	char l[128], r[64];
	snprintf(l, sizeof l, "\"%s\"", label);
	snprintf(r, sizeof r, "[%s,", reason);
	const size_t size = 1 << 20;
	char *buf = malloc(size);
	CHECK(buf);
	bool found = false;
	for (int i = 0; i < 3000 && !found; i++) {
		if (i)
			rt_sleep(1 * MS);
		int fd = memfd_create("leak-report", MFD_CLOEXEC);
		CHECK(fd >= 0);
		rt_leak_report(fd);
		ssize_t n = pread(fd, buf, size - 1, 0);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		char *save = NULL;
		for (char *line = strtok_r(buf, "\n", &save); line && !found;
		     line = strtok_r(NULL, "\n", &save))
			found = strstr(line, l) && strstr(line, r);
	}
	free(buf);
	return found;
}

/* ─── pipes: a parked reader wakes on a later write ──────────────────── */

typedef struct {
	rt_pollfd *r, *w;
	int64_t wrote_at, read_at;
	ssize_t got;
	char buf[16];
	rt_waitgroup wg;
	rt_chan *seen; /* closed once main saw the reader parked */
} wake_state;

static void wake_reader(void *arg) {
	wake_state *s = arg;
	s->got = rt_read(s->r, s->buf, sizeof s->buf, rt_deadline_in(5000 * MS));
	s->read_at = rt_now();
	rt_wg_done(&s->wg);
}

static void wake_writer(void *arg) {
	wake_state *s = arg;
	/* after main saw the reader parked: a fixed sleep alone let a loaded
	 * TSan run write (and wake the reader) before main had looked */
	int64_t v;
	rt_chan_recv(s->seen, &v);
	rt_sleep(30 * MS);
	s->wrote_at = rt_now();
	CHECK(rt_write(s->w, "wake up", 7, rt_deadline_in(5000 * MS)) == 7);
	rt_wg_done(&s->wg);
}

static int wake_main(void *arg) {
	int fds[2];
	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	wake_state s = {.r = np_open(fds[0]),
	                .w = np_open(fds[1]),
	                .wg = RT_WAITGROUP_INIT,
	                .seen = rt_chan_new(sizeof(int64_t), 0)};
	rt_wg_add(&s.wg, 2);
	rt_go(wake_reader, &s, "pipe-reader");
	rt_go(wake_writer, &s, "pipe-writer");
	CHECKF(np_parked("pipe-reader", "IO wait"), "the reader never parked in IO wait");
	rt_chan_close(s.seen);
	rt_wg_wait(&s.wg);
	rt_chan_free(s.seen);
	CHECKF(s.got == 7 && !memcmp(s.buf, "wake up", 7), "rt_read returned %zd", s.got);
	CHECKF(s.read_at >= s.wrote_at, "the reader returned %lld us before the write",
	       (long long)(s.wrote_at - s.read_at) / 1000);
	CHECKF(s.read_at - s.wrote_at < np_slack(), "the reader woke %lld ms after the write",
	       (long long)(s.read_at - s.wrote_at) / MS);
	np_close(s.r);
	np_close(s.w);
	return 0;
}

/* On one P the writer's sleep can only end if the reader really parked. */
TEST(netpoll_pipe_reader_woken_by_later_write_1p) {
	run_rt(1, wake_main, NULL);
}
TEST(netpoll_pipe_reader_woken_by_later_write_2p) {
	run_rt(2, wake_main, NULL);
}

/* ─── pipes: 4 MiB through a writer that fills the pipe ─────────────── */

#define BULK_TOTAL ((size_t)4 << 20)
#define BULK_CHUNK ((size_t)256 << 10) /* 4x the pipe: every rt_write hits EAGAIN */

static unsigned char bulk_byte(size_t off) {
	return (unsigned char)(off * 131 + (off >> 13));
}

typedef struct {
	rt_pollfd *r, *w;
	int chunks_written;
	rt_waitgroup wg;
} bulk_state;

static void bulk_writer(void *arg) {
	bulk_state *s = arg;
	unsigned char *buf = malloc(BULK_CHUNK);
	CHECK(buf);
	for (size_t off = 0; off < BULK_TOTAL; off += BULK_CHUNK) {
		for (size_t i = 0; i < BULK_CHUNK; i++)
			buf[i] = bulk_byte(off + i);
		ssize_t n = rt_write(s->w, buf, BULK_CHUNK, rt_deadline_in(10000 * MS));
		CHECKF(n == (ssize_t)BULK_CHUNK, "rt_write returned %zd (%s) at offset %zu", n,
		       n < 0 ? strerror((int)-n) : "short", off);
		__atomic_add_fetch(&s->chunks_written, 1, __ATOMIC_RELEASE);
	}
	free(buf);
	np_close(s->w); /* the reader sees EOF */
	rt_wg_done(&s->wg);
}

static int bulk_main(void *arg) {
	int fds[2];
	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	int pipe_size = fcntl(fds[0], F_GETPIPE_SZ);
	CHECK(pipe_size > 0);
	bulk_state s = {.r = np_open(fds[0]), .w = np_open(fds[1]), .wg = RT_WAITGROUP_INIT};
	rt_wg_add(&s.wg, 1);
	rt_go(bulk_writer, &s, "bulk-writer");
	/* nobody reads yet: the writer fills the pipe and must park on EAGAIN */
	CHECKF(np_parked("bulk-writer", "IO wait"), "the writer never parked on a full pipe");
	int queued = 0;
	CHECK(ioctl(fds[0], FIONREAD, &queued) == 0);
	CHECKF(queued == pipe_size, "%d bytes in a %d-byte pipe while the writer is parked", queued,
	       pipe_size);
	CHECK(__atomic_load_n(&s.chunks_written, __ATOMIC_ACQUIRE) == 0);

	unsigned char *buf = malloc(70000);
	CHECK(buf);
	size_t got = 0, want = 1;
	for (;;) {
		ssize_t n = rt_read(s.r, buf, want, rt_deadline_in(10000 * MS));
		CHECKF(n >= 0, "rt_read at %zu: %s", got, strerror((int)-n));
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			CHECKF(buf[i] == bulk_byte(got + (size_t)i), "byte %zu is %u, want %u",
			       got + (size_t)i, buf[i], bulk_byte(got + (size_t)i));
		got += (size_t)n;
		want = want * 7 % 69997 + 1; /* odd read sizes, 1 B .. ~68 KiB */
	}
	free(buf);
	CHECKF(got == BULK_TOTAL, "read %zu of %zu bytes", got, BULK_TOTAL);
	rt_wg_wait(&s.wg);
	CHECK(s.chunks_written == (int)(BULK_TOTAL / BULK_CHUNK));
	np_close(s.r);
	return 0;
}

/* One P: if rt_write spun on EAGAIN instead of parking, the reader would
 * never run and this would hang. */
TEST(netpoll_pipe_4mib_writer_parks_on_full_pipe_1p) {
	run_rt(1, bulk_main, NULL);
}
TEST(netpoll_pipe_4mib_writer_parks_on_full_pipe_2p) {
	run_rt(2, bulk_main, NULL);
}

/* ─── deadlines ──────────────────────────────────────────────────────── */

#define STAGGERED 5

typedef struct {
	rt_pollfd *pd;
	int64_t deadline, returned_at;
	ssize_t r;
	rt_waitgroup *wg;
} staggered_reader;

static void staggered(void *arg) {
	staggered_reader *s = arg;
	char c;
	s->r = rt_read(s->pd, &c, 1, s->deadline);
	s->returned_at = rt_now();
	rt_wg_done(s->wg);
}

static int deadline_main(void *arg) {
	int fds[2];
	char c;
	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	rt_pollfd *r = np_open(fds[0]), *w = np_open(fds[1]);

	/* an empty pipe: -ETIMEDOUT at the deadline, not before, not much after */
	int64_t dl = rt_now() + 50 * MS;
	ssize_t n = rt_read(r, &c, 1, dl);
	int64_t at = rt_now();
	CHECKF(n == -ETIMEDOUT, "rt_read on an empty pipe returned %zd", n);
	CHECKF(at >= dl, "timed out %lld us before the deadline", (long long)(dl - at) / 1000);
	CHECKF(at - dl < np_slack(), "timed out %lld ms after the deadline",
	       (long long)(at - dl) / MS);

	/* a deadline in the past does not wait, but data already there wins */
	int64_t t0 = rt_now();
	CHECK(rt_read(r, &c, 1, 0) == -ETIMEDOUT);
	CHECK(rt_poll_wait(r, RT_POLL_READ, t0 - 1) == -ETIMEDOUT);
	CHECKF(rt_now() - t0 < np_slack(), "a past deadline waited %lld ms",
	       (long long)(rt_now() - t0) / MS);
	CHECK(write(fds[1], "y", 1) == 1);
	CHECK(rt_read(r, &c, 1, 0) == 1 && c == 'y');

	/* a full pipe: rt_write times out too, and the fd stays usable */
	static char junk[4096];
	while (write(fds[1], junk, sizeof junk) > 0)
		;
	dl = rt_now() + 30 * MS;
	n = rt_write(w, "z", 1, dl);
	at = rt_now();
	CHECKF(n == -ETIMEDOUT, "rt_write on a full pipe returned %zd", n);
	CHECKF(at >= dl && at - dl < np_slack(), "write timed out %lld us from the deadline",
	       (long long)(at - dl) / 1000);
	while (read(fds[0], junk, sizeof junk) > 0)
		;
	CHECK(rt_write(w, "ok", 2, rt_deadline_in(1000 * MS)) == 2);
	char two[2];
	CHECK(rt_read(r, two, 2, rt_deadline_in(1000 * MS)) == 2 && !memcmp(two, "ok", 2));
	np_close(r);
	np_close(w);

	/* staggered deadlines on separate pipes each fire on time */
	int sfd[STAGGERED][2];
	staggered_reader sr[STAGGERED];
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	rt_wg_add(&wg, STAGGERED);
	int64_t base = rt_now();
	for (int i = 0; i < STAGGERED; i++) {
		CHECK(pipe2(sfd[i], O_CLOEXEC) == 0);
		/* reverse order: the latest deadline parks first */
		sr[i] = (staggered_reader){.pd = np_open(sfd[i][0]),
		                           .deadline = base + (STAGGERED - i) * 15 * MS,
		                           .wg = &wg};
		rt_go(staggered, &sr[i], "staggered-reader");
	}
	rt_wg_wait(&wg);
	for (int i = 0; i < STAGGERED; i++) {
		CHECKF(sr[i].r == -ETIMEDOUT, "reader %d returned %zd", i, sr[i].r);
		CHECKF(sr[i].returned_at >= sr[i].deadline, "reader %d woke %lld us early", i,
		       (long long)(sr[i].deadline - sr[i].returned_at) / 1000);
		CHECKF(sr[i].returned_at - sr[i].deadline < np_slack(),
		       "reader %d woke %lld ms late", i,
		       (long long)(sr[i].returned_at - sr[i].deadline) / MS);
		np_close(sr[i].pd);
		close(sfd[i][1]);
	}
	return 0;
}
TEST(netpoll_deadline_times_out_on_time) {
	run_rt(2, deadline_main, NULL);
}

/* ─── rt_poll_close wakes every waiter with -ECANCELED ───────────────── */

typedef struct {
	rt_pollfd *pd;
	ssize_t rd, wr;
	int pri;
	int64_t closed_at, rd_at, wr_at, pri_at;
	rt_waitgroup wg;
} cancel_state;

static void cancel_reader(void *arg) {
	cancel_state *s = arg;
	char c;
	s->rd = rt_read(s->pd, &c, 1, RT_FOREVER);
	s->rd_at = rt_now();
	rt_wg_done(&s->wg);
}

static void cancel_writer(void *arg) {
	cancel_state *s = arg;
	static char big[1 << 20];
	s->wr = rt_write(s->pd, big, sizeof big, RT_FOREVER); /* more than the buffer */
	s->wr_at = rt_now();
	rt_wg_done(&s->wg);
}

static void cancel_pri(void *arg) {
	cancel_state *s = arg;
	s->pri = rt_poll_wait(s->pd, RT_POLL_PRI, RT_FOREVER);
	s->pri_at = rt_now();
	rt_wg_done(&s->wg);
}

static int cancel_main(void *arg) {
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	cancel_state s = {.pd = np_open(sp[0]), .wg = RT_WAITGROUP_INIT};
	rt_wg_add(&s.wg, 3);
	rt_go(cancel_reader, &s, "cancel-reader");
	rt_go(cancel_writer, &s, "cancel-writer");
	rt_go(cancel_pri, &s, "cancel-pri");
	CHECKF(np_parked("cancel-reader", "IO wait"), "reader not parked");
	CHECKF(np_parked("cancel-writer", "IO wait"), "writer not parked");
	CHECKF(np_parked("cancel-pri", "IO wait"), "PRI waiter not parked");
	s.closed_at = rt_now();
	int fd = rt_poll_fd(s.pd);
	rt_poll_close(s.pd);
	rt_wg_wait(&s.wg);
	close(fd);
	CHECKF(s.rd == -ECANCELED, "parked rt_read returned %zd", s.rd);
	CHECKF(s.wr == -ECANCELED, "parked rt_write returned %zd", s.wr);
	CHECKF(s.pri == -ECANCELED, "parked rt_poll_wait(PRI) returned %d", s.pri);
	CHECK(s.rd_at >= s.closed_at && s.wr_at >= s.closed_at && s.pri_at >= s.closed_at);
	CHECKF(s.rd_at - s.closed_at < np_slack() && s.wr_at - s.closed_at < np_slack() &&
	           s.pri_at - s.closed_at < np_slack(),
	       "slow to cancel");
	close(sp[1]);

	/* a new file that gets the same fd number works normally */
	int fds[2];
	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	rt_pollfd *r = np_open(fds[0]);
	CHECK(write(fds[1], "n", 1) == 1);
	char c;
	CHECK(rt_read(r, &c, 1, rt_deadline_in(1000 * MS)) == 1 && c == 'n');
	np_close(r);
	close(fds[1]);
	return 0;
}
TEST(netpoll_poll_close_cancels_parked_waiters) {
	run_rt(2, cancel_main, NULL);
}

/* rt_poll_evict: another goroutine stops one parked on a pd it owns; the
 * pd stays registered (later waits fail too) until its owner closes it. */
typedef struct {
	rt_pollfd *pd;
	int first, second;
	rt_waitgroup wg;
} evict_state;

static void evict_owner(void *arg) {
	evict_state *s = arg;
	s->first = rt_poll_wait(s->pd, RT_POLL_READ, RT_FOREVER);
	s->second = rt_poll_wait(s->pd, RT_POLL_READ, rt_deadline_in(1000 * MS));
	np_close(s->pd); /* the owner, not the evicter, closes */
	rt_wg_done(&s->wg);
}

static int evict_main(void *arg) {
	int fds[2];
	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	evict_state s = {.pd = np_open(fds[0]), .wg = RT_WAITGROUP_INIT};
	rt_wg_add(&s.wg, 1);
	rt_go(evict_owner, &s, "evict-owner");
	CHECKF(np_parked("evict-owner", "IO wait"), "owner not parked");
	rt_poll_evict(s.pd);
	rt_wg_wait(&s.wg);
	CHECKF(s.first == -ECANCELED, "parked wait returned %d", s.first);
	CHECKF(s.second == -ECANCELED, "wait after evict returned %d", s.second);
	close(fds[1]);
	return 0;
}
TEST(netpoll_evict_cancels_owner_without_closing) {
	run_rt(2, evict_main, NULL);
}

/* ─── sockets: an echo server with 50 concurrent clients ─────────────── */

#define ECHO_CLIENTS 50
#define ECHO_ROUNDS  4

static struct {
	int family;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	rt_pollfd *listener;
	rt_chan *start; /* closed once every client is connected */
	rt_waitgroup connected, clients, conns;
	int accepted, echoed;
} E;

static void echo_conn(void *arg) {
	rt_pollfd *c = arg;
	char buf[1024];
	for (;;) {
		ssize_t n = rt_read(c, buf, sizeof buf, rt_deadline_in(10000 * MS));
		if (n == 0)
			break;
		CHECKF(n > 0, "server read: %s", strerror((int)-n));
		CHECKF(rt_write(c, buf, (size_t)n, rt_deadline_in(10000 * MS)) == n,
		       "server write");
	}
	np_close(c);
	rt_wg_done(&E.conns);
}

static void echo_server(void *arg) {
	for (int i = 0; i < ECHO_CLIENTS; i++) {
		int fd = rt_accept(E.listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC,
		                   rt_deadline_in(10000 * MS));
		CHECKF(fd >= 0, "rt_accept: %s", strerror(-fd));
		__atomic_add_fetch(&E.accepted, 1, __ATOMIC_RELAXED);
		rt_wg_add(&E.conns, 1);
		rt_go(echo_conn, np_open(fd), "echo-conn");
	}
	rt_wg_done(&E.conns);
}

static void echo_client(void *arg) {
	int id = (int)(intptr_t)arg;
	int fd = socket(E.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	rt_pollfd *c = np_open(fd);
	int r = rt_connect(c, (struct sockaddr *)&E.addr, E.addrlen, rt_deadline_in(10000 * MS));
	CHECKF(r == 0, "client %d: rt_connect: %s", id, strerror(-r));
	rt_wg_done(&E.connected);
	CHECK(!rt_chan_recv(E.start, NULL)); /* all 50 are connected at once */
	char msg[700], back[700];
	for (int round = 0; round < ECHO_ROUNDS; round++) {
		size_t len = (size_t)snprintf(msg, sizeof msg, "client %d round %d:", id, round);
		size_t total = len + (size_t)(id * 11 + round * 29) % 600;
		for (size_t i = len; i < total; i++)
			msg[i] = (char)('a' + (i + (size_t)id) % 26);
		CHECK(rt_write(c, msg, total, rt_deadline_in(10000 * MS)) == (ssize_t)total);
		size_t got = 0;
		while (got < total) {
			ssize_t n = rt_read(c, back + got, total - got, rt_deadline_in(10000 * MS));
			CHECKF(n > 0, "client %d: read returned %zd after %zu of %zu bytes", id, n,
			       got, total);
			got += (size_t)n;
		}
		CHECKF(!memcmp(msg, back, total), "client %d round %d: wrong echo", id, round);
	}
	__atomic_add_fetch(&E.echoed, 1, __ATOMIC_RELAXED);
	np_close(c); /* its echo-conn sees EOF */
	rt_wg_done(&E.clients);
}

static int echo_main(void *arg) {
	E.family = (int)(intptr_t)arg;
	E.connected = E.clients = E.conns = (rt_waitgroup)RT_WAITGROUP_INIT;
	int lfd = socket(E.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0);
	if (E.family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&E.addr;
		*a = (struct sockaddr_in){.sin_family = AF_INET,
		                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		E.addrlen = sizeof *a;
		CHECK(bind(lfd, (struct sockaddr *)a, E.addrlen) == 0);
		CHECK(getsockname(lfd, (struct sockaddr *)a, &E.addrlen) == 0 && a->sin_port);
	} else {
		struct sockaddr_un *a = (struct sockaddr_un *)&E.addr;
		*a = (struct sockaddr_un){.sun_family = AF_UNIX};
		/* abstract name: nothing to unlink afterwards */
		int n =
		    snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "moonshim-echo-%d", getpid());
		E.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
		CHECK(bind(lfd, (struct sockaddr *)a, E.addrlen) == 0);
	}
	CHECK(listen(lfd, 128) == 0);
	E.listener = np_open(lfd);
	E.start = rt_chan_new(0, 0);
	rt_wg_add(&E.conns, 1); /* the server itself */
	rt_go(echo_server, NULL, "echo-server");
	rt_wg_add(&E.connected, ECHO_CLIENTS);
	rt_wg_add(&E.clients, ECHO_CLIENTS);
	for (int i = 0; i < ECHO_CLIENTS; i++)
		rt_go(echo_client, (void *)(intptr_t)i, "echo-client");
	rt_wg_wait(&E.connected);
	for (int i = 0; i < 5000 && __atomic_load_n(&E.accepted, __ATOMIC_RELAXED) < ECHO_CLIENTS;
	     i++)
		rt_sleep(1 * MS);
	int accepted = __atomic_load_n(&E.accepted, __ATOMIC_RELAXED);
	CHECKF(accepted == ECHO_CLIENTS, "accepted %d of %d", accepted, ECHO_CLIENTS);
	/* 50 connections served by parked goroutines, not by threads */
	rt_sched_sample smp;
	rt_sched_sample_get(&smp);
	CHECKF(smp.threads < 16, "%d threads for 50 connections", smp.threads);
	rt_chan_close(E.start);
	rt_wg_wait(&E.clients);
	rt_wg_wait(&E.conns);
	int echoed = __atomic_load_n(&E.echoed, __ATOMIC_RELAXED);
	CHECKF(echoed == ECHO_CLIENTS, "%d of %d clients got their echoes", echoed, ECHO_CLIENTS);
	np_close(E.listener);
	rt_chan_free(E.start);
	return 0;
}
TEST(netpoll_tcp_echo_50_concurrent_clients) {
	run_rt(2, echo_main, (void *)(intptr_t)AF_INET);
}
TEST(netpoll_unix_echo_50_concurrent_clients) {
	run_rt(1, echo_main, (void *)(intptr_t)AF_UNIX);
}

/* ─── sockets: sendmsg/recvmsg on a socketpair ───────────────────────── */

#define MSG_FLOOD 2000

typedef struct {
	rt_pollfd *a, *b;
	int passed_fd; /* write end of a pipe, sent with SCM_RIGHTS */
	int64_t sent_at, received_at;
	ssize_t first;
	char head[8], tail[32];
	int received_fd;
	int flood_received;
	rt_waitgroup wg;
} msg_state;

static void msg_receiver(void *arg) {
	msg_state *s = arg;
	/* parks before anything is sent; scatters one message over two buffers */
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov[2] = {{s->head, sizeof s->head}, {s->tail, sizeof s->tail}};
	struct msghdr m = {
	    .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof ctl};
	s->first = rt_recvmsg(s->b, &m, MSG_CMSG_CLOEXEC, rt_deadline_in(5000 * MS));
	s->received_at = rt_now();
	s->received_fd = -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(&s->received_fd, CMSG_DATA(c), sizeof(int));

	/* then a flood: wait until the sender is parked on a full socket */
	CHECKF(np_parked("msg-sender", "IO wait"), "the sender never parked on a full socket");
	for (int i = 0;; i++) {
		char buf[600];
		struct iovec v = {buf, sizeof buf};
		struct msghdr fm = {.msg_iov = &v, .msg_iovlen = 1};
		ssize_t n = rt_recvmsg(s->b, &fm, 0, rt_deadline_in(10000 * MS));
		CHECKF(n >= 0, "flood recvmsg: %s", strerror((int)-n));
		if (n == 0)
			break; /* the sender closed */
		int seq;
		memcpy(&seq, buf, sizeof seq);
		CHECKF(n == 100 + i % 400 && seq == i, "message %d: %zd bytes, seq %d", i, n, seq);
		for (ssize_t k = (ssize_t)sizeof seq; k < n; k++)
			CHECK(buf[k] == (char)(i + k));
		s->flood_received++;
	}
	rt_wg_done(&s->wg);
}

static void msg_sender(void *arg) {
	msg_state *s = arg;
	rt_sleep(20 * MS);
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct iovec iov[2] = {{"header::", 8}, {"payload in a second iovec", 25}};
	struct msghdr m = {
	    .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof ctl};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &s->passed_fd, sizeof(int));
	s->sent_at = rt_now();
	CHECK(rt_sendmsg(s->a, &m, 0, rt_deadline_in(5000 * MS)) == 33);

	int n = (int)scaled(MSG_FLOOD);
	for (int i = 0; i < n; i++) {
		char buf[600];
		int len = 100 + i % 400;
		memcpy(buf, &i, sizeof i);
		for (int k = (int)sizeof i; k < len; k++)
			buf[k] = (char)(i + k);
		struct iovec v = {buf, (size_t)len};
		struct msghdr fm = {.msg_iov = &v, .msg_iovlen = 1};
		ssize_t r = rt_sendmsg(s->a, &fm, 0, rt_deadline_in(10000 * MS));
		CHECKF(r == len, "flood sendmsg %d: %zd", i, r);
	}
	np_close(s->a);
	rt_wg_done(&s->wg);
}

static int msg_main(void *arg) {
	int sp[2], p[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0);
	int small = 4096;
	CHECK(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	msg_state s = {.a = np_open(sp[0]), .b = np_open(sp[1]), .passed_fd = p[1]};
	s.wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	rt_wg_add(&s.wg, 2);
	rt_go(msg_receiver, &s, "msg-receiver");
	rt_go(msg_sender, &s, "msg-sender");
	rt_wg_wait(&s.wg);
	CHECKF(s.first == 33, "rt_recvmsg returned %zd", s.first);
	CHECK(s.received_at >= s.sent_at);
	CHECKF(!memcmp(s.head, "header::", 8) && !memcmp(s.tail, "payload in a second iovec", 25),
	       "scattered message: %.8s|%.25s", s.head, s.tail);
	CHECKF(s.received_fd >= 0 && s.received_fd != p[1], "no fd passed (got %d)", s.received_fd);
	/* the passed fd is the pipe: what goes in comes out of p[0] */
	CHECK(write(s.received_fd, "via fd", 6) == 6);
	char back[8];
	CHECK(read(p[0], back, sizeof back) == 6 && !memcmp(back, "via fd", 6));
	close(s.received_fd);
	CHECKF(s.flood_received == (int)scaled(MSG_FLOOD), "%d of %ld flood messages",
	       s.flood_received, scaled(MSG_FLOOD));
	np_close(s.b);
	close(p[0]);
	close(p[1]);
	return 0;
}
TEST(netpoll_socketpair_sendmsg_recvmsg) {
	run_rt(1, msg_main, NULL);
}

/* ─── EPOLLPRI on cgroup.events (kernfs) ─────────────────────────────── */

/* /sys/fs/cgroup/unified (hybrid hosts), else any cgroup2 mount. */
static bool cgroup2_root(char *root, size_t n) {
	FILE *f = fopen("/proc/self/mounts", "r");
	if (!f)
		return false;
	char dev[256], dir[512], type[64];
	bool found = false;
	while (fscanf(f, "%255s %511s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2"))
			continue;
		if (!strcmp(dir, "/sys/fs/cgroup/unified") || !found) {
			snprintf(root, n, "%s", dir);
			found = true;
		}
		if (!strcmp(dir, "/sys/fs/cgroup/unified"))
			break;
	}
	fclose(f);
	return found;
}

typedef struct {
	int r;
	int64_t woke_at;
	char events[256];
} pri_phase;

static struct {
	char dir[600];
	pid_t child;
	int events_fd;
	rt_pollfd *pd;
	rt_chan *phases; /* pri_phase, from the waiter */
	int64_t moved_at;
	char err[2048];
	rt_waitgroup wg;
} P;

static void pri_read_events(char *buf, size_t n) {
	ssize_t r = pread(P.events_fd, buf, n - 1, 0);
	buf[r > 0 ? r : 0] = 0;
}

static void pri_waiter(void *arg) {
	for (int phase = 0; phase < 2; phase++) {
		pri_phase ph;
		memset(&ph, 0, sizeof ph);
		ph.r = rt_poll_wait(P.pd, RT_POLL_PRI, rt_deadline_in(3000 * MS));
		ph.woke_at = rt_now();
		pri_read_events(ph.events, sizeof ph.events);
		rt_chan_send(P.phases, &ph);
		if (ph.r != 0)
			break;
	}
	rt_wg_done(&P.wg);
}

static void pri_mover(void *arg) {
	if (!np_parked("cgroup-events-waiter", "IO wait")) {
		snprintf(P.err, sizeof P.err, "the PRI waiter never parked");
	} else {
		char path[700], pid[32];
		snprintf(path, sizeof path, "%s/cgroup.procs", P.dir);
		int n = snprintf(pid, sizeof pid, "%d\n", (int)P.child);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		P.moved_at = rt_now();
		if (fd < 0 || write(fd, pid, (size_t)n) != n)
			snprintf(P.err, sizeof P.err, "moving pid %d into %s: %s", (int)P.child,
			         path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	rt_wg_done(&P.wg);
}

static intptr_t pri_reap(void *arg) {
	int st;
	return waitpid(P.child, &st, 0);
}

#define PRI_FAIL(...)                                                                              \
	do {                                                                                       \
		snprintf(P.err, sizeof P.err, __VA_ARGS__);                                        \
		goto out;                                                                          \
	} while (0)

static int pri_main(void *arg) {
	char path[700], before[256];
	pri_phase ph1, ph2;
	memset(&ph1, 0, sizeof ph1);
	memset(&ph2, 0, sizeof ph2);
	snprintf(path, sizeof path, "%s/cgroup.events", P.dir);
	P.events_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (P.events_fd < 0) {
		snprintf(P.err, sizeof P.err, "open %s: %s", path, strerror(errno));
		return 1;
	}
	pri_read_events(before, sizeof before);
	int err = 0;
	P.pd = rt_poll_open(P.events_fd, &err);
	if (!P.pd) {
		snprintf(P.err, sizeof P.err, "rt_poll_open(%s): %s", path, strerror(-err));
		close(P.events_fd);
		return 1;
	}
	P.phases = rt_chan_new(sizeof(pri_phase), 2);
	P.wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	rt_wg_add(&P.wg, 2);
	rt_go(pri_waiter, NULL, "cgroup-events-waiter");
	rt_go(pri_mover, NULL, "cgroup-mover");
	rt_chan_recv(P.phases, &ph1);
	if (P.err[0])
		goto out;
	if (!strstr(before, "populated 0"))
		PRI_FAIL("a new cgroup's events before the move: %s", before);
	if (ph1.r != 0)
		PRI_FAIL("no EPOLLPRI wake-up after the move: rt_poll_wait returned %s",
		         ph1.r == -ETIMEDOUT ? "-ETIMEDOUT" : strerror(-ph1.r));
	if (ph1.woke_at < P.moved_at)
		PRI_FAIL("the PRI waiter woke %lld us before the move (registration readiness?)",
		         (long long)(P.moved_at - ph1.woke_at) / 1000);
	if (!strstr(ph1.events, "populated 1"))
		PRI_FAIL("woken, but cgroup.events says: %s", ph1.events);

	/* the child dies: populated 1 -> 0 is a second edge */
	int64_t killed_at = rt_now();
	kill(P.child, SIGKILL);
	if (rt_blocking(pri_reap, NULL) == P.child)
		P.child = 0;
	rt_chan_recv(P.phases, &ph2);
	if (ph2.r != 0)
		PRI_FAIL("no second EPOLLPRI wake-up when the cgroup emptied: %s",
		         ph2.r == -ETIMEDOUT ? "-ETIMEDOUT" : strerror(-ph2.r));
	if (ph2.woke_at < killed_at || !strstr(ph2.events, "populated 0"))
		PRI_FAIL("second wake-up: cgroup.events says: %s", ph2.events);
out:
	if (P.child > 0)
		kill(P.child, SIGKILL); /* ends phase 2 if phase 1 failed */
	rt_wg_wait(&P.wg); /* the waiter's results are buffered: it never blocks sending */
	rt_poll_close(P.pd);
	close(P.events_fd);
	rt_chan_free(P.phases);
	return P.err[0] ? 1 : 0;
}

TEST(netpoll_epollpri_cgroup_events_populated) {
	char root[512];
	CHECKF(cgroup2_root(root, sizeof root),
	       "no cgroup2 filesystem: neither /sys/fs/cgroup/unified nor any cgroup2 mount in "
	       "/proc/self/mounts; this test needs one (mount -t cgroup2 none <dir>)");
	snprintf(P.dir, sizeof P.dir, "%s/moonshim-test-%d", root, getpid());
	CHECKF(mkdir(P.dir, 0755) == 0, "mkdir %s: %s", P.dir, strerror(errno));
	fflush(NULL);
	P.child = fork();
	if (P.child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(30);
		for (;;)
			pause();
	}
	int r = 1, leaks = 0;
	if (P.child > 0) {
		rt_config cfg = {.procs = 2, .quiet_leaks = false};
		r = rt_main(&cfg, pri_main, NULL);
		leaks = rt_exit_leaks();
	} else {
		snprintf(P.err, sizeof P.err, "fork: %s", strerror(errno));
	}
	if (P.child > 0) {
		kill(P.child, SIGKILL);
		waitpid(P.child, NULL, 0);
	}
	int rm = -1;
	for (int i = 0; i < 200 && (rm = rmdir(P.dir)) != 0 && errno == EBUSY; i++)
		usleep(10000); /* the kernel may see it populated a moment longer */
	CHECKF(r == 0, "%s (cgroup %s)", P.err, P.dir);
	CHECKF(leaks == 0, "%d goroutine(s) leaked", leaks);
	CHECKF(rm == 0, "rmdir %s: %s", P.dir, strerror(errno));
}
