/*
 * gctrace_fuzz.c — gp_parse_gc (shim/go/goparse.c) on one line of a Go
 * program's stderr (GODEBUG=gctrace=1), arbitrary bytes, not
 * NUL-terminated (an exact-size copy: ASan sees any read past it).
 * Must hold: no crash or undefined behaviour; a line taken as whole has a
 * GC number >= 0 and finite, non-negative times, shares and heap sizes
 * (the detectors divide and compare with them), and at least one P.
 */
#include "fuzz.h"
#include "goparse.h"

#include <math.h>

static int sane(double v) {
	return isfinite(v) && v >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *line = malloc(size ? size : 1);
	if (!line)
		abort();
	memcpy(line, data, size);
	gp_gc g;
	if (gp_parse_gc(line, size, &g)) {
		FUZZ_CHECK(g.n >= 0);
		FUZZ_CHECK(sane(g.at_s) && sane(g.cpu_pct) && sane(g.clock_ms));
		FUZZ_CHECK(sane(g.heap_start_mb) && sane(g.heap_end_mb) && sane(g.heap_live_mb) &&
		           sane(g.goal_mb));
		FUZZ_CHECK(g.procs >= 1);
		gp_gc again;
		FUZZ_CHECK(gp_parse_gc(line, size, &again) && again.n == g.n);
	}
	free(line);
	return 0;
}
