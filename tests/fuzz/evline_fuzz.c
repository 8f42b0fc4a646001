/*
 * evline_fuzz.c — one line of a container's event journal as `moonshim
 * events` reads it (shim/cli/observe.c): ob_event_parse, then
 * ob_event_format into a small and a large buffer; and the same bytes as
 * an operator's --since/--until (ob_parse_time, ob_parse_rfc3339). Must
 * hold: no crash or undefined behaviour; a refused line says why and
 * keeps nothing; a formatted line fits its buffer, is NUL-ended, and
 * carries no control character (C0, DEL, C1) to a terminal; the small
 * buffer holds a prefix of the large one.
 */
#include "fuzz.h"
#include "observe.h"

#define SMALL 48
#define LARGE (4 * OB_LINE_MAX + 1024)
#define NOW   1764968400000000000LL /* fixed: the target stays deterministic */

static char big[LARGE];

static void check_text(const char *s, size_t n) {
	FUZZ_CHECK(strlen(s) == n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		FUZZ_CHECK(c >= 0x20 && c != 0x7f);
		FUZZ_CHECK(!(c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		             (unsigned char)s[i + 1] <= 0x9f));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size > OB_LINE_MAX)
		return 0;
	ob_event ev;
	ms_err err = {0};
	if (ob_event_parse((const char *)data, size, &ev, &err)) {
		FUZZ_CHECK(err.code < 0 && err.msg[0] && !ev.obj);
	} else {
		char small[SMALL];
		size_t n = ob_event_format(&ev, "ns/id", big, sizeof big);
		FUZZ_CHECK(n < sizeof big);
		check_text(big, n);
		size_t k = ob_event_format(&ev, "ns/id", small, sizeof small);
		FUZZ_CHECK(k < sizeof small && !strncmp(small, big, k));
		ob_event_free(&ev);
	}
	char *text = fuzz_cstr(data, size);
	int64_t ns;
	err = (ms_err){0};
	if (ob_parse_time(text, NOW, &ns, &err))
		FUZZ_CHECK(err.code < 0 && strstr(err.msg, "time \""));
	ob_parse_rfc3339(text, &ns);
	free(text);
	return 0;
}
