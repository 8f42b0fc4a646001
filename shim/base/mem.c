/* mem.c — the process's malloc policy: fixed thresholds, trimming after big inputs. */
#include "mem.h"

#include <malloc.h>

/* Blocks this big or bigger are mmapped and go back to the kernel when
 * freed; fixing the value stops glibc's dynamic raise (mallopt docs). */
#define MMAP_THRESHOLD (128 * 1024)
/* Free memory at the top of the heap beyond this is returned at free(). */
#define TRIM_THRESHOLD (256 * 1024)
/* Arenas: goroutines move between threads, so per-thread arenas buy little
 * and each keeps its own free memory; two still spare the runtime's
 * threads most lock contention. */
#define ARENA_MAX 2

void mem_init(void) {
	mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
	mallopt(M_ARENA_MAX, ARENA_MAX);
}

void mem_trim_after(size_t bytes) {
	if (bytes >= MEM_TRIM_AFTER)
		malloc_trim(0);
}
