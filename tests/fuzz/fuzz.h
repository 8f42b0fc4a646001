/*
 * fuzz.h — what every libFuzzer target in tests/fuzz shares: the entry
 * point's declaration and FUZZ_CHECK, an invariant that aborts (a crash
 * libFuzzer records, with the input, in its artifact directory) when it
 * does not hold. A target feeds one parser and checks what the parser
 * promises in its header; it must stay deterministic (no clock, no
 * randomness that is not drawn from the input) so a crash input replays.
 */
#ifndef MOONSHIM_FUZZ_H
#define MOONSHIM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__,  \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input as a NUL-terminated string in a buffer of exactly size + 1
 * bytes (ASan sees a read past it). Never NULL (aborts on ENOMEM). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	return s;
}

/* Is s NUL-terminated within n bytes? */
static inline int fuzz_terminated(const char *s, size_t n) {
	return memchr(s, 0, n) != NULL;
}

#endif
