/*
 * tty.c — the pty relay: the supervisor's stdin to the container's pty
 * master, the master to the supervisor's stdout, each direction one
 * goroutine on the netpoller.
 *
 * The relay ends with the output side: the master reads EIO (Linux) or EOF
 * once no process holds the slave, after the data still queued in the pty
 * has been read. The input side never ends the relay: stdin at EOF just
 * stops being read (a pty has no EOF to pass on outside canonical mode).
 * When the output side is done, the input goroutine — parked reading
 * stdin or writing to a full pty — is evicted from the netpoller.
 *
 * What the relay changes it puts back, on every path out: O_NONBLOCK on
 * the three fds (stdin and stdout usually share one open file description
 * with the shell that started us; leaving it non-blocking would break the
 * shell), and the termios of a terminal stdin (raw mode).
 *
 * fds epoll refuses (a regular file, /dev/null) are read or written
 * directly, bracketed by rt_syscall_enter/exit: they never wait for a
 * peer, only maybe for a disk.
 */
#define _GNU_SOURCE
#include "tty.h"

#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define RELAY_CHUNK (16 * 1024) /* a pty moves at most a few KiB per read */

typedef struct {
	int fd;
	int flags;     /* file status flags before the relay; -1 until saved */
	rt_pollfd *pd; /* NULL: epoll refuses the fd, use it directly */
} end;

struct tty_relay {
	end master, in, out;
	bool raw; /* in is a terminal we put in raw mode */
	struct termios saved;
	rt_waitgroup in_done, out_done;
	char in_buf[RELAY_CHUNK], out_buf[RELAY_CHUNK];
};

/* errno afresh: a goroutine may resume on another thread, and the compiler
 * may have kept errno's thread-local address from before (rt.h). */
__attribute__((noinline)) static int tty__errno(void) {
	__asm__ volatile("" ::: "memory");
	return errno;
}

/* ─── window size ────────────────────────────────────────────────────── */

int tty_set_size(int master, unsigned short rows, unsigned short cols) {
	struct winsize ws = {.ws_row = rows, .ws_col = cols};
	return ioctl(master, TIOCSWINSZ, &ws) == 0 ? 0 : -tty__errno();
}

int tty_resize(int master, int from_fd) {
	struct winsize ws;
	if (ioctl(from_fd, TIOCGWINSZ, &ws) != 0 || ioctl(master, TIOCSWINSZ, &ws) != 0)
		return -tty__errno();
	return 0;
}

/* ─── the fds ────────────────────────────────────────────────────────── */

/* Make e->fd non-blocking and register it, or note that epoll refuses it
 * (EPERM). Flags were saved before any end was touched: stdin and stdout
 * may share one file description. -errno. */
static int end_open(end *e) {
	if (fcntl(e->fd, F_SETFL, e->flags | O_NONBLOCK) != 0)
		return -tty__errno();
	int rc = 0;
	e->pd = rt_poll_open(e->fd, &rc);
	return e->pd || rc == -EPERM ? 0 : rc;
}

static void end_close(end *e) {
	rt_poll_close(e->pd);
	e->pd = NULL;
}

static void end_restore(end *e) {
	if (e->flags >= 0)
		fcntl(e->fd, F_SETFL, e->flags);
}

__attribute__((noinline)) static ssize_t direct_io(int fd, void *buf, size_t n, bool wr) {
	rt_syscall_enter();
	ssize_t r;
	do
		r = wr ? write(fd, buf, n) : read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		r = -tty__errno();
	rt_syscall_exit();
	return r;
}

static ssize_t end_read(end *e, void *buf, size_t n) {
	return e->pd ? rt_read(e->pd, buf, n, RT_FOREVER) : direct_io(e->fd, buf, n, false);
}

/* All n bytes, or -errno. */
static ssize_t end_write(end *e, const char *buf, size_t n) {
	if (e->pd)
		return rt_write(e->pd, buf, n, RT_FOREVER);
	for (size_t done = 0; done < n;) {
		ssize_t r = direct_io(e->fd, (char *)buf + done, n - done, true);
		if (r < 0)
			return r;
		done += (size_t)r;
	}
	return (ssize_t)n;
}

/* ─── the two directions ─────────────────────────────────────────────── */

/* stdin → master, until stdin ends or fails, the master fails, or the
 * relay evicts us. */
static void copy_in(void *arg) {
	tty_relay *r = arg;
	for (;;) {
		ssize_t n = end_read(&r->in, r->in_buf, sizeof r->in_buf);
		if (n <= 0 || end_write(&r->master, r->in_buf, (size_t)n) < 0)
			break;
	}
	rt_wg_done(&r->in_done);
}

/* master → stdout, until the container's side is gone. If stdout fails,
 * keep reading (and dropping) so the container never blocks on us. */
static void copy_out(void *arg) {
	tty_relay *r = arg;
	bool out_ok = true;
	for (;;) {
		ssize_t n = end_read(&r->master, r->out_buf, sizeof r->out_buf);
		if (n <= 0)
			break; /* EIO: no slave left; EOF */
		if (out_ok && end_write(&r->out, r->out_buf, (size_t)n) < 0)
			out_ok = false;
	}
	rt_wg_done(&r->out_done);
}

/* ─── API ────────────────────────────────────────────────────────────── */

/* Undo what start did, in reverse: the netpoller, the flags, the mode. */
static void relay_undo(tty_relay *r) {
	end *ends[3] = {&r->master, &r->in, &r->out};
	for (int i = 0; i < 3; i++)
		end_close(ends[i]);
	for (int i = 0; i < 3; i++)
		end_restore(ends[i]);
	if (r->raw)
		tcsetattr(r->in.fd, TCSANOW, &r->saved);
	free(r);
}

tty_relay *tty_relay_start(int master, int in_fd, int out_fd, ms_err *err) {
	tty_relay *r = calloc(1, sizeof *r);
	if (!r) {
		ms_fail(err, -ENOMEM, "tty relay: out of memory");
		return NULL;
	}
	r->master = (end){.fd = master, .flags = -1};
	r->in = (end){.fd = in_fd, .flags = -1};
	r->out = (end){.fd = out_fd, .flags = -1};
	end *ends[3] = {&r->master, &r->in, &r->out};
	static const char *const names[3] = {"pty master", "stdin", "stdout"};
	for (int i = 0; i < 3; i++) {
		int fl = fcntl(ends[i]->fd, F_GETFL);
		if (fl < 0) {
			int e = tty__errno();
			ms_fail(err, -e, "tty relay: %s (fd %d): %s", names[i], ends[i]->fd,
			        strerror(e));
			relay_undo(r);
			return NULL;
		}
		ends[i]->flags = fl;
	}
	for (int i = 0; i < 3; i++) {
		int rc = end_open(ends[i]);
		if (rc) {
			ms_fail(err, rc, "tty relay: polling %s (fd %d): %s", names[i], ends[i]->fd,
			        strerror(-rc));
			relay_undo(r);
			return NULL;
		}
	}
	if (!r->master.pd) {
		ms_fail(err, -EINVAL, "tty relay: fd %d is no pty master", master);
		relay_undo(r);
		return NULL;
	}
	if (isatty(in_fd) && tcgetattr(in_fd, &r->saved) == 0) {
		struct termios raw = r->saved;
		cfmakeraw(&raw);
		if (tcsetattr(in_fd, TCSANOW, &raw) != 0) {
			int e = tty__errno();
			ms_fail(err, -e, "tty relay: raw mode on stdin: %s", strerror(e));
			relay_undo(r);
			return NULL;
		}
		r->raw = true;
	}
	if (tty_resize(master, in_fd) != 0)
		tty_resize(master, out_fd); /* neither a terminal: the pty keeps its size */
	r->in_done = (rt_waitgroup)RT_WAITGROUP_INIT;
	r->out_done = (rt_waitgroup)RT_WAITGROUP_INIT;
	rt_wg_add(&r->in_done, 1);
	rt_go(copy_in, r, "tty stdin");
	rt_wg_add(&r->out_done, 1);
	rt_go(copy_out, r, "tty stdout");
	return r;
}

void tty_relay_wait(tty_relay *r) {
	rt_wg_wait(&r->out_done);
	rt_poll_evict(r->in.pd); /* copy_in may be parked on either */
	rt_poll_evict(r->master.pd);
	rt_wg_wait(&r->in_done);
	relay_undo(r);
}
