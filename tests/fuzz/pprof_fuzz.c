/*
 * pprof_fuzz.c — gp_parse_profile and gp_stack_site (shim/go/goparse.c) on a
 * goroutine profile body as a Go program's /debug/pprof/goroutine?debug=1
 * or debug=2 (or goroutineleak) endpoint might send it. The first byte
 * picks max_stacks (0..15, 0: unbounded); the rest is the body, not
 * NUL-terminated (an exact-size copy). Must hold: no crash, leak or
 * undefined behaviour; on success debug is 1 or 2, at most max_stacks
 * stacks are kept, each with 0..GP_MAX_FRAMES frames that have a function
 * and a file, a NUL-terminated state, and gp_stack_site's strings
 * NUL-terminated in their buffers; on failure the profile is empty and
 * the message says something.
 */
#include "fuzz.h"
#include "goparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (!size)
		return 0;
	int max = data[0] & 15;
	data++, size--;
	char *text = malloc(size ? size : 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	gp_profile p;
	char msg[256] = "";
	int r = gp_parse_profile(text, size, max, &p, msg, sizeof msg);
	if (r) {
		FUZZ_CHECK(r < 0);
		FUZZ_CHECK(p.nstacks == 0 && p.stacks == NULL);
		FUZZ_CHECK(msg[0] && fuzz_terminated(msg, sizeof msg));
	} else {
		FUZZ_CHECK(p.debug == 1 || p.debug == 2);
		FUZZ_CHECK(p.nstacks >= 0 && (max == 0 || p.nstacks <= max));
		for (int i = 0; i < p.nstacks; i++) {
			const gp_stack *s = &p.stacks[i];
			FUZZ_CHECK(s->nframes >= 0 && s->nframes <= GP_MAX_FRAMES);
			FUZZ_CHECK(fuzz_terminated(s->state, sizeof s->state));
			for (int f = 0; f < s->nframes; f++)
				FUZZ_CHECK(s->frames[f].func && s->frames[f].file);
			gp_site g;
			if (gp_stack_site(s, &g)) {
				FUZZ_CHECK(fuzz_terminated(g.site, sizeof g.site));
				FUZZ_CHECK(fuzz_terminated(g.function, sizeof g.function));
				FUZZ_CHECK(fuzz_terminated(g.wait, sizeof g.wait));
			}
		}
	}
	gp_profile_free(&p);
	free(text);
	return 0;
}
