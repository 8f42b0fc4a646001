/*
 * sched_fuzz.c — gp_parse_sched (shim/go/goparse.c) on one line of a Go
 * program's stderr, as the tap hands it over: arbitrary bytes, not
 * NUL-terminated (the copy is exactly the input's size, so ASan sees any
 * read past it). Must hold: no crash or undefined behaviour; an intact
 * line (GP_SCHED_OK) has 1..GP_MAX_PROCS procs, a per-P list of exactly
 * gomaxprocs entries, idleprocs <= gomaxprocs, and schedticks absent or
 * one per P; parsing is deterministic (the same kind twice).
 */
#include "fuzz.h"
#include "goparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *line = malloc(size ? size : 1);
	if (!line)
		abort();
	memcpy(line, data, size);
	static gp_sched s; /* 16 KiB: off the stack */
	gp_sched_kind k = gp_parse_sched(line, size, &s);
	FUZZ_CHECK(k == GP_NOT_SCHED || k == GP_SCHED_OK || k == GP_SCHED_TORN ||
	           k == GP_SCHED_DETAIL);
	if (k == GP_SCHED_OK) {
		FUZZ_CHECK(s.gomaxprocs >= 1 && s.gomaxprocs <= GP_MAX_PROCS);
		FUZZ_CHECK(s.nprocs == s.gomaxprocs);
		FUZZ_CHECK(s.idleprocs <= s.gomaxprocs);
		FUZZ_CHECK(s.nticks == 0 || s.nticks == s.gomaxprocs);
	}
	static gp_sched again;
	FUZZ_CHECK(gp_parse_sched(line, size, &again) == k);
	if (k == GP_SCHED_OK)
		FUZZ_CHECK(again.ms == s.ms && again.runqueue == s.runqueue);
	free(line);
	return 0;
}
