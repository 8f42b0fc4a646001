/* tty.h — relaying a container's pty (prefix tty_): when process.terminal
 * is true the supervisor holds the pty master and copies its own stdin to
 * it and its output to its own stdout, with its terminal (if stdin is one)
 * in raw mode meanwhile, so keys reach the container untouched. */
#ifndef MOONSHIM_TTY_H
#define MOONSHIM_TTY_H

#include "base.h"

typedef struct tty_relay tty_relay;

/* Start relaying in_fd → master and master → out_fd, one goroutine each on
 * the netpoller; call in a goroutine. in_fd may be a terminal (switched to
 * raw mode until tty_relay_wait), a pipe, /dev/null or a file; its EOF only
 * stops that direction. The window size is copied to the pty from in_fd,
 * else from out_fd, if either is a terminal. The three fds stay the
 * caller's (close them after tty_relay_wait); their file status flags are
 * restored at the end. Ignore SIGPIPE: a closed out_fd then only stops
 * the copying, and the pty is still drained so the container never
 * blocks on it. NULL on error, with the terminal as it was. */
tty_relay *tty_relay_start(int master, int in_fd, int out_fd, ms_err *err);

/* Copy from_fd's window size to the pty (at start, and on SIGWINCH: the
 * caller owns signals). -errno, e.g. -ENOTTY if from_fd is no terminal. */
int tty_resize(int master, int from_fd);

/* Set the pty's window size (e.g. from a CRI ResizeTerminal); -errno. */
int tty_set_size(int master, unsigned short rows, unsigned short cols);

/* In a goroutine: return once the master reached EOF or EIO (every slave
 * fd closed: the container's side is gone) and the last byte read from it
 * has been written to out_fd; then stop the input side, restore the
 * terminal mode and the fds' flags, and free r. */
void tty_relay_wait(tty_relay *r);

#endif
