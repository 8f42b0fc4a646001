/*
 * binlog.h — containerd's binary:// stdio (prefix binlog_): a logging
 * program the shim starts for a container process, given the process's
 * stdout and stderr as pipes on its fds 3 and 4 and a ready pipe on fd 5,
 * which it closes once it is ready. The URI's query becomes its arguments
 * (key, value, ...); CONTAINER_ID and CONTAINER_NAMESPACE are in its
 * environment. containerd's runc shim does the same, so loggers written
 * for it work unchanged.
 */
#ifndef MOONSHIM_BINLOG_H
#define MOONSHIM_BINLOG_H

#include <sys/types.h>

#include "base.h"

#define BINLOG_SCHEME "binary://"

/* Start the logger of uri for container id in namespace ns and wait (up
 * to BINLOG_READY_MS) until it is ready. The write ends for the process's
 * stdout and stderr come back in *out_w, *err_w; the logger is our child
 * (*pid) and exits when both pipes close; the caller reaps it. */
int binlog_start(const char *uri, const char *id, const char *ns, int *out_w, int *err_w,
                 pid_t *pid, ms_err *err);

#endif
