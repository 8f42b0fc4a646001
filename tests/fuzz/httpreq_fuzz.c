/*
 * httpreq_fuzz.c — the request-head parser of `moonshim metrics`' server
 * (hs_parse, shim/io/httpserve.c) on whatever bytes a client sends, whole
 * and in every prefix a read could have stopped at.
 *
 * Must hold: no crash, leak or undefined behaviour; the result is 0,
 * -EAGAIN (only below HS_HEAD_MAX bytes), or a status to answer (400,
 * 431, 505) with a message; an accepted head has a token method, a
 * NUL-terminated path, a minor version 0..9, an Accept of bounded length
 * and a length within the input and HS_HEAD_MAX. A prefix never decides
 * differently from the whole: it says -EAGAIN or what the whole says (the
 * parser looks at complete lines only), and a prefix shorter than an
 * accepted head is never accepted.
 */
#include "fuzz.h"
#include "httpserve.h"

#include <errno.h>

static hs_request req, again;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const char *buf = (const char *)data;
	size_t head = 0, h2 = 0;
	ms_err err = {0};
	int r = hs_parse(buf, size, &req, &head, &err);
	FUZZ_CHECK(r == 0 || r == -EAGAIN || r == -400 || r == -431 || r == -505);
	FUZZ_CHECK(r != -EAGAIN || size < HS_HEAD_MAX);
	if (r && r != -EAGAIN)
		FUZZ_CHECK(err.msg[0]);
	if (!r) {
		FUZZ_CHECK(head > 0 && head <= size && head <= HS_HEAD_MAX);
		FUZZ_CHECK(req.method[0] && strlen(req.method) <= HS_METHOD_MAX);
		FUZZ_CHECK(strlen(req.path) < sizeof req.path);
		FUZZ_CHECK(strlen(req.accept) < sizeof req.accept);
		FUZZ_CHECK(req.minor >= 0 && req.minor <= 9);
	}
	/* prefixes: every one for short inputs, a spread for long ones */
	size_t step = size / 64 + 1;
	for (size_t n = 0; n < size; n += step) {
		ms_err e2 = {0};
		int p = hs_parse(buf, n, &again, &h2, &e2);
		FUZZ_CHECK(p == -EAGAIN || p == r);
		if (!r && n < head)
			FUZZ_CHECK(p == -EAGAIN);
	}
	return 0;
}
