/* captures.h — the real output of Go 1.19, 1.26 and 1.27 in tests/go/formats
 * (tests/go/capture-formats.sh), shared by goparse_test.c, which asserts
 * what the parsers read from it, and godetect_test.c, which feeds it to the
 * detectors. The directory names must match what the script wrote. */
#ifndef MOONSHIM_TESTS_GO_CAPTURES_H
#define MOONSHIM_TESTS_GO_CAPTURES_H

#include <stddef.h>

#define CAPTURE_VERSIONS 3
extern const char *const capture_versions[CAPTURE_VERSIONS]; /* "go1.19.8", ... */

/* tests/go/formats/VER/NAME read whole into a malloc'd buffer (the case
 * fails if it is missing, empty or over 1 MiB) */
char *read_capture(const char *ver, const char *name, size_t *len);

#endif
