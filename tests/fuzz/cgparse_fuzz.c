/*
 * cgparse_fuzz.c — the kernel's cgroup text formats (cgroup/parse.c):
 * cg_parse_pressure on a PSI file (cpu.pressure, memory.pressure,
 * io.pressure) and cg_parse_kv on a "key value" file (memory.stat,
 * memory.events, cpu.stat). The first byte picks the parser and, for
 * cg_parse_kv, the key looked up; the rest is the file's text. Must hold:
 * no crash or undefined behaviour; a pressure file accepted has its
 * "some" line, and a "full" line only if one was there; a key found was
 * in the text as a whole word at a line start; an error has a message.
 */
#include "fuzz.h"
#include "cgroup.h"

#include <errno.h>

static const char *const keys[] = {"anon", "file",       "oom",          "oom_kill", "max",
                                   "high", "usage_usec", "nr_throttled", "pgfault",  "low"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (!size)
		return 0;
	uint8_t mode = data[0];
	char *text = fuzz_cstr(data + 1, size - 1);
	cg_err err = {0};
	if (mode & 1) {
		cg_pressure p;
		int r = cg_parse_pressure(text, &p, &err);
		if (r) {
			FUZZ_CHECK(r == -EINVAL && err.msg[0]);
		} else {
			FUZZ_CHECK(p.some.present);
			FUZZ_CHECK(!p.full.present || strstr(text, "full "));
		}
	} else {
		const char *key = keys[(mode >> 1) % (sizeof keys / sizeof *keys)];
		int64_t v = 0;
		int r = cg_parse_kv(text, key, &v, &err);
		if (r) {
			FUZZ_CHECK((r == -EINVAL || r == -ENOENT) && err.msg[0]);
		} else {
			size_t kl = strlen(key);
			int found = !strncmp(text, key, kl) && text[kl] == ' ';
			for (const char *l = strchr(text, '\n'); !found && l;
			     l = strchr(l + 1, '\n'))
				found = !strncmp(l + 1, key, kl) && l[1 + kl] == ' ';
			FUZZ_CHECK(found);
		}
	}
	free(text);
	return 0;
}
