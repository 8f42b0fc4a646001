/*
 * rtopts.h — the shim's runtime options (prefix ro_): the `.options` table
 * of the runtime in containerd's config, which reaches `start` as raw TOML
 * (runtimeoptions.v1.Options.config_body, or the file at config_path).
 * A small TOML subset, bounded (README, "Runtime options"):
 *   key = "basic string" | 'literal string' | true | false   one per line,
 *   # comments, blank lines. Known keys:
 *   default_policy (or policy)  the Lua policy file for containers without
 *                               an io.moonshim.policy annotation
 *   default_checks (or checks)  likewise for io.moonshim.checks
 *   publish_root                where containers' state is published for
 *                               `moonshim metrics`, inspect, events, top
 *                               (publish.h; default /run/moonshim-containerd)
 *   go_watch                    false: io.moonshim.go.* annotations are
 *                               ignored (the operator's off switch)
 *   debug                       true: as -debug
 * containerd's own keys (TypeUrl, ConfigPath, ConfigBody) are skipped;
 * any other key, a table or an array is one warning line, not a failure.
 * A line that is not TOML, a known key of the wrong type, or a relative
 * path is an error naming the line.
 */
#ifndef MOONSHIM_RTOPTS_H
#define MOONSHIM_RTOPTS_H

#include "base.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define RO_BODY_MAX (64 * 1024) /* the largest options table read */
#define RO_WARN_MAX 1024        /* the warnings kept (then truncated) */

typedef struct ro_options {
	char default_policy[PATH_MAX]; /* "": the built-in default file */
	char default_checks[PATH_MAX];
	char publish_root[PATH_MAX]; /* "": PB_CONTAINERD_ROOT */
	bool go_watch;               /* io.moonshim.go.* annotations honoured (default) */
	bool debug;
	char warnings[RO_WARN_MAX]; /* lines for the shim log, "" if none */
} ro_options;

void ro_init(ro_options *o);
/* Parse text (len bytes, not NUL-terminated) into o (initialised). 0, or
 * -EINVAL / -E2BIG with a message naming the line. */
int ro_parse(const char *text, size_t len, ro_options *o, ms_err *err);

#endif
