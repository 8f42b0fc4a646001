/* tty_test.c — the pty relay as a user at a terminal sees it: a shell on
 * the pty prints through the relay (every byte, before the relay ends),
 * sees the window size copied at start and on a resize, gets the keys
 * typed at a terminal stdin (raw meanwhile, restored afterwards), and the
 * relay ends when the shell exits — not when stdin ends. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

#define MS         1000000LL
#define FLOOD      300000 /* bytes a shell prints after its lines */
#define WAIT_LIMIT (10000 * MS)

/* ─── helpers ────────────────────────────────────────────────────────── */

typedef struct {
	int master;
	char slave[64];
} pty;

static pty pty_open(void) {
	pty p = {.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)};
	CHECKF(p.master >= 0, "posix_openpt: %s", strerror(errno));
	CHECK(grantpt(p.master) == 0 && unlockpt(p.master) == 0);
	CHECK(ptsname_r(p.master, p.slave, sizeof p.slave) == 0);
	return p;
}

/* A pty pair standing in for the user's terminal: returns its slave (what
 * the supervisor's stdin would be) sized rows x cols; *keys gets the
 * master, where the "keyboard" writes. */
static int fake_terminal(unsigned short rows, unsigned short cols, int *keys) {
	pty t = pty_open();
	int s = open(t.slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(s >= 0);
	CHECK(tty_set_size(t.master, rows, cols) == 0);
	*keys = t.master;
	return s;
}

/* `sh -c script` with the pty's slave as its controlling terminal. */
static pid_t spawn_on(const pty *p, const char *script) {
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		setsid();
		int s = open(p->slave, O_RDWR); /* a session leader's first tty: its ctty */
		if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0)
			_exit(126);
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static intptr_t wait_child(void *arg) {
	int st;
	return waitpid((pid_t)(intptr_t)arg, &st, 0) > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Collects what the relay writes to out_fd: a pipe read by a goroutine. */
typedef struct {
	int r, w;
	rt_pollfd *pd;
	rt_mutex mu;
	char *buf;
	size_t len, cap;
	rt_waitgroup done;
} sink;

static void sink_run(void *arg) {
	sink *s = arg;
	char chunk[4096];
	ssize_t n;
	while ((n = rt_read(s->pd, chunk, sizeof chunk, RT_FOREVER)) > 0) {
		rt_mutex_lock(&s->mu);
		if (s->len + (size_t)n + 1 > s->cap)
			s->buf = realloc(s->buf, s->cap = 2 * (s->len + (size_t)n + 1));
		memcpy(s->buf + s->len, chunk, (size_t)n);
		s->len += (size_t)n;
		s->buf[s->len] = 0;
		rt_mutex_unlock(&s->mu);
	}
	rt_wg_done(&s->done);
}

static void sink_start(sink *s) {
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	*s = (sink){.r = p[0], .w = p[1], .mu = RT_MUTEX_INIT, .done = RT_WAITGROUP_INIT};
	CHECK(fcntl(s->r, F_SETFL, O_NONBLOCK) == 0);
	int e = 0;
	CHECKF((s->pd = rt_poll_open(s->r, &e)), "rt_poll_open: %s", strerror(-e));
	rt_wg_add(&s->done, 1);
	rt_go(sink_run, s, "tty test sink");
}

/* Wait (up to WAIT_LIMIT) until the output holds `text`. */
static bool sink_wait_for(sink *s, const char *text) {
	for (int64_t end = rt_deadline_in(WAIT_LIMIT); rt_now() < end; rt_sleep(2 * MS)) {
		rt_mutex_lock(&s->mu);
		bool found = s->buf && strstr(s->buf, text);
		rt_mutex_unlock(&s->mu);
		if (found)
			return true;
	}
	return false;
}

/* After the relay: EOF for the sink goroutine; the output stays in s->buf. */
static void sink_finish(sink *s) {
	close(s->w);
	rt_wg_wait(&s->done);
	rt_poll_close(s->pd);
	close(s->r);
	if (!s->buf)
		s->buf = calloc(1, 1);
}

static tty_relay *start(int master, int in_fd, int out_fd) {
	ms_err e = {0};
	tty_relay *r = tty_relay_start(master, in_fd, out_fd, &e);
	CHECKF(r, "tty_relay_start: %s", e.msg);
	return r;
}

/* ─── output, window size, the end ──────────────────────────────────── */

static int output_main(void *arg) {
	pty p = pty_open();
	int keys, term = fake_terminal(33, 111, &keys);
	CHECK(tty_resize(p.master, term) == 0);
	CHECK(tty_resize(p.master, STDIN_FILENO) == -ENOTTY || isatty(STDIN_FILENO));
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	sink s;
	sink_start(&s);
	char script[160];
	snprintf(script, sizeof script,
	         "echo hi; tty; stty size; head -c %d /dev/zero | tr '\\0' x; echo; echo end",
	         FLOOD);
	pid_t pid = spawn_on(&p, script);
	tty_relay *r = start(p.master, devnull, s.w); /* stdin at EOF at once */
	tty_relay_wait(r);
	/* every byte is in the pipe when the relay ends */
	sink_finish(&s);
	CHECK(rt_blocking(wait_child, (void *)(intptr_t)pid) == 0);
	CHECKF(!strncmp(s.buf, "hi\r\n/dev/pts/", 13), "output: %.200s", s.buf);
	CHECKF(strstr(s.buf, "\r\n33 111\r\n"), "no window size in: %.200s", s.buf);
	size_t xs = 0;
	for (const char *c = s.buf; *c; c++)
		xs += *c == 'x';
	CHECKF(xs == FLOOD, "%zu of %d bytes arrived", xs, FLOOD);
	size_t n = strlen(s.buf);
	CHECKF(n > 6 && !strcmp(s.buf + n - 5, "end\r\n"), "output ends: %s",
	       s.buf + (n > 40 ? n - 40 : 0));
	int fl = fcntl(devnull, F_GETFL);
	CHECK(fl >= 0 && !(fl & O_NONBLOCK) && !(fcntl(p.master, F_GETFL) & O_NONBLOCK));
	free(s.buf);
	close(devnull);
	close(p.master);
	close(term);
	close(keys);
	return 0;
}

TEST(tty_relay_output_size_and_end) {
	run_rt(2, output_main, NULL);
}

/* ─── a terminal stdin: raw while relaying, keys pass, mode restored ─── */

static int stdin_main(void *arg) {
	pty p = pty_open();
	int keys, term = fake_terminal(24, 80, &keys);
	struct termios before, during, after;
	CHECK(tcgetattr(term, &before) == 0 && (before.c_lflag & ICANON));
	sink s;
	sink_start(&s);
	pid_t pid = spawn_on(&p, "echo ready; read x; echo got:$x; stty size");
	tty_relay *r = start(p.master, term, s.w); /* copies 24x80 from the terminal */
	CHECK(tcgetattr(term, &during) == 0);
	CHECKF(!(during.c_lflag & (ICANON | ECHO | ISIG)) && !(during.c_iflag & ICRNL),
	       "stdin not raw: lflag %#x", (unsigned)during.c_lflag);
	CHECK(fcntl(term, F_GETFL) & O_NONBLOCK);
	CHECKF(sink_wait_for(&s, "ready"), "no \"ready\" in: %s", s.buf ? s.buf : "");
	CHECK(write(keys, "hello\n", 6) == 6); /* typed at the user's terminal */
	tty_relay_wait(r);
	sink_finish(&s);
	CHECK(rt_blocking(wait_child, (void *)(intptr_t)pid) == 0);
	CHECKF(strstr(s.buf, "got:hello\r\n24 80\r\n"), "output: %s", s.buf);
	CHECK(tcgetattr(term, &after) == 0);
	CHECKF(after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag &&
	           after.c_oflag == before.c_oflag && after.c_cflag == before.c_cflag,
	       "terminal not restored: lflag %#x, was %#x", (unsigned)after.c_lflag,
	       (unsigned)before.c_lflag);
	CHECK(!(fcntl(term, F_GETFL) & O_NONBLOCK));
	free(s.buf);
	close(p.master);
	close(term);
	close(keys);
	return 0;
}

TEST(tty_relay_terminal_stdin_raw_and_restored) {
	run_rt(2, stdin_main, NULL);
}

/* ─── a resize while relaying; stdin EOF does not end the relay ─────── */

static int resize_main(void *arg) {
	pty p = pty_open();
	int keys, term = fake_terminal(24, 80, &keys);
	int in[2];
	CHECK(pipe2(in, O_CLOEXEC) == 0);
	sink s;
	sink_start(&s);
	pid_t pid = spawn_on(&p, "trap 'stty size; exit 0' WINCH; echo ready; "
	                         "while :; do sleep 0.02; done");
	tty_relay *r = start(p.master, in[0], s.w);
	CHECKF(sink_wait_for(&s, "ready\r\n"), "no \"ready\" in: %s", s.buf ? s.buf : "");
	close(in[1]); /* stdin ends; the shell still runs and prints */
	rt_sleep(50 * MS);
	CHECK(tty_set_size(keys, 40, 120) == 0);
	CHECK(tty_resize(p.master, term) == 0); /* as on SIGWINCH: the shell gets one */
	tty_relay_wait(r);
	sink_finish(&s);
	CHECK(rt_blocking(wait_child, (void *)(intptr_t)pid) == 0);
	CHECKF(strstr(s.buf, "ready\r\n40 120\r\n"), "output: %s", s.buf);
	free(s.buf);
	close(in[0]);
	close(p.master);
	close(term);
	close(keys);
	return 0;
}

TEST(tty_relay_resize_and_stdin_eof) {
	run_rt(2, resize_main, NULL);
}

/* ─── errors ─────────────────────────────────────────────────────────── */

static int errors_main(void *arg) {
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(tty_resize(p[0], p[1]) == -ENOTTY);
	CHECK(tty_set_size(p[0], 24, 80) == -ENOTTY);
	ms_err e = {0};
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(!tty_relay_start(devnull, p[0], p[1], &e));
	CHECKF(e.code == -EINVAL && strstr(e.msg, "no pty master"), "%s", e.msg);
	CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK) && !(fcntl(p[1], F_GETFL) & O_NONBLOCK));
	CHECK(!tty_relay_start(99999, p[0], p[1], &e));
	CHECKF(e.code == -EBADF && strstr(e.msg, "pty master (fd 99999)"), "%s", e.msg);
	close(devnull);
	close(p[0]);
	close(p[1]);
	return 0;
}

TEST(tty_relay_errors_named) {
	run_rt(2, errors_main, NULL);
}
