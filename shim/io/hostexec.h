/*
 * hostexec.h — running a host command on the runtime (prefix hx_): its
 * stdin fed and its stdout/stderr collected on the netpoller, its exit
 * waited for on a pidfd, killed at a deadline. For alert hooks and
 * scripts' exec.host.
 */
#ifndef MOONSHIM_HOSTEXEC_H
#define MOONSHIM_HOSTEXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base.h"

typedef struct hx_result {
	int status;      /* as a shell reports it: 128+N for signal N */
	bool timed_out;  /* killed at the deadline */
	char *out, *err; /* NUL-terminated, each cut at max_output */
	size_t out_len, err_len;
} hx_result;

/* In a goroutine. argv[0] is looked up in PATH; env: extra "K=V" strings
 * added to ours (NULL-terminated, may be NULL). 0 once the command ran
 * (whatever its status), or -errno if it could not start. */
int hx_run(char *const argv[], char *const env[], const void *in, size_t in_len, int64_t timeout_ns,
           size_t max_output, hx_result *r, ms_err *err);
void hx_result_free(hx_result *r);

/* The same for a process started otherwise (in a container): hx_pipes
 * makes the pipes, child[] (blocking) become its stdin, stdout, stderr
 * and are the starter's to close; ours[] (non-blocking, close-on-exec)
 * go to hx_collect, which feeds and drains them, waits for pid (our
 * child), kills it at the deadline (its process group when group), and
 * closes them. */
int hx_pipes(int child[3], int ours[3], ms_err *err);
void hx_collect(pid_t pid, bool group, int ours[3], const void *in, size_t in_len,
                int64_t timeout_ns, size_t max_output, hx_result *r);

#endif
