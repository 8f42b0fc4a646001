/*
 * psirule_fuzz.c — an operator's PSI rule ("memory:some:150ms:1s[:LAT]",
 * `moonshim watch --psi` and the run options) through cg_psi_parse
 * (cgroup/psi.c), and cg_psi_format back. Must hold: no crash or undefined
 * behaviour (durations that overflow included); an accepted rule has a
 * known resource, 0 < threshold <= window <= 10 s and latency > 0, and
 * formats to text that parses to the same rule; a refused one says why.
 */
#include "fuzz.h"
#include "cgroup.h"

#define FMT_MAX 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *text = fuzz_cstr(data, size);
	cg_psi_spec s;
	cg_err err = {0};
	int r = cg_psi_parse(text, &s, &err);
	if (r) {
		FUZZ_CHECK(r < 0 && err.msg[0]);
	} else {
		FUZZ_CHECK(s.res >= 0 && s.res < CG_RES_N);
		FUZZ_CHECK(s.threshold_us > 0 && s.threshold_us <= s.window_us);
		FUZZ_CHECK(s.window_us <= 10000000 && s.latency_us > 0);
		char buf[FMT_MAX];
		int n = cg_psi_format(&s, buf, sizeof buf);
		FUZZ_CHECK(n > 0 && (size_t)n < sizeof buf);
		cg_psi_spec again;
		FUZZ_CHECK(cg_psi_parse(buf, &again, &err) == 0);
		FUZZ_CHECK(again.res == s.res && again.full == s.full &&
		           again.threshold_us == s.threshold_us && again.window_us == s.window_us &&
		           again.latency_us == s.latency_us);
	}
	free(text);
	return 0;
}
