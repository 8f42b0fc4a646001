/*
 * io.c — read/write/accept/connect/recvmsg/sendmsg that park the goroutine
 * on the netpoller instead of blocking the thread. The fd must be
 * non-blocking; each call tries the syscall first and waits only on EAGAIN
 * (the netpoller is edge-triggered). Errors come back as -errno.
 */
#define _GNU_SOURCE
#include "rt_internal.h"

#include <errno.h>
#include <unistd.h>

int rt__errno(void);

/* Run `call` until it stops saying EAGAIN/EINTR, waiting for `mode`. */
#define RT_IO_LOOP(call, mode)                                                                     \
	for (;;) {                                                                                 \
		ssize_t r_ = (call);                                                               \
		if (r_ >= 0)                                                                       \
			return r_;                                                                 \
		int e_ = rt__errno();                                                              \
		if (e_ == EINTR)                                                                   \
			continue;                                                                  \
		if (e_ != EAGAIN && e_ != EWOULDBLOCK)                                             \
			return -e_;                                                                \
		int w_ = rt_poll_wait(pd, (mode), deadline);                                       \
		if (w_)                                                                            \
			return w_;                                                                 \
	}

ssize_t rt_read(rt_pollfd *pd, void *buf, size_t n,
                int64_t deadline){RT_IO_LOOP(read(rt_poll_fd(pd), buf, n), RT_POLL_READ)}

ssize_t rt_write(rt_pollfd *pd, const void *buf, size_t n, int64_t deadline) {
	size_t done = 0;
	while (done < n) {
		ssize_t r = write(rt_poll_fd(pd), (const char *)buf + done, n - done);
		if (r >= 0) {
			done += (size_t)r;
			continue;
		}
		int e = rt__errno();
		if (e == EINTR)
			continue;
		if (e != EAGAIN && e != EWOULDBLOCK)
			return -e;
		int w = rt_poll_wait(pd, RT_POLL_WRITE, deadline);
		if (w)
			return w;
	}
	return (ssize_t)done;
}

int rt_accept(rt_pollfd *pd, struct sockaddr *addr, socklen_t *len, int flags,
              int64_t deadline){RT_IO_LOOP(accept4(rt_poll_fd(pd), addr, len, flags), RT_POLL_READ)}

ssize_t rt_recvmsg(rt_pollfd *pd, struct msghdr *msg, int flags,
                   int64_t deadline){RT_IO_LOOP(recvmsg(rt_poll_fd(pd), msg, flags), RT_POLL_READ)}

ssize_t rt_sendmsg(rt_pollfd *pd, const struct msghdr *msg, int flags, int64_t deadline) {
	RT_IO_LOOP(sendmsg(rt_poll_fd(pd), msg, flags | MSG_NOSIGNAL), RT_POLL_WRITE)
}

int rt_connect(rt_pollfd *pd, const struct sockaddr *addr, socklen_t len, int64_t deadline) {
	int fd = rt_poll_fd(pd);
	if (connect(fd, addr, len) == 0)
		return 0;
	int e = rt__errno();
	if (e != EINPROGRESS && e != EAGAIN && e != EINTR)
		return -e;
	int w = rt_poll_wait(pd, RT_POLL_WRITE, deadline);
	if (w)
		return w;
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
		return -rt__errno();
	return -soerr;
}
