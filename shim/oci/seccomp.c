/*
 * seccomp.c — compiles the OCI runtime-spec's linux.seccomp object into a
 * classic BPF program with libseccomp, and installs it in the container's
 * first process.
 *
 * Compiling happens in the parent: libseccomp allocates, so it cannot run
 * in a child forked from a threaded shim. seccomp_export_bpf() only writes
 * to a file descriptor (libseccomp 2.5.4 has no in-memory export), so the
 * program goes through a memfd and is read back into one malloc'd array.
 * Installing is one seccomp(2) call with the flags from the spec.
 *
 * An unknown syscall name (one libseccomp has for no architecture) is
 * skipped, as runc skips it: the kernel call it names (newer than this
 * libseccomp, like getxattrat in containerd's default profile for
 * libseccomp 2.5.4) cannot be filtered by this libseccomp anyway, and
 * refusing the profile made every pod with the default one fail. It is not
 * silent: sc_unknown_names lists them and spec.c warns, naming each, so the
 * operator hears (the shim's log, containerd's log, a warning event).
 */
#define _GNU_SOURCE
#include "seccomp.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* errno values the kernel passes back are clamped at MAX_ERRNO (4095);
 * a TRACE action carries 16 bits of data to the tracer (SECCOMP_RET_DATA). */
#define SC_MAX_ERRNO 4095
#define SC_MAX_TRACE 0xffff
#define SC_MAX_ARGS  6 /* syscall arguments a filter can compare */
#define SC_PATH_MAX  256

/* ─── Names from the spec ─────────────────────────────────────────────── */

static const struct {
	const char *name;
	unsigned flag;
} sc_flags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
};

static const struct {
	const char *name;
	enum scmp_compare op;
} sc_ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

/* An optional errno/trace value ("errnoRet", "defaultErrnoRet"): absent
 * means EPERM, as the spec says; only ERRNO and TRACE may carry one. */
static int ret_value(json_t *v, const char *jpath, const char *key, const char *action,
                     long long max, unsigned *out, ms_err *err) {
	*out = EPERM;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return ms_fail(err, -EINVAL, "%s.%s: must be an integer from 0 to %lld", jpath, key,
		               max);
	if (strcmp(action, "SCMP_ACT_ERRNO") && strcmp(action, "SCMP_ACT_TRACE"))
		return ms_fail(err, -EINVAL, "%s.%s: action %s takes no return value", jpath, key,
		               action);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

/* The action named by `action` (at jpath.key) with its return value rv. */
static int parse_action(json_t *action, json_t *rv, const char *jpath, const char *key,
                        const char *rv_key, uint32_t *out, ms_err *err) {
	const char *a = json_string_value(action);
	if (!a)
		return ms_fail(err, -EINVAL, "%s.%s: %s", jpath, key,
		               action ? "must be a string" : "missing");
	unsigned data;
	int rc = ret_value(rv, jpath, rv_key, a,
	                   !strcmp(a, "SCMP_ACT_TRACE") ? SC_MAX_TRACE : SC_MAX_ERRNO, &data, err);
	if (rc)
		return rc;
	if (!strcmp(a, "SCMP_ACT_KILL") || !strcmp(a, "SCMP_ACT_KILL_THREAD"))
		*out = SCMP_ACT_KILL_THREAD;
	else if (!strcmp(a, "SCMP_ACT_KILL_PROCESS"))
		*out = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(a, "SCMP_ACT_TRAP"))
		*out = SCMP_ACT_TRAP;
	else if (!strcmp(a, "SCMP_ACT_ERRNO"))
		*out = SCMP_ACT_ERRNO(data);
	else if (!strcmp(a, "SCMP_ACT_TRACE"))
		*out = SCMP_ACT_TRACE(data);
	else if (!strcmp(a, "SCMP_ACT_ALLOW"))
		*out = SCMP_ACT_ALLOW;
	else if (!strcmp(a, "SCMP_ACT_LOG"))
		*out = SCMP_ACT_LOG;
	else if (!strcmp(a, "SCMP_ACT_NOTIFY"))
		return ms_fail(err, -EINVAL, "%s.%s: SCMP_ACT_NOTIFY is not supported", jpath, key);
	else
		return ms_fail(err, -EINVAL, "%s.%s: unknown action \"%s\"", jpath, key, a);
	return 0;
}

/* "SCMP_ARCH_X86_64" → libseccomp's "x86_64": every architecture token of
 * the spec is libseccomp's own name, upper-cased, behind SCMP_ARCH_. */
static uint32_t arch_token(const char *spec_name) {
	static const char prefix[] = "SCMP_ARCH_";
	char name[32];
	size_t n = strlen(spec_name), p = sizeof prefix - 1;
	if (n <= p || n - p >= sizeof name || strncmp(spec_name, prefix, p))
		return 0;
	for (size_t i = p; i <= n; i++)
		name[i - p] = (char)(spec_name[i] >= 'A' && spec_name[i] <= 'Z' ? spec_name[i] + 32
		                                                                : spec_name[i]);
	return seccomp_arch_resolve_name(name);
}

/* ─── Building the filter ─────────────────────────────────────────────── */

static int add_arches(scmp_filter_ctx ctx, json_t *arr, const char *jpath, ms_err *err) {
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return ms_fail(err, -EINVAL, "%s.architectures: must be an array", jpath);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		uint32_t tok = s ? arch_token(s) : 0;
		if (!tok)
			return ms_fail(err, -EINVAL,
			               "%s.architectures[%zu]: unknown architecture %s%s%s", jpath,
			               i, s ? "\"" : "", s ? s : "(not a string)", s ? "\"" : "");
		int rc = seccomp_arch_add(ctx, tok);
		if (rc == -EEXIST) /* the native one is always there */
			continue;
		/* libseccomp builds one filter for one byte order */
		if (rc == -EDOM)
			return ms_fail(
			    err, -EINVAL,
			    "%s.architectures[%zu]: %s cannot share a filter with the native "
			    "architecture (different byte order)",
			    jpath, i, s);
		if (rc)
			return ms_fail(err, rc == -ENOMEM ? rc : -EINVAL,
			               "%s.architectures[%zu]: seccomp_arch_add(%s): %s", jpath, i,
			               s, strerror(-rc));
	}
	return 0;
}

static int parse_flags(json_t *arr, const char *jpath, unsigned *out, ms_err *err) {
	*out = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return ms_fail(err, -EINVAL, "%s.flags: must be an array", jpath);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		size_t k;
		for (k = 0; s && k < sizeof sc_flags / sizeof sc_flags[0]; k++)
			if (!strcmp(s, sc_flags[k].name))
				break;
		if (!s || k == sizeof sc_flags / sizeof sc_flags[0])
			return ms_fail(err, -EINVAL, "%s.flags[%zu]: unknown flag %s%s%s", jpath, i,
			               s ? "\"" : "", s ? s : "(not a string)", s ? "\"" : "");
		*out |= sc_flags[k].flag;
	}
	return 0;
}

/* syscalls[].args → comparisons; returns how many, or -errno. */
static int parse_args(json_t *arr, const char *jpath, struct scmp_arg_cmp *cmp, ms_err *err) {
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return ms_fail(err, -EINVAL, "%s.args: must be an array", jpath);
	if (json_array_size(arr) > SC_MAX_ARGS)
		return ms_fail(err, -EINVAL, "%s.args: at most %d comparisons", jpath, SC_MAX_ARGS);
	size_t i;
	json_t *a;
	json_array_foreach(arr, i, a) {
		if (!json_is_object(a))
			return ms_fail(err, -EINVAL, "%s.args[%zu]: must be an object", jpath, i);
		json_t *index = json_object_get(a, "index"), *value = json_object_get(a, "value"),
		       *two = json_object_get(a, "valueTwo");
		const char *op = json_string_value(json_object_get(a, "op"));
		if (!json_is_integer(index) || json_integer_value(index) < 0 ||
		    json_integer_value(index) >= SC_MAX_ARGS)
			return ms_fail(err, -EINVAL,
			               "%s.args[%zu].index: must be an integer from 0 to %d", jpath,
			               i, SC_MAX_ARGS - 1);
		/* uint64 in the spec; jansson refuses integers above INT64_MAX while parsing */
		if (!json_is_integer(value) || json_integer_value(value) < 0)
			return ms_fail(err, -EINVAL,
			               "%s.args[%zu].value: must be a non-negative integer", jpath,
			               i);
		if (two && (!json_is_integer(two) || json_integer_value(two) < 0))
			return ms_fail(err, -EINVAL,
			               "%s.args[%zu].valueTwo: must be a non-negative integer",
			               jpath, i);
		size_t k;
		for (k = 0; op && k < sizeof sc_ops / sizeof sc_ops[0]; k++)
			if (!strcmp(op, sc_ops[k].name))
				break;
		if (!op || k == sizeof sc_ops / sizeof sc_ops[0])
			return ms_fail(err, -EINVAL, "%s.args[%zu].op: unknown operator %s%s%s",
			               jpath, i, op ? "\"" : "", op ? op : "(missing)",
			               op ? "\"" : "");
		/* MASKED_EQ reads (arg & value) == valueTwo: libseccomp's datum_a is the mask */
		cmp[i] = (struct scmp_arg_cmp){
		    .arg = (unsigned)json_integer_value(index),
		    .op = sc_ops[k].op,
		    .datum_a = (scmp_datum_t)json_integer_value(value),
		    .datum_b = two ? (scmp_datum_t)json_integer_value(two) : 0,
		};
	}
	return (int)json_array_size(arr);
}

/* Several comparisons on the same argument cannot be one libseccomp rule
 * (it refuses them); like runc, each comparison then becomes a rule of its
 * own, so the action applies when any of them matches. */
static bool repeats_an_arg(const struct scmp_arg_cmp *cmp, int n) {
	unsigned seen = 0;
	for (int i = 0; i < n; i++) {
		if (seen & (1u << cmp[i].arg))
			return true;
		seen |= 1u << cmp[i].arg;
	}
	return false;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const struct scmp_arg_cmp *cmp,
                    int ncmp, const char *jpath, size_t ni, const char *name, ms_err *err) {
	int rc = 0;
	if (ncmp && repeats_an_arg(cmp, ncmp)) {
		for (int i = 0; i < ncmp && !rc; i++)
			rc = seccomp_rule_add_array(ctx, action, nr, 1, &cmp[i]);
	} else {
		rc = seccomp_rule_add_array(ctx, action, nr, (unsigned)ncmp, cmp);
	}
	/* Anything but lack of memory is the profile's fault (conflicting
	 * rules, bad comparisons): report it as bad input. */
	if (rc)
		return ms_fail(err, rc == -ENOMEM ? rc : -EINVAL,
		               "%s.names[%zu]: rule for \"%s\": %s", jpath, ni, name,
		               strerror(-rc));
	return 0;
}

static int add_syscalls(scmp_filter_ctx ctx, json_t *arr, const char *jpath,
                        uint32_t default_action, ms_err *err) {
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return ms_fail(err, -EINVAL, "%s.syscalls: must be an array", jpath);
	size_t i;
	json_t *sc;
	json_array_foreach(arr, i, sc) {
		char path[SC_PATH_MAX];
		snprintf(path, sizeof path, "%s.syscalls[%zu]", jpath, i);
		if (!json_is_object(sc))
			return ms_fail(err, -EINVAL, "%s: must be an object", path);
		uint32_t action = 0;
		int rc =
		    parse_action(json_object_get(sc, "action"), json_object_get(sc, "errnoRet"),
		                 path, "action", "errnoRet", &action, err);
		if (rc)
			return rc;
		struct scmp_arg_cmp cmp[SC_MAX_ARGS] = {0};
		int ncmp = parse_args(json_object_get(sc, "args"), path, cmp, err);
		if (ncmp < 0)
			return ncmp;
		json_t *names = json_object_get(sc, "names");
		if (!json_is_array(names) || !json_array_size(names))
			return ms_fail(err, -EINVAL,
			               "%s.names: must be a non-empty array of strings", path);
		size_t ni;
		json_t *n;
		json_array_foreach(names, ni, n) {
			const char *name = json_string_value(n);
			if (!name)
				return ms_fail(err, -EINVAL, "%s.names[%zu]: must be a string",
				               path, ni);
			/* Names of other architectures resolve too (to negative
			 * pseudo numbers libseccomp maps per architecture); only a
			 * name no architecture has is __NR_SCMP_ERROR. */
			int nr = seccomp_syscall_resolve_name(name);
			if (nr == __NR_SCMP_ERROR)
				continue; /* sc_unknown_names: spec.c's warning */
			/* libseccomp refuses a rule that repeats the default action;
			 * it would change nothing anyway. */
			if (action == default_action)
				continue;
			rc = add_rule(ctx, action, nr, cmp, ncmp, path, ni, name, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Appends name to buf (", " between) unless it is there already; a name
 * that does not fit ends the list with "...". */
static void add_unique(char *buf, size_t len, const char *name) {
	size_t used = strlen(buf), n = strlen(name);
	for (const char *p = buf; (p = strstr(p, name)); p += n)
		if ((p == buf || p[-1] == ' ') && (p[n] == ',' || !p[n]))
			return;
	if (used && !strcmp(buf + used - 3, "..."))
		return;
	if (used + n + sizeof ", ..." > len) {
		if (used + sizeof ", ..." <= len)
			strcat(buf, used ? ", ..." : "...");
		return;
	}
	if (used)
		strcat(buf, ", ");
	strcat(buf, name);
}

int sc_unknown_names(json_t *seccomp, char *buf, size_t len) {
	int count = 0;
	if (len)
		buf[0] = 0;
	size_t i, ni;
	json_t *sc, *n;
	json_array_foreach(json_object_get(seccomp, "syscalls"), i, sc) {
		json_array_foreach(json_object_get(sc, "names"), ni, n) {
			const char *name = json_string_value(n);
			if (!name || seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR)
				continue;
			count++;
			if (len)
				add_unique(buf, len, name);
		}
	}
	return count;
}

/* seccomp_export_bpf() → memfd → one malloc'd array of instructions. */
static int export_program(scmp_filter_ctx ctx, const char *jpath, struct sock_fprog *prog,
                          ms_err *err) {
	int fd = memfd_create("moonshim-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return ms_fail(err, -errno, "%s: memfd_create: %s", jpath, strerror(errno));
	int rc = seccomp_export_bpf(ctx, fd);
	struct stat st;
	if (rc) {
		ms_fail(err, rc, "%s: seccomp_export_bpf: %s", jpath, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = ms_fail(err, -errno, "%s: fstat(memfd): %s", jpath, strerror(errno));
		goto out;
	}
	size_t len = (size_t)st.st_size / sizeof(struct sock_filter);
	if (!len || len > BPF_MAXINSNS || (size_t)st.st_size % sizeof(struct sock_filter)) {
		rc = ms_fail(err, -E2BIG, "%s: the filter has %lld bytes, not 1 to %d instructions",
		             jpath, (long long)st.st_size, BPF_MAXINSNS);
		goto out;
	}
	struct sock_filter *insns = malloc((size_t)st.st_size);
	if (!insns) {
		rc = ms_fail(err, -ENOMEM, "%s: out of memory", jpath);
		goto out;
	}
	for (size_t got = 0; got < (size_t)st.st_size;) {
		ssize_t r = pread(fd, (char *)insns + got, (size_t)st.st_size - got, (off_t)got);
		if (r <= 0) {
			rc = ms_fail(err, r < 0 ? -errno : -EIO,
			             "%s: reading the exported filter: %s", jpath,
			             r < 0 ? strerror(errno) : "short read");
			free(insns);
			goto out;
		}
		got += (size_t)r;
	}
	prog->filter = insns;
	prog->len = (unsigned short)len;
out:
	close(fd);
	return rc;
}

/* ─── Public ──────────────────────────────────────────────────────────── */

int sc_compile(json_t *seccomp, const char *jpath, sc_program *out, ms_err *err) {
	memset(out, 0, sizeof *out);
	if (!seccomp || json_is_null(seccomp))
		return 0;
	if (!json_is_object(seccomp))
		return ms_fail(err, -EINVAL, "%s: must be an object", jpath);
	if (json_object_get(seccomp, "listenerPath") ||
	    json_object_get(seccomp, "listenerMetadata"))
		return ms_fail(err, -EINVAL,
		               "%s.listenerPath: seccomp notification is not supported", jpath);
	uint32_t def = 0;
	int rc = parse_action(json_object_get(seccomp, "defaultAction"),
	                      json_object_get(seccomp, "defaultErrnoRet"), jpath, "defaultAction",
	                      "defaultErrnoRet", &def, err);
	if (rc)
		return rc;
	unsigned flags;
	if ((rc = parse_flags(json_object_get(seccomp, "flags"), jpath, &flags, err)))
		return rc;

	scmp_filter_ctx ctx = seccomp_init(def);
	if (!ctx)
		return ms_fail(err, -ENOMEM, "%s: seccomp_init failed", jpath);
	/* The caller sets no_new_privs itself (or not, with CAP_SYS_ADMIN). */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc) {
		ms_fail(err, rc, "%s: seccomp_attr_set(CTL_NNP): %s", jpath, strerror(-rc));
		goto out;
	}
	if ((rc = add_arches(ctx, json_object_get(seccomp, "architectures"), jpath, err)))
		goto out;
	if ((rc = add_syscalls(ctx, json_object_get(seccomp, "syscalls"), jpath, def, err)))
		goto out;
	rc = export_program(ctx, jpath, &out->prog, err);
	out->flags = flags;
out:
	seccomp_release(ctx);
	return rc;
}

void sc_free(sc_program *p) {
	if (!p)
		return;
	free(p->prog.filter);
	p->prog.filter = NULL;
	p->prog.len = 0;
}

int sc_install(const sc_program *p) {
	if (!p || !p->prog.len)
		return 0;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags, &p->prog) < 0)
		return -errno;
	return 0;
}
