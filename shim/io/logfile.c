/*
 * logfile.c — the CRI `k8s-file` log: the container's stdout and stderr
 * pipes, cut into records, written to one file: losslessly by default
 * (LF_BLOCKING: the container waits while the buffer is full), or never
 * blocking the container and dropping what does not fit
 * (LF_NON_BLOCKING).
 *
 * Three layers, each unaware of the one above:
 *
 *   reader    one goroutine per pipe, reading on the netpoller and handing
 *             every chunk (then EOF) to a callback. It waits for nothing
 *             but the pipe and the callback (which, blocking, waits for
 *             room in the ring): a full pipe is emptied in one read.
 *   splitter  cuts a byte stream into CRI records, as containerd's
 *             redirectLogs does (pkg/cri/io/logger.go):
 *               - "\n" ends a full record (F); a "\r" before it is dropped;
 *               - a line longer than LF_RECORD_MAX goes out as records of
 *                 exactly LF_RECORD_MAX bytes tagged P, then one F with
 *                 the rest (a line of exactly LF_RECORD_MAX is one F);
 *               - text left without a newline at EOF is written as a
 *                 partial record (P): containerd does so ("it should be
 *                 treated as a partial line"), and a reader that joins
 *                 P records then sees that the last line never ended.
 *   log       a ring of formatted records, bounded by bytes. Readers
 *             append under a mutex and wake the writer goroutine, which
 *             appends the ring to the file outside the mutex
 *             (rt_syscall_enter/exit: a disk write may block). A record
 *             that does not fit waits (LF_BLOCKING: the stream sets
 *             want_room, lets go of the mutex, kicks the writer and parks
 *             on its `room` channel, which the writer fills after it
 *             freed bytes — its reader stops reading meanwhile, so the
 *             container waits in write(2), and the other stream goes on
 *             while it has room) or is dropped whole and counted for its
 *             stream (LF_NON_BLOCKING: nothing pushes back on the pipe).
 *             A failed write drops what was buffered (lost_bytes), so a
 *             broken disk never holds the container.
 *
 * The reader and splitter are meant for reuse by stderr interposition:
 * there the chunk callback writes the bytes through to a sink fd and feeds
 * a splitter whose record callback inspects lines.
 *
 * Timestamps are taken once per chunk read (the records of one read
 * arrived together), in UTC, formatted as Go's time.RFC3339Nano.
 */
#define _GNU_SOURCE
#include "logfile.h"

#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_CHUNK      (1 << 16)           /* a pipe's default capacity: one read empties it */
#define SPLIT_CAP       (LF_RECORD_MAX + 1) /* one byte past the max says whether the line goes on */
#define HEADER_MAX      (LF_TIME_MAX + 16)  /* "<time> <stream> " with a short stream name */
#define STREAM_NAME_MAX 8

/* errno afresh: a goroutine may resume on another thread, and the compiler
 * may have kept errno's thread-local address from before (rt.h). */
__attribute__((noinline)) static int lf__errno(void) {
	__asm__ volatile("" ::: "memory");
	return errno;
}

/* ─── time ───────────────────────────────────────────────────────────── */

size_t lf_format_time(const struct timespec *ts, char buf[LF_TIME_MAX]) {
	struct tm tm;
	time_t sec = ts->tv_sec;
	gmtime_r(&sec, &tm);
	size_t n = strftime(buf, LF_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
	long ns = ts->tv_nsec;
	if (ns > 0) {
		int digits = 9;
		while (ns % 10 == 0) {
			ns /= 10;
			digits--;
		}
		n += (size_t)snprintf(buf + n, LF_TIME_MAX - n, ".%0*ld", digits, ns);
	}
	buf[n++] = 'Z';
	buf[n] = 0;
	return n;
}

/* ─── splitter: bytes → CRI records ──────────────────────────────────── */

typedef void (*split_fn)(void *ctx, const char *text, size_t n, bool full);

typedef struct {
	char buf[SPLIT_CAP]; /* the line so far */
	size_t len;
	split_fn emit;
	void *ctx;
} splitter;

/* Add text holding no newline. A line past the max goes out in P records
 * of LF_RECORD_MAX bytes; a '\r' just past the max is held back until the
 * next byte tells whether it belongs to a "\r\n". */
static void split_append(splitter *sp, const char *p, size_t n) {
	while (n) {
		size_t k = n < SPLIT_CAP - sp->len ? n : SPLIT_CAP - sp->len;
		memcpy(sp->buf + sp->len, p, k);
		sp->len += k;
		p += k;
		n -= k;
		if (sp->len == SPLIT_CAP && (n || sp->buf[LF_RECORD_MAX] != '\r')) {
			sp->emit(sp->ctx, sp->buf, LF_RECORD_MAX, false);
			sp->buf[0] = sp->buf[LF_RECORD_MAX];
			sp->len = 1;
		}
	}
}

static void split_line_end(splitter *sp) {
	if (sp->len && sp->buf[sp->len - 1] == '\r')
		sp->len--; /* now <= LF_RECORD_MAX: see split_append */
	sp->emit(sp->ctx, sp->buf, sp->len, true);
	sp->len = 0;
}

static void split_feed(splitter *sp, const char *p, size_t n) {
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) : n;
		size_t text = seg && p[seg - 1] == '\r' ? seg - 1 : seg;
		if (nl && !sp->len && text <= LF_RECORD_MAX) {
			sp->emit(sp->ctx, p, text, true); /* a whole line in this chunk: no copy */
		} else {
			split_append(sp, p, seg);
			if (nl)
				split_line_end(sp);
		}
		if (!nl)
			break;
		p += seg + 1;
		n -= seg + 1;
	}
}

static void split_eof(splitter *sp) {
	if (sp->len == SPLIT_CAP) { /* a held '\r' that no '\n' followed */
		sp->emit(sp->ctx, sp->buf, LF_RECORD_MAX, false);
		sp->buf[0] = sp->buf[LF_RECORD_MAX];
		sp->len = 1;
	}
	if (sp->len)
		sp->emit(sp->ctx, sp->buf, sp->len, false);
	sp->len = 0;
}

/* ─── reader: a pipe on the netpoller → chunks ───────────────────────── */

/* n > 0: a chunk; n == 0: EOF or a read error (the last call). */
typedef void (*chunk_fn)(void *ctx, const char *p, size_t n);

typedef struct {
	int fd;
	rt_pollfd *pd;
	chunk_fn on_chunk;
	void *ctx;
	rt_waitgroup *wg; /* done when the reader has finished */
	char buf[READ_CHUNK];
} reader;

/* Make fd non-blocking and register it; -errno. */
static int reader_init(reader *r, int fd, chunk_fn on_chunk, void *ctx, rt_waitgroup *wg) {
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return -lf__errno();
	int e = 0;
	if (!(r->pd = rt_poll_open(fd, &e)))
		return e;
	r->fd = fd;
	r->on_chunk = on_chunk;
	r->ctx = ctx;
	r->wg = wg;
	return 0;
}

static void reader_run(void *arg) {
	reader *r = arg;
	for (;;) {
		ssize_t n = rt_read(r->pd, r->buf, sizeof r->buf, RT_FOREVER);
		if (n <= 0)
			break; /* EOF, or an error a pipe does not really have */
		r->on_chunk(r->ctx, r->buf, (size_t)n);
	}
	r->on_chunk(r->ctx, NULL, 0);
	rt_poll_close(r->pd);
	close(r->fd);
	rt_wg_done(r->wg);
}

/* ─── log: records → bounded ring → file ─────────────────────────────── */

typedef struct {
	lf_log *log;
	char name[STREAM_NAME_MAX];
	char header[HEADER_MAX]; /* "<time> <stream> " of the chunk being split */
	size_t header_len;
	lf_counts counts; /* under log->mu */
	bool want_room;   /* under log->mu: parked on room until the writer frees bytes */
	rt_chan *room;    /* capacity 1: one send per want_room */
	splitter sp;
	reader rd;
} stream;

struct lf_log {
	int fd;
	char path[256]; /* for messages */
	rt_mutex mu;    /* guards the ring's head, tail, flags and the counters */
	char *ring;
	size_t cap;
	lf_mode mode;
	uint64_t head, tail; /* bytes ever appended / ever written (or lost) */
	bool writer_idle;    /* the writer waits for a kick */
	bool closing;        /* every reader is done: drain and stop */
	rt_chan *kick;       /* capacity 1; one send per idle period */
	rt_waitgroup readers, writer;
	uint64_t lost_bytes;
	int write_error;
	stream *streams[LF_STREAMS_MAX];
	int nstreams;
};

static void ring_put(lf_log *l, const char *p, size_t n) {
	size_t at = (size_t)(l->head % l->cap), first = n < l->cap - at ? n : l->cap - at;
	memcpy(l->ring + at, p, first);
	memcpy(l->ring, p + first, n - first);
	l->head += n;
}

/* Wake the writer if it sleeps. log->mu held; send after unlocking. */
static bool log_need_kick(lf_log *l) {
	if (!l->writer_idle || (l->head == l->tail && !l->closing))
		return false;
	l->writer_idle = false;
	return true;
}

static void log_kick(lf_log *l) {
	char one = 1;
	rt_chan_send(l->kick, &one);
}

/* Splitter callback, log->mu held: the record in whole or not at all.
 * LF_BLOCKING waits for room with the mutex let go (only this stream's
 * reader touches its splitter and header, so they stay as they are). */
static void log_record(void *ctx, const char *text, size_t n, bool full) {
	stream *s = ctx;
	lf_log *l = s->log;
	size_t need = s->header_len + 2 + n + 1;
	while (l->cap - (size_t)(l->head - l->tail) < need) {
		if (l->mode == LF_NON_BLOCKING) {
			s->counts.dropped_records++;
			s->counts.dropped_bytes += n;
			return;
		}
		s->want_room = true;
		bool kick = log_need_kick(l);
		rt_mutex_unlock(&l->mu);
		if (kick)
			log_kick(l);
		rt_chan_recv(s->room, NULL);
		rt_mutex_lock(&l->mu);
	}
	ring_put(l, s->header, s->header_len);
	ring_put(l, full ? "F " : "P ", 2);
	ring_put(l, text, n);
	ring_put(l, "\n", 1);
	s->counts.lines++;
	s->counts.bytes += n;
}

/* Reader callback: split one chunk (or EOF) into the ring. */
static void log_chunk(void *ctx, const char *p, size_t n) {
	stream *s = ctx;
	lf_log *l = s->log;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char t[LF_TIME_MAX];
	lf_format_time(&now, t);
	rt_mutex_lock(&l->mu);
	s->header_len = (size_t)snprintf(s->header, sizeof s->header, "%s %s ", t, s->name);
	if (n)
		split_feed(&s->sp, p, n);
	else
		split_eof(&s->sp);
	bool kick = log_need_kick(l);
	rt_mutex_unlock(&l->mu);
	if (kick)
		log_kick(l);
}

/* One append of the ring's bytes [from, to), which may wrap; bytes
 * written or -errno. May block on the disk: the P is handed off then. */
__attribute__((noinline)) static ssize_t log_write(lf_log *l, uint64_t from, uint64_t to) {
	size_t at = (size_t)(from % l->cap), n = (size_t)(to - from);
	size_t first = n < l->cap - at ? n : l->cap - at;
	struct iovec iov[2] = {{l->ring + at, first}, {l->ring, n - first}};
	rt_syscall_enter();
	ssize_t r = writev(l->fd, iov, n > first ? 2 : 1);
	if (r < 0)
		r = -lf__errno();
	rt_syscall_exit();
	return r;
}

static void writer_run(void *arg) {
	lf_log *l = arg;
	for (;;) {
		rt_mutex_lock(&l->mu);
		while (l->head == l->tail && !l->closing) {
			l->writer_idle = true;
			rt_mutex_unlock(&l->mu);
			rt_chan_recv(l->kick, NULL);
			rt_mutex_lock(&l->mu);
		}
		uint64_t from = l->tail, to = l->head;
		rt_mutex_unlock(&l->mu);
		if (from == to)
			break; /* closing, and everything written */
		ssize_t r = log_write(l, from, to);
		if (r == -EINTR)
			continue;
		rt_mutex_lock(&l->mu);
		if (r >= 0) {
			l->tail += (uint64_t)r;
		} else { /* drop what is buffered rather than stall the readers */
			if (!l->write_error)
				l->write_error = (int)r;
			l->lost_bytes += to - from;
			l->tail = to;
		}
		stream *wake[LF_STREAMS_MAX];
		int nwake = 0;
		for (int i = 0; i < l->nstreams; i++)
			if (l->streams[i]->want_room) {
				l->streams[i]->want_room = false;
				wake[nwake++] = l->streams[i];
			}
		rt_mutex_unlock(&l->mu);
		for (int i = 0; i < nwake; i++) {
			char one = 1;
			rt_chan_send(wake[i]->room, &one);
		}
	}
	rt_wg_done(&l->writer);
}

/* ─── API ────────────────────────────────────────────────────────────── */

int lf_parse_size(const char *text, size_t *out) {
	char *end = NULL;
	if (!text || *text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	unsigned shift = 0;
	switch (*end | 0x20) { /* lower case */
	case 'k':
		shift = 10;
		end++;
		break;
	case 'm':
		shift = 20;
		end++;
		break;
	case 'g':
		shift = 30;
		end++;
		break;
	default:
		break;
	}
	if (shift && (*end | 0x20) == 'i')
		end++;
	if ((*end | 0x20) == 'b')
		end++;
	if (errno || *end || !v || v > (SIZE_MAX >> shift))
		return -EINVAL;
	*out = (size_t)v << shift;
	return 0;
}

int lf_parse_mode(const char *what, const char *text, lf_mode *mode, size_t *buffer, ms_err *err) {
	const char *comma = strchr(text, ',');
	size_t n = comma ? (size_t)(comma - text) : strlen(text);
	if (n == strlen("blocking") && !strncmp(text, "blocking", n))
		*mode = LF_BLOCKING;
	else if (n == strlen("non-blocking") && !strncmp(text, "non-blocking", n))
		*mode = LF_NON_BLOCKING;
	else
		return ms_fail(err, -EINVAL,
		               "%s %s: blocking or non-blocking[,max-buffer-size=SIZE]", what,
		               text);
	if (!comma)
		return 0;
	const char *key = "max-buffer-size=";
	if (strncmp(comma + 1, key, strlen(key)) || lf_parse_size(comma + 1 + strlen(key), buffer))
		return ms_fail(err, -EINVAL,
		               "%s %s: after the mode only max-buffer-size=SIZE (e.g. 4m)", what,
		               text);
	return 0;
}

lf_log *lf_open(const char *path, size_t buffer_bytes, lf_mode mode, ms_err *err) {
	lf_log *l = calloc(1, sizeof *l);
	if (!l) {
		ms_fail(err, -ENOMEM, "log file %s: out of memory", path);
		return NULL;
	}
	l->cap = buffer_bytes < LF_BUFFER_MIN ? LF_BUFFER_MIN : buffer_bytes;
	l->mode = mode;
	l->ring = malloc(l->cap);
	l->kick = rt_chan_new(1, 1);
	if (!l->ring || !l->kick) {
		ms_fail(err, -ENOMEM, "log file %s: no memory for a %zu-byte buffer", path, l->cap);
		goto fail;
	}
	snprintf(l->path, sizeof l->path, "%s", path);
	rt_syscall_enter(); /* a FIFO waits for its reader; a remote disk may be slow */
	l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	int e = l->fd < 0 ? lf__errno() : 0;
	rt_syscall_exit();
	if (l->fd < 0) {
		ms_fail(err, -e, "open log file %s: %s", path, strerror(e));
		goto fail;
	}
	l->mu = (rt_mutex)RT_MUTEX_INIT;
	l->readers = (rt_waitgroup)RT_WAITGROUP_INIT;
	l->writer = (rt_waitgroup)RT_WAITGROUP_INIT;
	rt_wg_add(&l->writer, 1);
	rt_go(writer_run, l, "log file writer");
	return l;
fail:
	if (l->kick)
		rt_chan_free(l->kick);
	free(l->ring);
	free(l);
	return NULL;
}

int lf_add_stream(lf_log *l, int fd, const char *name, ms_err *err) {
	if (l->nstreams == LF_STREAMS_MAX || strlen(name) >= STREAM_NAME_MAX) {
		close(fd);
		return ms_fail(err, -EINVAL, "log file %s: stream \"%s\": %s", l->path, name,
		               l->nstreams == LF_STREAMS_MAX ? "one stream too many"
		                                             : "name too long");
	}
	stream *s = calloc(1, sizeof *s);
	if (!s || !(s->room = rt_chan_new(1, 1))) {
		free(s);
		close(fd);
		return ms_fail(err, -ENOMEM, "log file %s: stream %s: out of memory", l->path,
		               name);
	}
	s->log = l;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->sp.emit = log_record;
	s->sp.ctx = s;
	int rc = reader_init(&s->rd, fd, log_chunk, s, &l->readers);
	if (rc) {
		close(fd);
		rt_chan_free(s->room);
		free(s);
		return ms_fail(err, rc, "log file %s: stream %s: polling fd %d: %s", l->path, name,
		               fd, strerror(-rc));
	}
	l->streams[l->nstreams] = s;
	rt_wg_add(&l->readers, 1);
	rt_go(reader_run, &s->rd, "log file reader");
	return l->nstreams++;
}

void lf_close(lf_log *l, lf_stats *out) {
	rt_wg_wait(&l->readers);
	rt_mutex_lock(&l->mu);
	l->closing = true;
	bool kick = log_need_kick(l);
	rt_mutex_unlock(&l->mu);
	if (kick)
		log_kick(l);
	rt_wg_wait(&l->writer);
	rt_syscall_enter();
	close(l->fd);
	rt_syscall_exit();
	lf_stats st = {.lost_bytes = l->lost_bytes, .write_error = l->write_error};
	for (int i = 0; i < l->nstreams; i++) {
		lf_counts *c = &l->streams[i]->counts;
		st.stream[i] = *c;
		st.all.lines += c->lines;
		st.all.bytes += c->bytes;
		st.all.dropped_bytes += c->dropped_bytes;
		st.all.dropped_records += c->dropped_records;
		rt_chan_free(l->streams[i]->room);
		free(l->streams[i]);
	}
	if (out)
		*out = st;
	rt_chan_free(l->kick);
	free(l->ring);
	free(l);
}
