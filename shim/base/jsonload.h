/*
 * jsonload.h — the one way the shim parses JSON it did not write itself
 * (prefix jl_): config.json, exec process files, containerd's Exec and
 * Update payloads, state files, Lua's json.decode.
 *
 * jansson's parser recurses once per nesting level (its own limit is 2048
 * levels), and the shim parses on goroutine stacks of ~60 KiB: 800 levels
 * of `[` already overflow one. So every input is first scanned, linearly
 * and without recursion, and refused when it nests deeper than
 * JL_MAX_DEPTH; only then does jansson see it. OCI and containerd JSON
 * never nests near that deep.
 */
#ifndef MOONSHIM_JSONLOAD_H
#define MOONSHIM_JSONLOAD_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

#define JL_MAX_DEPTH 64 /* arrays and objects inside each other */

/* The deepest nesting of arrays and objects in buf (brackets inside
 * strings do not count), or JL_MAX_DEPTH + 1 as soon as it goes past. */
int jl_depth(const char *buf, size_t len);

/* json_loadb(buf, len, flags) behind the depth scan. what names the input
 * in the message: "WHAT: JSON nested deeper than 64 levels", or "WHAT:
 * line L, column C: jansson's message". NULL with err set on failure. */
json_t *jl_loadb(const char *buf, size_t len, size_t flags, const char *what, ms_err *err);

/* The same for a file (what: its path). */
json_t *jl_load_file(const char *path, size_t flags, ms_err *err);

#endif
