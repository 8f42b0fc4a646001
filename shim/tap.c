/*
 * tap.c — the reader goroutine fills a ring buffer and scans lines; the
 * writer goroutine empties the ring into the sink. The ring's lock is held
 * only to move indices, never across a read or a write.
 *
 * What must stay true: the reader never waits for the writer (a full ring
 * drops the new bytes and counts them); the writer wakes through `kick`, a
 * channel of capacity 1 that the reader tops up without waiting; once the
 * reader has seen EOF it closes `kick`'s sender side by setting `eof` and
 * kicking, and the writer ends when the ring is empty and eof is set.
 */
#define _GNU_SOURCE
#include "tap.h"

#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
/* Pipes on both sides are grown to this (the default 64 KiB fills in
 * microseconds at a logger's pace, and every fill is a park and a wake):
 * fs.pipe-max-size's default, so it needs no privilege. */
#define PIPE_BYTES (1 << 20)
#define BUFFER_MIN (64 * 1024)
/* After the child's EOF, how long a stuck sink gets before what waits for
 * it is dropped (so moonshim itself never hangs on a reader that stopped). */
#define DRAIN_GRACE_NS (5 * 1000000000LL)

struct tap {
	int in_fd, out_fd, out_flags;
	rt_pollfd *in_pd, *out_pd; /* out_pd NULL: a file or terminal epoll refuses, written directly */
	char *ring;
	size_t cap, head, len; /* bytes [head, head+len) mod cap wait for the sink */
	rt_mutex mu;
	bool eof, sink_failed;
	rt_chan *kick;
	rt_waitgroup wg;        /* the reader */
	rt_chan *writer_done;   /* closed when the writer ends */
	void (*line)(void *, const char *, size_t);
	void *arg;
	char lbuf[TAP_LINE_MAX];
	size_t llen;
	bool lskip; /* the current line overflowed lbuf: not shown */
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

static void scan(tap *t, const char *p, size_t n) {
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (nl && !t->llen && !t->lskip) { /* a whole line in this read: shown in place */
			if (t->line && take <= sizeof t->lbuf) {
				t->line(t->arg, p, take);
				t->st.lines++;
			}
			p = nl + 1;
			n -= take + 1;
			continue;
		}
		if (!t->lskip && t->llen + take <= sizeof t->lbuf) {
			memcpy(t->lbuf + t->llen, p, take);
			t->llen += take;
		} else {
			t->lskip = true;
		}
		if (!nl)
			return;
		if (!t->lskip && t->line) {
			t->line(t->arg, t->lbuf, t->llen);
			t->st.lines++;
		}
		t->llen = 0;
		t->lskip = false;
		p = nl + 1;
		n -= take + 1;
	}
}

static void put(tap *t, const char *p, size_t n) {
	rt_mutex_lock(&t->mu);
	size_t room = t->sink_failed ? 0 : t->cap - t->len;
	size_t keep = n < room ? n : room;
	size_t tail = (t->head + t->len) % t->cap;
	size_t first = keep < t->cap - tail ? keep : t->cap - tail;
	memcpy(t->ring + tail, p, first);
	memcpy(t->ring, p + first, keep - first);
	t->len += keep;
	t->st.bytes_dropped += n - keep;
	rt_mutex_unlock(&t->mu);
	if (keep)
		kick(t);
}

static void reader(void *arg) {
	tap *t = arg;
	for (;;) {
		ssize_t n = rt_read(t->in_pd, t->rbuf, sizeof t->rbuf, RT_FOREVER);
		if (n <= 0)
			break;
		t->st.bytes_in += (uint64_t)n;
		/* with nothing waiting, straight to a pollable sink (non-blocking:
		 * what does not fit goes to the ring) — one copy, no hand-off */
		size_t off = 0;
		rt_mutex_lock(&t->mu);
		bool direct = t->out_pd && !t->len && !t->sink_failed;
		rt_mutex_unlock(&t->mu);
		if (direct) {
			ssize_t w = write(t->out_fd, t->rbuf, (size_t)n);
			if (w > 0) {
				off = (size_t)w;
				rt_mutex_lock(&t->mu);
				t->st.bytes_out += (uint64_t)w;
				rt_mutex_unlock(&t->mu);
			}
		}
		if (off < (size_t)n)
			put(t, t->rbuf + off, (size_t)n - off);
		scan(t, t->rbuf, (size_t)n);
	}
	if (t->llen && !t->lskip && t->line) { /* a last line without its newline */
		t->line(t->arg, t->lbuf, t->llen);
		t->st.lines++;
	}
	rt_mutex_lock(&t->mu);
	t->eof = true;
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
		rt_mutex_unlock(&t->mu);
	}
	rt_chan_close(t->writer_done);
}

tap *tap_start(int read_fd, int sink_fd, size_t buffer,
               void (*line)(void *arg, const char *text, size_t len), void *arg, ms_err *err) {
	tap *t = calloc(1, sizeof *t);
	size_t cap = buffer < BUFFER_MIN ? BUFFER_MIN : buffer;
	if (!t || !(t->ring = malloc(cap)) || !(t->kick = rt_chan_new(1, 1)) ||
	    !(t->writer_done = rt_chan_new(1, 0))) {
		if (t) {
			free(t->ring);
			if (t->kick)
				rt_chan_free(t->kick);
		}
		free(t);
		ms_fail(err, -ENOMEM, "stderr tap: out of memory");
		return NULL;
	}
	t->cap = cap;
	t->in_fd = read_fd;
	t->out_fd = sink_fd;
	t->line = line;
	t->arg = arg;
	t->mu = (rt_mutex)RT_MUTEX_INIT;
	t->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	int perr = 0;
	struct stat sb;
	(void)fcntl(read_fd, F_SETPIPE_SZ, PIPE_BYTES); /* best effort, as below */
	if (fstat(sink_fd, &sb) == 0 && S_ISFIFO(sb.st_mode))
		(void)fcntl(sink_fd, F_SETPIPE_SZ, PIPE_BYTES);
	t->out_flags = fcntl(sink_fd, F_GETFL);
	if (fcntl(read_fd, F_SETFL, fcntl(read_fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    !(t->in_pd = rt_poll_open(read_fd, &perr))) {
		ms_fail(err, perr ? perr : -tap__errno(), "stderr tap: polling the child's pipe: %s",
		        strerror(perr ? -perr : tap__errno()));
		goto fail;
	}
	/* a pipe or socket sink is written on the netpoller; a file or a
	 * terminal (epoll refuses files; a tty we leave blocking, as the shell
	 * that shares it expects) directly */
	if (t->out_flags >= 0 && !isatty(sink_fd) &&
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
	rt_chan_free(t->writer_done);
	rt_chan_free(t->kick);
	free(t->ring);
	free(t);
	return NULL;
}

void tap_wait(tap *t, tap_stats *out) {
	rt_wg_wait(&t->wg);
	rt_case done = {.c = t->writer_done, .dir = RT_RECV};
	if (rt_select(&done, 1, rt_deadline_in(DRAIN_GRACE_NS)) != 0) {
		if (t->out_pd)
			rt_poll_evict(t->out_pd); /* its write fails: the rest is dropped */
		rt_chan_recv(t->writer_done, NULL);
	}
	rt_poll_close(t->in_pd);
	close(t->in_fd);
	if (t->out_pd) {
		rt_poll_close(t->out_pd);
		fcntl(t->out_fd, F_SETFL, t->out_flags);
	}
	if (out)
		*out = t->st;
	rt_chan_free(t->writer_done);
	rt_chan_free(t->kick);
	free(t->ring);
	free(t);
}
