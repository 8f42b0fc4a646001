/*
 * mem_test.c — mem_settle (shim/base/mem.c): once set-up is over, the
 * program's code pages that set-up made resident are dropped (they come
 * back from the page cache when run), and the program goes on running.
 */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/base/mem.h"

#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Rss in kB of the mapping that holds addr (/proc/self/smaps), or -1. */
static long rss_kb_at(const void *addr) {
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	char line[512];
	bool in = false;
	long kb = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* dl_iterate_phdr's callback: read one byte of every page of the
 * program's executable segment, so all of it is resident. */
static int touch_code(struct dl_phdr_info *info, size_t size, void *arg) {
	long pg = sysconf(_SC_PAGESIZE);
	volatile unsigned char sum = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		for (size_t off = 0; off < ph->p_memsz; off += (size_t)pg)
			sum += p[off];
		*(const void **)arg = p;
	}
	(void)sum;
	return 1; /* the program only */
}

TEST(settle_drops_code_pages) {
	const void *code = NULL;
	dl_iterate_phdr(touch_code, &code);
	CHECK(code != NULL);
	long before = rss_kb_at(code);
	mem_settle();
	long after = rss_kb_at(code); /* what ran since (this test, stdio) came back */
	CHECKF(before > 0 && after >= 0 && after < before / 2,
	       "code resident before %ld kB, after mem_settle %ld kB", before, after);
	/* the program runs on: its code faults back in */
	char buf[32];
	snprintf(buf, sizeof buf, "%ld", after);
	CHECK(rss_kb_at(code) >= 0 && buf[0]);
}
