/*
 * spec_fuzz.c — an OCI bundle's config.json to a spec: jansson's loader
 * with spec_load's flags (duplicate keys refused), then spec_from_json
 * (shim/oci/spec.c, spec_load's checking half) against a bundle directory made
 * once with an empty rootfs/ in it (root.path must name a directory).
 * Must hold: no crash, leak or undefined behaviour; an accepted spec has
 * absolute rootfs and mount destinations, a NULL-terminated args vector,
 * at most SPEC_MAX_WARNINGS warnings, and its counts match non-NULL arrays;
 * a refused one comes back NULL with a message.
 */
#include "fuzz.h"
#include "spec.h"

#include <sys/stat.h>
#include <unistd.h>

static char bundle[64], rootfs[80];

static void cleanup(void) {
	rmdir(rootfs);
	rmdir(bundle);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	snprintf(bundle, sizeof bundle, "/tmp/moonshim-fuzz-spec-XXXXXX");
	if (!mkdtemp(bundle))
		abort();
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", bundle);
	if (mkdir(rootfs, 0755))
		abort();
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	json_error_t je;
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return 0;
	spec *s = NULL;
	ms_err err = {0};
	int r = spec_from_json(root, bundle, &s, &err);
	if (r) {
		FUZZ_CHECK(r < 0 && !s && err.msg[0]);
		return 0;
	}
	FUZZ_CHECK(s && s->rootfs && s->rootfs[0] == '/');
	FUZZ_CHECK(s->nwarnings >= 0 && s->nwarnings <= SPEC_MAX_WARNINGS);
	for (int i = 0; i < s->nwarnings; i++)
		FUZZ_CHECK(s->warnings[i] != NULL);
	FUZZ_CHECK(s->process.args && s->process.args[0]);
	for (char **a = s->process.args; *a; a++)
		FUZZ_CHECK(strlen(*a) < size); /* a string of the input, so terminated */
	FUZZ_CHECK(!s->nmounts || s->mounts);
	for (size_t i = 0; i < s->nmounts; i++)
		FUZZ_CHECK(s->mounts[i].dest && s->mounts[i].dest[0] == '/');
	FUZZ_CHECK(!s->process.ngids || s->process.gids);
	FUZZ_CHECK(!s->process.nrlimits || s->process.rlimits);
	FUZZ_CHECK(!s->ndevices || s->devices);
	FUZZ_CHECK(!s->njoins || s->joins);
	spec_free(s);
	return 0;
}
