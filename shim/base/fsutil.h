/*
 * fsutil.h — the file-system chores several layers have (prefix fs_):
 * writing a value to a kernel file (cgroup, /proc) in one write(2), as
 * those files want, reading a whole file with a size bound, and making a
 * directory with its missing parents, a process's state and start time.
 * Errors name what was being done and the path.
 */
#ifndef MOONSHIM_FSUTIL_H
#define MOONSHIM_FSUTIL_H

#include "err.h"

#include <stdbool.h>
#include <sys/types.h>

/* text into path in one write(2): 0, or -errno with err saying
 * "WHAT: PATH: reason" or "WHAT: writing PATH: reason" (a short write is
 * -EIO). */
int fs_write_file(const char *path, const char *text, const char *what, ms_err *err);

/* The whole of the file at path, NUL-terminated (malloc'd; *len without
 * the NUL), refused past max bytes (-EFBIG): NULL with err naming the
 * path on any failure. */
char *fs_read_file(const char *path, size_t max, size_t *len, ms_err *err);

/* mkdir path and every missing parent with mode (existing ones are fine):
 * 0, or -errno with err saying "mkdir DIR: reason" for the one that failed. */
int fs_mkdir_p(const char *path, mode_t mode, ms_err *err);

/* /proc/PID/stat's state (field 3) and start time (field 22, clock ticks
 * since boot: with the pid, it names one process across pid reuse); false
 * when the process is gone. */
bool fs_proc_stat(pid_t pid, char *state, unsigned long long *start);

#endif
