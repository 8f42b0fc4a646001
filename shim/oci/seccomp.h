/*
 * seccomp.h — the OCI linux.seccomp object as a ready-made BPF program
 * (prefix sc_). The parent compiles it with libseccomp before clone3; the
 * child only hands the finished program to seccomp(2), which needs no
 * memory allocation and no library state, so it is safe after a fork of a
 * threaded process.
 *
 * Note: libseccomp's own header is also named seccomp.h. This directory must
 * therefore never be on the -I path, only on the quote path (the Makefile's
 * -iquote shim/DIR), so that <seccomp.h> stays libseccomp's.
 */
#ifndef MOONSHIM_SECCOMP_H
#define MOONSHIM_SECCOMP_H

#include <jansson.h>
#include <linux/filter.h>

#include "base.h"

typedef struct sc_program {
	struct sock_fprog prog; /* len 0: no filter */
	unsigned flags;         /* SECCOMP_FILTER_FLAG_* from the spec's "flags" */
} sc_program;

/* seccomp: the linux.seccomp JSON object (NULL: no filter, prog.len 0).
 * jpath: its JSON path for messages, e.g. "linux.seccomp". Returns 0 or
 * -errno (-EINVAL for bad input, with the JSON path and the bad value in
 * err). A syscall name libseccomp does not know is skipped, as runc
 * skips it (the caller warns: sc_unknown_names).
 * SCMP_FLTATR_CTL_NNP is off: the caller decides about no_new_privs. */
int sc_compile(json_t *seccomp, const char *jpath, sc_program *out, ms_err *err);

/* The syscall names in seccomp's rules that libseccomp does not know (for
 * any architecture), each once, ", "-separated into buf (len bytes, always
 * terminated; "..." ends a list that does not fit). Returns how many
 * occurrences there are (0: none). Malformed rules are sc_compile's. */
int sc_unknown_names(json_t *seccomp, char *buf, size_t len);
void sc_free(sc_program *p);

/* In the child, async-signal-safe: seccomp(SECCOMP_SET_MODE_FILTER, flags,
 * &prog); a no-op when len is 0. Returns 0 or -errno (-EACCES without
 * no_new_privs or CAP_SYS_ADMIN). */
int sc_install(const sc_program *p);

#endif
