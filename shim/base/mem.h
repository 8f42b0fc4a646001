/*
 * mem.h — the process's malloc policy (prefix mem_): a supervisor lives as
 * long as its container, and what a hostile input made it allocate (a
 * 16 MiB pprof body, a 4 MiB ttrpc message) must not stay resident after
 * the input is gone.
 *
 * glibc raises its mmap threshold each time a large mmapped block is
 * freed (up to 32 MiB), after which large buffers come from the heap and
 * stay there; and each thread that mallocs may get an arena of its own.
 * mem_init fixes both; mem_trim_after hands free pages back once a big
 * input has been dealt with.
 *
 * Setting a container up runs code a supervisor never runs again (the
 * spec, seccomp, mounts, compiling the policies); mem_settle drops it.
 */
#ifndef MOONSHIM_MEM_H
#define MOONSHIM_MEM_H

#include <stddef.h>

/* Once, first thing in main(): fixed mmap and trim thresholds, few arenas. */
void mem_init(void);

/* After an input of `bytes` was processed and freed: if it was big
 * (MEM_TRIM_AFTER or more), return the free pages of every arena to the
 * kernel. Cheap to call for small inputs (it does nothing). */
#define MEM_TRIM_AFTER (1u << 20)
void mem_trim_after(size_t bytes);

/* Once set-up is over: unmap the resident pages of the program's
 * read-only segments (code, constants) and return malloc's free pages.
 * What supervising then runs faults back in from the page cache, so what
 * stays resident is the working set. Nothing is lost: those pages are
 * never written. Not for a hot path (each page refaults once). */
void mem_settle(void);

#endif
