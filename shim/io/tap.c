/*
 * tap.c — the reader goroutine moves the child's bytes on and shows the
 * marked lines to the callback (linefind.h); the writer goroutine empties
 * the ring into the sink when the sink could not take them at once. The
 * ring's lock is held only to move indices, never across a read or write.
 *
 * Three ways to the sink, chosen once by what the sink is:
 *   - both sides pipes (containerd's FIFO, a pipe to a logger): tee(2)
 *     hands the sink the child's pages without copying them, then one
 *     read consumes the same bytes for the line scan — one copy where a
 *     plain read/write relay makes two;
 *   - a file or a device other than a terminal (2>file, /dev/null): the
 *     reader writes each read (up to 1 MiB, a whole pipe) straight to it,
 *     a blocking write that such a sink always finishes at disk speed;
 *   - another pipe or socket: written from the read buffer without
 *     waiting; what it cannot take at once goes to the ring, which the
 *     writer empties on the netpoller (a terminal: blocking writes).
 *
 * What must stay true: bytes reach the sink in order, so the reader hands
 * the sink anything itself (tee or write) only while the ring is empty;
 * the reader waits for nothing but the child's pipe and — in TAP_LOSSLESS
 * only — room in the ring (it parks on `room`, which the writer fills when
 * it frees bytes and the reader said it waits), so the child is held only
 * while the sink takes nothing; in TAP_DROP a full ring drops the new
 * bytes and counts them. The writer wakes through `kick`, a channel of
 * capacity 1 that the reader tops up without waiting; once the reader has
 * seen EOF it sets `eof` and kicks, and the writer ends when the ring is
 * empty and eof is set. A failed (or given-up) sink sets sink_failed: from
 * then on every byte is read and dropped, counted, and the reader never
 * waits for room again.
 */
#define _GNU_SOURCE
#include "tap.h"

#include "linefind.h"
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEE_MAX (1 << 30) /* as much as both pipes allow */
/* Pipes on both sides are grown to this (the default 64 KiB fills in
 * microseconds at a logger's pace, and every fill is a park and a wake):
 * fs.pipe-max-size's default, so it needs no privilege. */
#define PIPE_BYTES (1 << 20)
/* One read takes what a grown pipe holds: few large writes to the sink. */
#define READ_CHUNK PIPE_BYTES
#define BUFFER_MIN (64 * 1024)
/* Once the child is gone, how long a sink may take nothing before what
 * waits for it is dropped (so moonshim itself never hangs on a reader that
 * stopped); the wait starts afresh whenever bytes move. */
#define DRAIN_GRACE_NS (5 * 1000000000LL)
#define DRAIN_CHECK_NS (1000000000LL / 4) /* how often tap_wait looks for progress */
/* How often a congested tee path looks at the child's pipe: at a few GB/s
 * a child writes well under half of 1 MiB in this time. */
#define CONGESTED_RECHECK_NS     (100 * 1000LL)
#define CONGESTED_RECHECK_MAX_NS (50 * 1000000LL)

struct tap {
	int in_fd, out_fd, out_flags;
	/* out_pd NULL: a file or terminal epoll refuses, written directly */
	rt_pollfd *in_pd, *out_pd;
	tap_mode mode;
	bool tee;           /* both fds are pipes: the sink gets the child's pages */
	bool direct;        /* a file or a device (no terminal): the reader writes it */
	int in_high;        /* bytes in the child's pipe past which it is read into the ring */
	int64_t recheck_ns; /* hold_back's pause; reset whenever bytes move */
	char *ring;
	size_t cap, head, len; /* bytes [head, head+len) mod cap wait for the sink */
	rt_mutex mu;
	bool eof, sink_failed;
	bool want_room; /* the reader waits on `room` (TAP_LOSSLESS, ring full) */
	rt_chan *kick;
	rt_chan *room;        /* capacity 1: one send per want_room */
	rt_waitgroup wg;      /* the reader */
	rt_chan *writer_done; /* closed when the writer ends */
	lnf lines;
	tap_stats st;
	char rbuf[READ_CHUNK];
};

/* errno afresh after a goroutine may have moved threads (rt.h) */
__attribute__((noinline)) static int tap__errno(void) {
	__asm__ volatile("" ::: "memory");
	return errno;
}

static void kick(tap *t) {
	char one = 1;
	rt_case c = {.c = t->kick, .dir = RT_SEND, .elem = &one};
	rt_select(&c, 1, 0); /* full: the writer is already due to look */
}

/* Wake the reader waiting for room, if it is. t->mu held; true: send on
 * t->room after unlocking. */
static bool room_due(tap *t) {
	bool due = t->want_room;
	t->want_room = false;
	return due;
}

static void room_send(tap *t) {
	char one = 1;
	rt_chan_send(t->room, &one);
}

/* n bytes into the ring. TAP_LOSSLESS: all of them, parked on `room`
 * whenever the ring is full (the writer is kicked first); TAP_DROP: what
 * fits. A failed sink takes nothing: the bytes are dropped, counted. */
static void put(tap *t, const char *p, size_t n) {
	while (n) {
		rt_mutex_lock(&t->mu);
		size_t room = t->sink_failed ? 0 : t->cap - t->len;
		size_t keep = n < room ? n : room;
		size_t tail = (t->head + t->len) % t->cap;
		size_t first = keep < t->cap - tail ? keep : t->cap - tail;
		memcpy(t->ring + tail, p, first);
		memcpy(t->ring, p + first, keep - first);
		t->len += keep;
		p += keep;
		n -= keep;
		bool wait = n && t->mode == TAP_LOSSLESS && !t->sink_failed;
		if (n && !wait) {
			t->st.bytes_dropped += n;
			n = 0;
		}
		t->want_room = wait;
		rt_mutex_unlock(&t->mu);
		if (keep || wait)
			kick(t);
		if (wait)
			rt_chan_recv(t->room, NULL);
	}
}

/* A file or device sink: all n bytes, blocking (such a sink finishes a
 * write at disk speed); bytes written, or -errno. */
static ssize_t write_all(tap *t, const char *p, size_t n) {
	size_t off = 0;
	rt_syscall_enter();
	while (off < n) {
		ssize_t w = write(t->out_fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	int e = off < n ? tap__errno() : 0;
	rt_syscall_exit();
	return off == n ? (ssize_t)n : -(e ? e : EIO);
}

/* The n bytes just read into rbuf: straight to the sink if nothing waits
 * in the ring (a file or device: all of them, blocking; a pipe or socket:
 * what it takes without waiting), the rest to the ring. */
static void pass_on(tap *t, size_t n) {
	size_t off = 0;
	rt_mutex_lock(&t->mu);
	bool direct = (t->out_pd || t->direct) && !t->len && !t->sink_failed;
	rt_mutex_unlock(&t->mu);
	if (direct && t->direct) {
		ssize_t w = write_all(t, t->rbuf, n);
		rt_mutex_lock(&t->mu);
		if (w < 0) { /* the sink is gone: drop this, and all that comes */
			t->sink_failed = true;
			t->st.bytes_dropped += n;
		} else {
			t->st.bytes_out += n;
		}
		rt_mutex_unlock(&t->mu);
		return;
	}
	if (direct) {
		ssize_t w = write(t->out_fd, t->rbuf, n);
		if (w > 0) {
			off = (size_t)w;
			rt_mutex_lock(&t->mu);
			t->st.bytes_out += (uint64_t)w;
			rt_mutex_unlock(&t->mu);
		}
	}
	if (off < n)
		put(t, t->rbuf + off, n - off);
}

/* The k bytes tee gave the sink, read off the child's pipe for the scan.
 * false if the pipe failed (it cannot: the bytes are there). */
static bool consume_teed(tap *t, size_t k) {
	while (k) {
		ssize_t n = read(t->in_fd, t->rbuf, k < sizeof t->rbuf ? k : sizeof t->rbuf);
		if (n < 0 && tap__errno() == EINTR)
			continue;
		if (n <= 0)
			return false;
		lnf_feed(&t->lines, t->rbuf, (size_t)n);
		k -= (size_t)n;
	}
	return true;
}

/* Nothing for the sink right now? Then wait, reading nothing, while the
 * child's pipe has room: it is the first buffer (nothing dropped, the
 * child not held), and the ring only takes over once the pipe is half
 * full. true: look again (tee or the pipe's fill); false: read now. */
static bool hold_back(tap *t) {
	int queued = 0;
	if (ioctl(t->in_fd, FIONREAD, &queued) != 0 || queued == 0 || queued >= t->in_high)
		return false; /* empty: rt_read parks (and sees EOF); half full: read */
	if (rt_poll_hup(t->in_pd))
		return false; /* the child closed its end: all it wrote is read, the ring decides */
	/* woken by the child's next write (the fill may have crossed the mark)
	 * or after a pause that doubles while nothing moves: an idle child
	 * and a stuck sink cost a few wakeups a second */
	int w = rt_poll_wait(t->in_pd, RT_POLL_READ, rt_deadline_in(t->recheck_ns));
	if (w == -ETIMEDOUT && t->recheck_ns < CONGESTED_RECHECK_MAX_NS)
		t->recheck_ns *= 2;
	return w == 0 || w == -ETIMEDOUT;
}

/* tee everything the child's pipe holds to the sink. >0: bytes teed (and
 * consumed for the scan); 0: EOF; -EAGAIN: the pipe is empty or the sink
 * full; another -errno ends the tee path for good (EINVAL: not two pipes;
 * EPIPE: the sink's reader is gone — the copy path counts the drops). */
static ssize_t tee_once(tap *t) {
	for (;;) {
		ssize_t k = tee(t->in_fd, t->out_fd, TEE_MAX, SPLICE_F_NONBLOCK);
		if (k > 0) {
			t->st.bytes_in += (uint64_t)k;
			rt_mutex_lock(&t->mu);
			t->st.bytes_out += (uint64_t)k;
			rt_mutex_unlock(&t->mu);
			return consume_teed(t, (size_t)k) ? k : 0;
		}
		if (k == 0)
			return 0; /* no writer left and nothing buffered */
		int e = tap__errno();
		if (e != EINTR)
			return -e;
	}
}

static void reader(void *arg) {
	tap *t = arg;
	for (;;) {
		if (t->tee) {
			rt_mutex_lock(&t->mu);
			bool ring_empty = !t->len && !t->sink_failed;
			rt_mutex_unlock(&t->mu);
			ssize_t k = ring_empty ? tee_once(t) : -EAGAIN;
			if (k > 0) {
				t->recheck_ns = CONGESTED_RECHECK_NS;
				continue;
			}
			if (k == 0)
				break;
			if (k != -EAGAIN)
				t->tee = false;
			else if (hold_back(t))
				continue;
		}
		ssize_t n = rt_read(t->in_pd, t->rbuf, sizeof t->rbuf, RT_FOREVER);
		if (n <= 0)
			break;
		t->st.bytes_in += (uint64_t)n;
		t->recheck_ns = CONGESTED_RECHECK_NS;
		pass_on(t, (size_t)n);
		lnf_feed(&t->lines, t->rbuf, (size_t)n);
	}
	lnf_end(&t->lines);
	rt_mutex_lock(&t->mu);
	t->eof = true;
	t->st.lines = t->lines.shown;
	rt_mutex_unlock(&t->mu);
	kick(t);
	rt_wg_done(&t->wg);
}

static ssize_t sink_write(tap *t, const char *p, size_t n) {
	if (t->out_pd)
		return rt_write(t->out_pd, p, n, RT_FOREVER);
	rt_syscall_enter(); /* a file or a terminal: it may take a while, never for ever */
	ssize_t r;
	do
		r = write(t->out_fd, p, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		r = -tap__errno();
	rt_syscall_exit();
	return r;
}

static void writer(void *arg) {
	tap *t = arg;
	for (;;) {
		rt_mutex_lock(&t->mu);
		size_t n = t->len < t->cap - t->head ? t->len : t->cap - t->head;
		bool done = t->eof && !t->len;
		rt_mutex_unlock(&t->mu);
		if (done)
			break;
		if (!n) {
			char x;
			rt_chan_recv(t->kick, &x);
			continue;
		}
		ssize_t w = sink_write(t, t->ring + t->head, n);
		rt_mutex_lock(&t->mu);
		if (w <= 0) { /* the sink is gone: drop what waits, and all that comes */
			t->sink_failed = true;
			t->st.bytes_dropped += t->len;
			t->len = 0;
		} else {
			t->head = (t->head + (size_t)w) % t->cap;
			t->len -= (size_t)w;
			t->st.bytes_out += (uint64_t)w;
		}
		bool wake = room_due(t);
		rt_mutex_unlock(&t->mu);
		if (wake)
			room_send(t);
	}
	rt_chan_close(t->writer_done);
}

/* A sink that takes every write at disk speed and that epoll refuses: a
 * regular file, a block device, or a character device that is no
 * terminal (/dev/null). */
static bool direct_sink(int fd, const struct stat *sb) {
	return S_ISREG(sb->st_mode) || S_ISBLK(sb->st_mode) ||
	       (S_ISCHR(sb->st_mode) && !isatty(fd));
}

static void tap_free(tap *t) {
	if (t->room)
		rt_chan_free(t->room);
	if (t->writer_done)
		rt_chan_free(t->writer_done);
	if (t->kick)
		rt_chan_free(t->kick);
	free(t->ring);
	free(t);
}

tap *tap_start(int read_fd, int sink_fd, size_t buffer, tap_mode mode, const char *const *markers,
               void (*line)(void *arg, const char *text, size_t len), void *arg, ms_err *err) {
	tap *t = calloc(1, sizeof *t);
	size_t cap = buffer < BUFFER_MIN ? BUFFER_MIN : buffer;
	if (!t || !(t->ring = malloc(cap)) || !(t->kick = rt_chan_new(1, 1)) ||
	    !(t->room = rt_chan_new(1, 1)) || !(t->writer_done = rt_chan_new(1, 0))) {
		if (t)
			tap_free(t);
		ms_fail(err, -ENOMEM, "stderr tap: out of memory");
		return NULL;
	}
	t->cap = cap;
	t->mode = mode;
	t->in_fd = read_fd;
	t->out_fd = sink_fd;
	if (lnf_init(&t->lines, markers, line, arg)) {
		ms_fail(err, -EINVAL, "stderr tap: a bad line marker");
		goto fail;
	}
	t->mu = (rt_mutex)RT_MUTEX_INIT;
	t->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	int perr = 0;
	struct stat sb;
	(void)fcntl(read_fd, F_SETPIPE_SZ, PIPE_BYTES); /* best effort, as below */
	int in_size = fcntl(read_fd, F_GETPIPE_SZ);
	t->in_high = in_size > 0 ? in_size / 2 : 0;
	t->recheck_ns = CONGESTED_RECHECK_NS;
	bool sink_known = fstat(sink_fd, &sb) == 0;
	if (sink_known && S_ISFIFO(sb.st_mode)) {
		(void)fcntl(sink_fd, F_SETPIPE_SZ, PIPE_BYTES);
		t->tee = fstat(read_fd, &sb) == 0 && S_ISFIFO(sb.st_mode);
	} else if (sink_known) {
		t->direct = direct_sink(sink_fd, &sb);
	}
	t->out_flags = fcntl(sink_fd, F_GETFL);
	if (fcntl(read_fd, F_SETFL, fcntl(read_fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    !(t->in_pd = rt_poll_open(read_fd, &perr))) {
		ms_fail(err, perr ? perr : -tap__errno(),
		        "stderr tap: polling the child's pipe: %s",
		        strerror(perr ? -perr : tap__errno()));
		goto fail;
	}
	/* a pipe or socket sink is written on the netpoller; a file or a
	 * device directly by the reader; a terminal (epoll refuses it too, and
	 * we leave it blocking, as the shell that shares it expects) by the
	 * writer */
	if (!t->direct && t->out_flags >= 0 && !isatty(sink_fd) &&
	    fcntl(sink_fd, F_SETFL, t->out_flags | O_NONBLOCK) == 0) {
		t->out_pd = rt_poll_open(sink_fd, &perr);
		if (!t->out_pd)
			fcntl(sink_fd, F_SETFL, t->out_flags);
	}
	rt_wg_add(&t->wg, 1);
	rt_go(reader, t, "tap reader");
	rt_go(writer, t, "tap writer");
	return t;
fail:
	tap_free(t);
	return NULL;
}

/* Bytes the sink took so far: a sink still taking them is not stuck. */
static uint64_t progress(tap *t) {
	rt_mutex_lock(&t->mu);
	uint64_t p = t->st.bytes_out;
	rt_mutex_unlock(&t->mu);
	return p;
}

void tap_wait(tap *t, tap_stats *out) {
	rt_case done = {.c = t->writer_done, .dir = RT_RECV};
	uint64_t seen = progress(t);
	int64_t moved_at = rt_now();
	while (rt_select(&done, 1, rt_deadline_in(DRAIN_CHECK_NS)) != 0) {
		uint64_t now = progress(t);
		if (now != seen) {
			seen = now;
			moved_at = rt_now();
		}
		if (rt_now() - moved_at < DRAIN_GRACE_NS)
			continue;
		/* stuck: drop what waits and all that comes; the reader, if it
		 * waits for room, reads on to EOF */
		rt_mutex_lock(&t->mu);
		t->sink_failed = true;
		bool wake = room_due(t);
		rt_mutex_unlock(&t->mu);
		if (wake)
			room_send(t);
		if (t->out_pd)
			rt_poll_evict(t->out_pd); /* its write fails: the rest is dropped */
		rt_chan_recv(t->writer_done, NULL);
		break;
	}
	rt_wg_wait(&t->wg);
	rt_poll_close(t->in_pd);
	close(t->in_fd);
	if (t->out_pd) {
		rt_poll_close(t->out_pd);
		fcntl(t->out_fd, F_SETFL, t->out_flags);
	}
	if (out)
		*out = t->st;
	tap_free(t);
}
