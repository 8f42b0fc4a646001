/* mem.c — the process's malloc policy: fixed thresholds, trimming after
 * big inputs; dropping set-up's code pages (mem_settle). */
#define _GNU_SOURCE
#include "mem.h"

#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* dl_iterate_phdr's callback: the first object is the program itself;
 * each of its loaded segments that is not writable is dropped. */
static int drop_readonly(struct dl_phdr_info *info, size_t size, void *arg) {
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
			continue;
		uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(pg - 1);
		uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + pg - 1) & ~(pg - 1);
		(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	return 1; /* the program only: shared libraries are shared */
}

void mem_settle(void) {
	dl_iterate_phdr(drop_readonly, NULL);
	malloc_trim(0);
}
