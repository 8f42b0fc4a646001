/*
 * process_fuzz.c — an exec's process.json (`moonshim exec --process`,
 * shim/cli/ctl.c) and the spec of containerd's ExecProcessRequest
 * (shim/containerd/task.c): jansson's loader with the same flags (duplicate keys
 * refused), then spec_parse_process (shim/oci/spec.c). Must hold: no crash,
 * leak or undefined behaviour; an accepted process has a non-empty,
 * NULL-terminated args vector, a NULL-terminated env, a cwd, and its
 * counts match non-NULL arrays; a refused one says why.
 */
#include "fuzz.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	json_error_t je;
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return 0;
	spec_process p;
	memset(&p, 0, sizeof p);
	ms_err err = {0};
	int r = spec_parse_process(j, "process", &p, &err);
	if (r) {
		FUZZ_CHECK(r < 0 && err.msg[0]);
	} else {
		FUZZ_CHECK(p.args && p.args[0]);
		FUZZ_CHECK(p.env && p.cwd);
		for (char **e = p.env; *e; e++)
			FUZZ_CHECK(strlen(*e) < size);
		FUZZ_CHECK(!p.ngids || p.gids);
		FUZZ_CHECK(!p.nrlimits || p.rlimits);
	}
	spec_process_free(&p);
	json_decref(j);
	return 0;
}
