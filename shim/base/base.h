/*
 * base.h — the shim's base layer, the one header other folders include:
 * the error value (err.h, prefix ms_), file-system chores (fsutil.h, fs_), the bounded JSON loader
 * (jsonload.h, jl_), arrays that grow by doubling (grow.h, grow_), the malloc policy (mem.h,
 * mem_), SHA-256 (sha256.h) and the build's version (version.h). Base uses only the C library,
 * jansson, cgroup/ and runtime/; it must never include a header of another shim/ folder.
 */
#ifndef MOONSHIM_BASE_H
#define MOONSHIM_BASE_H

#include "err.h"
#include "fsutil.h"
#include "grow.h"
#include "jsonload.h"
#include "mem.h"
#include "sha256.h"
#include "version.h"

#endif
