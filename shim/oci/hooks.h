/*
 * hooks.h — running a spec's OCI hooks (prefix oh_): each hook of one kind
 * in order, the container's state JSON on its stdin, as the runtime spec
 * says and runc does.
 *
 * A hook is the spec's (trusted as the spec is) but what we keep of it is
 * bounded: its stdout and stderr are read as it runs (so it never blocks on
 * a full pipe) and only the first OH_OUTPUT_MAX bytes are kept, for the
 * error; a hook past its timeout is killed (SIGKILL) and reaped. Blocking:
 * call it single-threaded, or from a goroutine through spawn/ (fh_hooks).
 */
#ifndef MOONSHIM_HOOKS_H
#define MOONSHIM_HOOKS_H

#include <sys/types.h>

#include "base.h"
#include "spec.h"

/* of a failing hook's output, this much goes into its error */
#define OH_OUTPUT_MAX 512

/* The state the hooks see: ociVersion, id, status, pid (omitted when 0),
 * bundle and annotations (omitted when none). */
typedef struct oh_state {
	const char *id;
	const char *status; /* "creating", "created", "running", "stopped" */
	pid_t pid;
} oh_state;

/* Run s's hooks of kind k in order, each with cwd as its working
 * directory (NULL: ours) and, for a hook without env, default_env (NULL:
 * our environment). The first that fails (cannot start, exits non-zero,
 * dies of a signal, runs past its timeout) stops the rest: -errno with
 * err naming it ("hooks.createRuntime[0] /usr/bin/x: exit status 3:
 * <output>"). 0 when all succeed or there are none. */
int oh_run(const spec *s, spec_hook_kind k, const oh_state *st, const char *cwd,
           char *const *default_env, ms_err *err);

/* Whether s has hooks of kind k. */
static inline int oh_has(const spec *s, spec_hook_kind k) {
	return s && s->nhooks[k] > 0;
}

#endif
