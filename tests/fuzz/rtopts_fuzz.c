/*
 * rtopts_fuzz.c — start's stdin (shim/containerd/bootstrap.c: containerd's
 * BootstrapParams or an Any of runtime options) and, from the same input,
 * the runtime options' TOML subset (rtopts.c) directly. Must hold: no crash
 * or undefined behaviour; a refusal has a message; accepted paths are
 * absolute and NUL-terminated within their fields; the warnings stay
 * within their buffer.
 */
#include "fuzz.h"
#include "bootstrap.h"

static void check_opts(const ro_options *o) {
	FUZZ_CHECK(memchr(o->default_policy, 0, sizeof o->default_policy));
	FUZZ_CHECK(memchr(o->default_checks, 0, sizeof o->default_checks));
	FUZZ_CHECK(memchr(o->warnings, 0, sizeof o->warnings));
	FUZZ_CHECK(!o->default_policy[0] || o->default_policy[0] == '/');
	FUZZ_CHECK(!o->default_checks[0] || o->default_checks[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	ro_options o;
	ms_err err = {0};
	ro_init(&o);
	if (ro_parse((const char *)data, size, &o, &err))
		FUZZ_CHECK(err.code < 0 && err.msg[0]);
	else
		check_opts(&o);
	bs_params p;
	err = (ms_err){0};
	if (bs_parse(data, size, size & 1 ? "c1" : NULL, NULL, &p, &err)) {
		FUZZ_CHECK(err.code < 0 && err.msg[0]);
	} else {
		check_opts(&p.opts);
		FUZZ_CHECK(memchr(p.id, 0, sizeof p.id) &&
		           memchr(p.socket_dir, 0, sizeof p.socket_dir));
	}
	return 0;
}
