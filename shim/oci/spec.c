/*
 * spec.c — config.json to struct spec: every field checked, errors naming
 * their JSON path, unsupported fields refused (isolation) or warned about.
 */
#define _GNU_SOURCE
#include "spec.h"

#include "base.h"
#include "seccomp.h"

#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* room for the unknown seccomp names in their warning (spec_warn keeps 512 bytes) */
#define SPEC_WARN_LIST 384
/* The kernel writes at most this many lines to uid_map/gid_map. */
#define MAX_ID_MAP_LINES 340

/* ─── small helpers ─────────────────────────────────────────────────── */

static char *xstrdup(const char *s) {
	char *d = strdup(s ? s : "");
	if (!d)
		abort(); /* config.json is small; running out here is fatal */
	return d;
}

static void *xcalloc(size_t n, size_t size) {
	void *p = calloc(n ? n : 1, size);
	if (!p)
		abort();
	return p;
}

#define warn spec_warn /* spec.h */

static const char *type_name(json_t *v) {
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* Typed field readers: absent is fine (returns 0 and leaves *out); the
 * wrong type is an error naming path.key. */
static int want(json_t *v, json_type t, const char *path, const char *what, ms_err *err) {
	if (json_typeof(v) == t || (t == JSON_TRUE && json_is_boolean(v)))
		return 0;
	return ms_fail(err, -EINVAL, "%s: must be %s, not %s", path, what, type_name(v));
}

static int get_str(json_t *obj, const char *key, const char *path, const char **out, ms_err *err) {
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	char p[256];
	snprintf(p, sizeof p, "%s.%s", path, key);
	if (want(v, JSON_STRING, p, "a string", err))
		return err->code;
	*out = json_string_value(v);
	return 0;
}

static int get_bool(json_t *obj, const char *key, const char *path, bool *out, ms_err *err) {
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	char p[256];
	snprintf(p, sizeof p, "%s.%s", path, key);
	if (want(v, JSON_TRUE, p, "a boolean", err))
		return err->code;
	*out = json_is_true(v);
	return 0;
}

static int get_int(json_t *obj, const char *key, const char *path, int64_t lo, int64_t hi,
                   bool *present, int64_t *out, ms_err *err) {
	json_t *v = json_object_get(obj, key);
	if (present)
		*present = v != NULL;
	if (!v)
		return 0;
	char p[256];
	snprintf(p, sizeof p, "%s.%s", path, key);
	if (want(v, JSON_INTEGER, p, "an integer", err))
		return err->code;
	json_int_t i = json_integer_value(v);
	if (i < lo || i > hi)
		return ms_fail(err, -ERANGE, "%s: %lld is out of range [%lld, %lld]", p,
		               (long long)i, (long long)lo, (long long)hi);
	*out = i;
	return 0;
}

/* An array of strings as a NULL-terminated vector. */
static int get_strv(json_t *obj, const char *key, const char *path, char ***out, size_t *n,
                    ms_err *err) {
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	char p[256];
	snprintf(p, sizeof p, "%s.%s", path, key);
	if (want(v, JSON_ARRAY, p, "an array of strings", err))
		return err->code;
	size_t len = json_array_size(v);
	char **vec = xcalloc(len + 1, sizeof *vec);
	for (size_t i = 0; i < len; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e)) {
			for (size_t j = 0; j < i; j++)
				free(vec[j]);
			free(vec);
			return ms_fail(err, -EINVAL, "%s[%zu]: must be a string, not %s", p, i,
			               type_name(e));
		}
		vec[i] = xstrdup(json_string_value(e));
	}
	*out = vec;
	if (n)
		*n = len;
	return 0;
}

static void free_strv(char **v) {
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* Fields present in obj that none of the known keys name. */
static void check_unknown(spec *s, json_t *obj, const char *path, const char *const *known) {
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = !strcmp(*k, key);
		if (!ok)
			warn(s, "%s.%s: not a field moonshim knows; ignored", path, key);
	}
}

/* ─── names ─────────────────────────────────────────────────────────── */

static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};

/* Capability name ("CAP_KILL") to number, -1 if unknown. */
static int spec_cap_number(const char *name) {
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	for (size_t i = 0; i < sizeof cap_names / sizeof *cap_names; i++)
		if (!strcasecmp(cap_names[i], name))
			return (int)i;
	return -1;
}

int spec_signal_number(const char *name) {
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {
	    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
	    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
	    {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
	    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
	    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
	    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
	    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
	    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
	};
	if (!name || !*name)
		return -1;
	char *end;
	long n = strtol(name, &end, 10);
	if (!*end)
		return n > 0 && n < NSIG ? (int)n : -1;
	if (!strncasecmp(name, "SIG", 3))
		name += 3;
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		if (!strcasecmp(sigs[i].name, name))
			return sigs[i].sig;
	if (!strncasecmp(name, "RTMIN+", 6) && (n = strtol(name + 6, &end, 10)) >= 0 && !*end &&
	    SIGRTMIN + n <= SIGRTMAX)
		return SIGRTMIN + (int)n;
	return -1;
}

static int rlimit_number(const char *name) {
	static const struct {
		const char *name;
		int res;
	} lims[] = {
	    {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
	    {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
	    {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
	    {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
	    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
	    {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
	    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
	};
	for (size_t i = 0; i < sizeof lims / sizeof *lims; i++)
		if (!strcmp(lims[i].name, name))
			return lims[i].res;
	return -1;
}

/* ─── process ───────────────────────────────────────────────────────── */

static int parse_caps(json_t *obj, const char *path, spec_process *p, ms_err *err) {
	static const char *const sets[] = {"bounding", "effective", "inheritable", "permitted",
	                                   "ambient"};
	uint64_t *dst[] = {&p->caps.bounding, &p->caps.effective, &p->caps.inheritable,
	                   &p->caps.permitted, &p->caps.ambient};
	if (want(obj, JSON_OBJECT, path, "an object", err))
		return err->code;
	p->has_caps = true;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		size_t k = 0;
		while (k < 5 && strcmp(sets[k], key))
			k++;
		if (k == 5)
			return ms_fail(
			    err, -EINVAL,
			    "%s.%s: unknown capability set (bounding, effective, inheritable, "
			    "permitted, ambient)",
			    path, key);
		if (want(v, JSON_ARRAY, path, "an array of capability names", err))
			return err->code;
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);
			int n = json_is_string(e) ? spec_cap_number(json_string_value(e)) : -1;
			if (n < 0)
				return ms_fail(
				    err, -EINVAL, "%s.%s[%zu]: unknown capability %s%s%s", path,
				    key, i, json_is_string(e) ? "\"" : "",
				    json_is_string(e) ? json_string_value(e) : type_name(e),
				    json_is_string(e) ? "\"" : "");
			if (n > CAP_LAST_CAP)
				return ms_fail(err, -EINVAL,
				               "%s.%s[%zu]: %s is newer than this kernel's headers",
				               path, key, i, json_string_value(e));
			*dst[k] |= 1ULL << n;
		}
	}
	return 0;
}

static int parse_rlimits(json_t *arr, const char *path, spec_process *p, ms_err *err) {
	if (want(arr, JSON_ARRAY, path, "an array", err))
		return err->code;
	p->nrlimits = json_array_size(arr);
	p->rlimits = xcalloc(p->nrlimits, sizeof *p->rlimits);
	for (size_t i = 0; i < p->nrlimits; i++) {
		char ep[256];
		snprintf(ep, sizeof ep, "%s[%zu]", path, i);
		json_t *e = json_array_get(arr, i);
		const char *type = NULL;
		if (want(e, JSON_OBJECT, ep, "an object", err) ||
		    get_str(e, "type", ep, &type, err))
			return err->code;
		int res = type ? rlimit_number(type) : -1;
		if (res < 0)
			return ms_fail(err, -EINVAL, "%s.type: unknown rlimit \"%s\"", ep,
			               type ? type : "(missing)");
		for (size_t j = 0; j < i; j++)
			if (p->rlimits[j].resource == res)
				return ms_fail(err, -EINVAL, "%s.type: %s given twice", ep, type);
		json_t *soft = json_object_get(e, "soft"), *hard = json_object_get(e, "hard");
		if (!json_is_integer(soft) || !json_is_integer(hard))
			return ms_fail(err, -EINVAL, "%s: soft and hard must both be integers", ep);
		p->rlimits[i].resource = res;
		p->rlimits[i].soft = (uint64_t)json_integer_value(soft);
		p->rlimits[i].hard = (uint64_t)json_integer_value(hard);
		if (p->rlimits[i].soft > p->rlimits[i].hard)
			return ms_fail(err, -EINVAL, "%s: soft %llu is above hard %llu", ep,
			               (unsigned long long)p->rlimits[i].soft,
			               (unsigned long long)p->rlimits[i].hard);
	}
	return 0;
}

int spec_parse_process(json_t *obj, const char *path, spec_process *p, ms_err *err) {
	memset(p, 0, sizeof *p);
	if (!obj)
		return ms_fail(err, -EINVAL, "%s: missing (the process to run)", path);
	if (want(obj, JSON_OBJECT, path, "an object", err))
		return err->code;
	const char *cwd = NULL;
	if (get_strv(obj, "args", path, &p->args, NULL, err) ||
	    get_strv(obj, "env", path, &p->env, NULL, err) ||
	    get_str(obj, "cwd", path, &cwd, err) ||
	    get_bool(obj, "terminal", path, &p->terminal, err) ||
	    get_bool(obj, "noNewPrivileges", path, &p->no_new_privs, err))
		return err->code;
	if (!p->args || !p->args[0] || !p->args[0][0])
		return ms_fail(err, -EINVAL, "%s.args: must name a program", path);
	if (!p->env)
		p->env = xcalloc(1, sizeof *p->env);
	if (!cwd || cwd[0] != '/')
		return ms_fail(err, -EINVAL, "%s.cwd: must be an absolute path, not \"%s\"", path,
		               cwd ? cwd : "");
	p->cwd = xstrdup(cwd);

	json_t *user = json_object_get(obj, "user");
	if (user) {
		char up[200];
		snprintf(up, sizeof up, "%s.user", path);
		int64_t v;
		if (want(user, JSON_OBJECT, up, "an object", err))
			return err->code;
		v = 0;
		if (get_int(user, "uid", up, 0, UINT32_MAX - 1, NULL, &v, err))
			return err->code;
		p->uid = (uid_t)v;
		v = 0;
		if (get_int(user, "gid", up, 0, UINT32_MAX - 1, NULL, &v, err))
			return err->code;
		p->gid = (gid_t)v;
		json_t *g = json_object_get(user, "additionalGids");
		if (g) {
			snprintf(up, sizeof up, "%s.user.additionalGids", path);
			if (want(g, JSON_ARRAY, up, "an array", err))
				return err->code;
			p->ngids = json_array_size(g);
			p->gids = xcalloc(p->ngids, sizeof *p->gids);
			for (size_t i = 0; i < p->ngids; i++) {
				json_t *e = json_array_get(g, i);
				if (!json_is_integer(e) || json_integer_value(e) < 0 ||
				    json_integer_value(e) >= UINT32_MAX)
					return ms_fail(err, -EINVAL, "%s[%zu]: must be a group id",
					               up, i);
				p->gids[i] = (gid_t)json_integer_value(e);
			}
		}
		if (json_object_get(user, "username"))
			return ms_fail(err, -ENOTSUP, "%s.user.username: Windows only", path);
		v = 0;
		if (get_int(user, "umask", up, 0, 0777, &p->has_umask, &v, err))
			return err->code;
		p->umask = (mode_t)v;
	}
	char sub[200];
	json_t *caps = json_object_get(obj, "capabilities");
	snprintf(sub, sizeof sub, "%s.capabilities", path);
	if (caps && parse_caps(caps, sub, p, err))
		return err->code;
	json_t *rl = json_object_get(obj, "rlimits");
	snprintf(sub, sizeof sub, "%s.rlimits", path);
	if (rl && parse_rlimits(rl, sub, p, err))
		return err->code;
	int64_t adj = 0;
	if (get_int(obj, "oomScoreAdj", path, -1000, 1000, &p->has_oom_score_adj, &adj, err))
		return err->code;
	p->oom_score_adj = (int)adj;
	/* Isolation the kernel would enforce through an LSM we don't load. */
	static const char *const refused[] = {"apparmorProfile", "selinuxLabel", "ioPriority",
	                                      "scheduler", "execCPUAffinity"};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		json_t *v = json_object_get(obj, refused[i]);
		if (v && !(json_is_string(v) && !*json_string_value(v)))
			return ms_fail(
			    err, -ENOTSUP,
			    "%s.%s: not supported by moonshim (refusing to run without it)", path,
			    refused[i]);
	}
	if (json_object_get(obj, "consoleSize") && !p->terminal)
		return ms_fail(err, -EINVAL, "%s.consoleSize: only valid with terminal: true",
		               path);
	return 0;
}

void spec_process_free(spec_process *p) {
	free_strv(p->args);
	free_strv(p->env);
	free(p->cwd);
	free(p->gids);
	free(p->rlimits);
	memset(p, 0, sizeof *p);
}

/* ─── mounts ────────────────────────────────────────────────────────── */

static const struct mount_opt {
	const char *name;
	bool clear; /* the option clears flag */
	unsigned long flag;
} mount_opts[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
};

static const struct prop_opt {
	const char *name;
	unsigned long flags;
} prop_opts[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

static int parse_propagation(const char *name, unsigned long *out) {
	for (size_t i = 0; i < sizeof prop_opts / sizeof *prop_opts; i++)
		if (!strcmp(prop_opts[i].name, name)) {
			*out = prop_opts[i].flags;
			return 0;
		}
	return -1;
}

/* Join a path to the bundle unless it is absolute. */
static char *bundle_path(const spec *s, const char *p) {
	char *out;
	if (p[0] == '/')
		return xstrdup(p);
	if (asprintf(&out, "%s/%s", s->bundle, p) < 0)
		abort();
	return out;
}

static int parse_idmaps(json_t *arr, const char *path, spec_idmap **out, size_t *n, ms_err *err);

/* A mount's uidMappings and gidMappings: both or neither, neither empty
 * (the container's mappings are asked for by leaving both out). */
static int parse_mount_idmaps(json_t *m, const char *path, spec_mount *out, ms_err *err) {
	json_t *u = json_object_get(m, "uidMappings"), *g = json_object_get(m, "gidMappings");
	if (!u && !g)
		return 0;
	if (!u || !g)
		return ms_fail(err, -EINVAL,
		               "%s.%s: missing (uidMappings and gidMappings go together)", path,
		               u ? "gidMappings" : "uidMappings");
	char up[64], gp[64];
	snprintf(up, sizeof up, "%s.uidMappings", path);
	snprintf(gp, sizeof gp, "%s.gidMappings", path);
	if (parse_idmaps(u, up, &out->uidmap, &out->nuidmap, err) ||
	    parse_idmaps(g, gp, &out->gidmap, &out->ngidmap, err))
		return err->code;
	if (!out->nuidmap || !out->ngidmap)
		return ms_fail(err, -EINVAL,
		               "%s: empty (leave uidMappings and gidMappings out for the "
		               "container's own)",
		               out->nuidmap ? gp : up);
	out->idmap = true;
	return 0;
}

static int parse_mount(spec *s, json_t *m, const char *path, spec_mount *out, ms_err *err) {
	const char *dest = NULL, *type = NULL, *source = NULL;
	if (want(m, JSON_OBJECT, path, "an object", err) ||
	    get_str(m, "destination", path, &dest, err) || get_str(m, "type", path, &type, err) ||
	    get_str(m, "source", path, &source, err))
		return err->code;
	if (!dest || dest[0] != '/')
		return ms_fail(
		    err, -EINVAL,
		    "%s.destination: must be an absolute path inside the container, not \"%s\"",
		    path, dest ? dest : "");
	if (strstr(dest, "/../") ||
	    !strcmp(dest + strlen(dest) - (strlen(dest) >= 3 ? 3 : 0), "/.."))
		return ms_fail(err, -EINVAL, "%s.destination: \"%s\" climbs out with \"..\"", path,
		               dest);
	if (parse_mount_idmaps(m, path, out, err))
		return err->code;
	out->dest = xstrdup(dest);
	char data[1024] = "";
	size_t dlen = 0;
	json_t *opts = json_object_get(m, "options");
	if (opts && want(opts, JSON_ARRAY, path, "an array of options", err))
		return err->code;
	for (size_t i = 0; i < json_array_size(opts); i++) {
		json_t *o = json_array_get(opts, i);
		if (!json_is_string(o))
			return ms_fail(err, -EINVAL, "%s.options[%zu]: must be a string", path, i);
		const char *name = json_string_value(o);
		bool done = false;
		for (size_t k = 0; k < sizeof mount_opts / sizeof *mount_opts && !done; k++)
			if (!strcmp(mount_opts[k].name, name)) {
				if (mount_opts[k].clear)
					out->flags &= ~mount_opts[k].flag;
				else
					out->flags |= mount_opts[k].flag;
				done = true;
			}
		unsigned long prop;
		if (!done && !parse_propagation(name, &prop)) {
			out->propagation = prop;
			done = true;
		}
		if (!done && (!strcmp(name, "bind") || !strcmp(name, "rbind"))) {
			out->bind = true;
			out->flags |= MS_BIND | (name[0] == 'r' ? MS_REC : 0);
			done = true;
		}
		if (!done && (!strcmp(name, "idmap") || !strcmp(name, "ridmap"))) {
			out->idmap = true;
			out->idmap_recursive |= name[0] == 'r';
			done = true;
		}
		if (!done && !strcmp(name, "rro")) {
			out->rro = true;
			done = true;
		}
		if (!done && !strcmp(name, "tmpcopyup")) {
			warn(s,
			     "%s.options[%zu]: tmpcopyup is not supported; the tmpfs starts empty",
			     path, i);
			done = true;
		}
		if (!done) { /* for the filesystem to parse */
			size_t n = strlen(name);
			if (dlen + n + 2 > sizeof data)
				return ms_fail(err, -E2BIG, "%s.options: too long", path);
			if (dlen)
				data[dlen++] = ',';
			memcpy(data + dlen, name, n + 1);
			dlen += n;
		}
	}
	if (!type || !*type || !strcmp(type, "bind") || !strcmp(type, "none"))
		if (!out->bind && (!type || !*type || !strcmp(type, "bind"))) {
			out->bind = true;
			out->flags |=
			    MS_BIND |
			    MS_REC; /* a mount without a type is a bind (runc does the same) */
		}
	out->type = xstrdup(out->bind ? "" : type);
	if (!out->bind && !*out->type)
		return ms_fail(err, -EINVAL, "%s.type: missing", path);
	if (out->bind) {
		if (!source || !*source)
			return ms_fail(err, -EINVAL, "%s.source: a bind mount needs a source",
			               path);
		out->source = bundle_path(s, source);
		if (dlen)
			warn(s, "%s.options: \"%s\" has no meaning for a bind mount; ignored", path,
			     data);
		dlen = 0;
		data[0] = 0;
	} else {
		out->source = xstrdup(source && *source ? source : out->type);
	}
	out->data = xstrdup(data);
	return 0;
}

/* ─── linux ─────────────────────────────────────────────────────────── */

static int ns_flag(const char *type) {
	static const struct {
		const char *name;
		int flag;
	} ns[] = {{"pid", CLONE_NEWPID},       {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
	          {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},     {"user", CLONE_NEWUSER},
	          {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
	for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
		if (!strcmp(ns[i].name, type))
			return ns[i].flag;
	return 0;
}

static int parse_namespaces(spec *s, json_t *arr, ms_err *err) {
	const char *path = "linux.namespaces";
	if (want(arr, JSON_ARRAY, path, "an array", err))
		return err->code;
	s->joins = xcalloc(json_array_size(arr), sizeof *s->joins);
	int seen = 0;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		char ep[64];
		snprintf(ep, sizeof ep, "%s[%zu]", path, i);
		json_t *e = json_array_get(arr, i);
		const char *type = NULL, *nspath = NULL;
		if (want(e, JSON_OBJECT, ep, "an object", err) ||
		    get_str(e, "type", ep, &type, err) || get_str(e, "path", ep, &nspath, err))
			return err->code;
		int f = type ? ns_flag(type) : 0;
		if (!f)
			return ms_fail(err, -EINVAL,
			               "%s.type: unknown namespace type \"%s\" (pid, network, "
			               "mount, ipc, uts, "
			               "user, cgroup, time)",
			               ep, type ? type : "");
		if (seen & f)
			return ms_fail(err, -EINVAL, "%s.type: namespace \"%s\" listed twice", ep,
			               type);
		seen |= f;
		if (nspath && *nspath) {
			if (nspath[0] != '/')
				return ms_fail(err, -EINVAL,
				               "%s.path: must be absolute, not \"%s\"", ep, nspath);
			struct stat st;
			if (stat(nspath, &st) < 0)
				return ms_fail(err, -errno, "%s.path: %s: %s", ep, nspath,
				               strerror(errno));
			s->joins[s->njoins].type = f;
			s->joins[s->njoins++].path = xstrdup(nspath);
			s->ns_joins_mask |= f;
		} else {
			s->ns_new |= f;
		}
	}
	return 0;
}

static int parse_idmaps(json_t *arr, const char *path, spec_idmap **out, size_t *n, ms_err *err) {
	if (want(arr, JSON_ARRAY, path, "an array", err))
		return err->code;
	size_t len = json_array_size(arr);
	if (len > MAX_ID_MAP_LINES)
		return ms_fail(err, -E2BIG, "%s: %zu ranges, the kernel takes at most %d", path,
		               len, MAX_ID_MAP_LINES);
	spec_idmap *m = xcalloc(len, sizeof *m);
	*out = m;
	*n = len;
	for (size_t i = 0; i < len; i++) {
		char ep[64];
		snprintf(ep, sizeof ep, "%s[%zu]", path, i);
		json_t *e = json_array_get(arr, i);
		int64_t in = -1, outid = -1, size = -1;
		if (want(e, JSON_OBJECT, ep, "an object", err) ||
		    get_int(e, "containerID", ep, 0, UINT32_MAX - 1, NULL, &in, err) ||
		    get_int(e, "hostID", ep, 0, UINT32_MAX - 1, NULL, &outid, err) ||
		    get_int(e, "size", ep, 0, UINT32_MAX, NULL, &size, err))
			return err->code;
		if (in < 0 || outid < 0 || size < 0)
			return ms_fail(err, -EINVAL,
			               "%s: containerID, hostID and size are all required", ep);
		if (size == 0)
			return ms_fail(err, -EINVAL, "%s.size: must be at least 1", ep);
		if (in + size > UINT32_MAX || outid + size > UINT32_MAX)
			return ms_fail(err, -ERANGE, "%s: the range passes 2^32-1", ep);
		m[i] = (spec_idmap){(uint32_t)in, (uint32_t)outid, (uint32_t)size};
		for (size_t j = 0; j < i; j++) {
			bool in_overlap = m[j].inside < m[i].inside + m[i].size &&
			                  m[i].inside < m[j].inside + m[j].size;
			bool out_overlap = m[j].outside < m[i].outside + m[i].size &&
			                   m[i].outside < m[j].outside + m[j].size;
			if (in_overlap || out_overlap)
				return ms_fail(err, -EINVAL, "%s: overlaps %s[%zu] (%s ids)", ep,
				               path, j, in_overlap ? "container" : "host");
		}
	}
	return 0;
}

static bool id_mapped(const spec_idmap *m, size_t n, uint32_t id) {
	for (size_t i = 0; i < n; i++)
		if (id >= m[i].inside && id - m[i].inside < m[i].size)
			return true;
	return false;
}

static int parse_unified(spec *s, json_t *obj, ms_err *err) {
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (!json_is_string(v))
			return ms_fail(err, -EINVAL, "linux.resources.unified.%s: must be a string",
			               key);
		const char *val = json_string_value(v);
		int64_t n = !strcmp(val, "max") ? CG_NOLIMIT : strtoll(val, NULL, 10);
		int64_t *dst = !strcmp(key, "memory.high")       ? &s->limits.memory_high
		               : !strcmp(key, "memory.max")      ? &s->limits.memory_max
		               : !strcmp(key, "memory.low")      ? &s->limits.memory_low
		               : !strcmp(key, "memory.min")      ? &s->limits.memory_min
		               : !strcmp(key, "memory.swap.max") ? &s->limits.swap_max
		               : !strcmp(key, "pids.max")        ? &s->limits.pids_max
		               : !strcmp(key, "cpu.weight")      ? &s->limits.cpu_weight
		                                                 : NULL;
		if (dst) {
			char *end;
			if (n != CG_NOLIMIT && (strtoll(val, &end, 10) < 0 || *end))
				return ms_fail(
				    err, -EINVAL,
				    "linux.resources.unified.%s: \"%s\" is not a number or \"max\"",
				    key, val);
			*dst = n;
		} else if (!strcmp(key, "cpu.max")) {
			char q[32];
			long long period = 100000;
			if (sscanf(val, "%31s %lld", q, &period) < 1)
				return ms_fail(err, -EINVAL,
				               "linux.resources.unified.cpu.max: \"%s\"", val);
			s->limits.cpu_quota_us =
			    !strcmp(q, "max") ? CG_NOLIMIT : strtoll(q, NULL, 10);
			s->limits.cpu_period_us = period;
		} else if (!strcmp(key, "memory.oom.group")) {
			s->limits.oom_group = atoi(val) ? 1 : 0;
		} else {
			return ms_fail(err, -ENOTSUP,
			               "linux.resources.unified.%s: not a file moonshim sets", key);
		}
	}
	return 0;
}

/* A cpuset list ("0-1,3"): digits, commas and dashes; "" is unset. */
static int get_cpuset(json_t *obj, const char *key, const char *path, const char **out,
                      ms_err *err) {
	const char *v = NULL;
	if (get_str(obj, key, path, &v, err))
		return err->code;
	if (!v || !*v)
		return 0;
	if (strlen(v) >= CG_CPUSET_LIST_MAX || v[strspn(v, "0123456789,-")])
		return ms_fail(err, -EINVAL, "%s.%s: \"%.64s\" is not a cpuset list like \"0-1,3\"",
		               path, key, v);
	*out = v;
	return 0;
}

/* blockIO.throttle*Device: [{major, minor, rate}] */
static int parse_throttles(spec *s, json_t *bio, const char *key, cg_throttle_kind kind,
                           ms_err *err) {
	json_t *arr = json_object_get(bio, key);
	char path[128];
	snprintf(path, sizeof path, "linux.resources.blockIO.%s", key);
	if (!arr)
		return 0;
	if (want(arr, JSON_ARRAY, path, "an array", err))
		return err->code;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		char ep[160];
		snprintf(ep, sizeof ep, "%s[%zu]", path, i);
		json_t *e = json_array_get(arr, i);
		int64_t major = -1, minor = -1, rate = 0;
		if (want(e, JSON_OBJECT, ep, "an object", err) ||
		    get_int(e, "major", ep, 0, UINT32_MAX, NULL, &major, err) ||
		    get_int(e, "minor", ep, 0, UINT32_MAX, NULL, &minor, err) ||
		    get_int(e, "rate", ep, 0, INT64_MAX, NULL, &rate, err))
			return err->code;
		if (major < 0 || minor < 0)
			return ms_fail(err, -EINVAL, "%s: needs major and minor", ep);
		if (s->limits.nthrottles == SPEC_MAX_THROTTLES)
			return ms_fail(err, -E2BIG, "%s: more than %d throttles", ep,
			               SPEC_MAX_THROTTLES);
		if (!s->throttles)
			s->throttles = xcalloc(SPEC_MAX_THROTTLES, sizeof *s->throttles);
		s->throttles[s->limits.nthrottles++] =
		    (cg_io_throttle){major, minor, kind, (uint64_t)rate};
		s->limits.throttles = s->throttles;
	}
	return 0;
}

static int parse_block_io(spec *s, json_t *bio, ms_err *err) {
	const char *bp = "linux.resources.blockIO";
	int64_t weight = CG_UNSET;
	if (want(bio, JSON_OBJECT, bp, "an object", err) ||
	    get_int(bio, "weight", bp, 0, SPEC_BLKIO_WEIGHT_MAX, NULL, &weight, err))
		return err->code;
	if (weight > 0) /* 0: unset, as runc reads it */
		s->limits.blkio_weight = weight;
	static const struct {
		const char *key;
		cg_throttle_kind kind;
	} th[] = {{"throttleReadBpsDevice", CG_THROTTLE_RBPS},
	          {"throttleWriteBpsDevice", CG_THROTTLE_WBPS},
	          {"throttleReadIOPSDevice", CG_THROTTLE_RIOPS},
	          {"throttleWriteIOPSDevice", CG_THROTTLE_WIOPS}};
	for (size_t i = 0; i < sizeof th / sizeof *th; i++)
		if (parse_throttles(s, bio, th[i].key, th[i].kind, err))
			return err->code;
	static const char *const soft[] = {"leafWeight", "weightDevice"};
	for (size_t i = 0; i < sizeof soft / sizeof *soft; i++)
		if (json_object_get(bio, soft[i]))
			warn(s, "%s.%s: not supported by moonshim; ignored", bp, soft[i]);
	return 0;
}

/* hugepageLimits: [{pageSize: "2MB", limit}] */
static int parse_hugepages(spec *s, json_t *arr, ms_err *err) {
	const char *hp = "linux.resources.hugepageLimits";
	if (want(arr, JSON_ARRAY, hp, "an array", err))
		return err->code;
	if (json_array_size(arr) > SPEC_MAX_HUGEPAGES)
		return ms_fail(err, -E2BIG, "%s: more than %d page sizes", hp, SPEC_MAX_HUGEPAGES);
	free(s->hugepages);
	s->hugepages = xcalloc(json_array_size(arr), sizeof *s->hugepages);
	s->limits.hugepages = s->hugepages;
	s->limits.nhugepages = 0;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		char ep[96];
		snprintf(ep, sizeof ep, "%s[%zu]", hp, i);
		json_t *e = json_array_get(arr, i);
		const char *size = NULL;
		int64_t limit = -1;
		if (want(e, JSON_OBJECT, ep, "an object", err) ||
		    get_str(e, "pageSize", ep, &size, err) ||
		    get_int(e, "limit", ep, 0, INT64_MAX, NULL, &limit, err))
			return err->code;
		cg_hugepage *h = &s->hugepages[s->limits.nhugepages++];
		if (!size || !*size || strlen(size) >= sizeof h->size ||
		    size[strspn(size, "0123456789KMGB")])
			return ms_fail(err, -EINVAL,
			               "%s.pageSize: \"%.32s\" is not a size like \"2MB\"", ep,
			               size ? size : "");
		if (limit < 0)
			return ms_fail(err, -EINVAL, "%s: needs a limit", ep);
		snprintf(h->size, sizeof h->size, "%s", size);
		h->limit = limit;
	}
	return 0;
}

static int parse_resources(spec *s, json_t *res, ms_err *err) {
	const char *path = "linux.resources";
	if (want(res, JSON_OBJECT, path, "an object", err))
		return err->code;
	json_t *mem = json_object_get(res, "memory");
	if (mem) {
		const char *mp = "linux.resources.memory";
		int64_t limit = CG_UNSET, resv = CG_UNSET, swap = CG_UNSET;
		if (want(mem, JSON_OBJECT, mp, "an object", err) ||
		    get_int(mem, "limit", mp, -1, INT64_MAX, NULL, &limit, err) ||
		    get_int(mem, "reservation", mp, -1, INT64_MAX, NULL, &resv, err) ||
		    get_int(mem, "swap", mp, -1, INT64_MAX, NULL, &swap, err))
			return err->code;
		s->limits.memory_max = limit == -1 ? CG_NOLIMIT : limit;
		s->memory_reservation = resv == -1 ? CG_NOLIMIT : resv;
		if (swap != CG_UNSET) { /* OCI swap is memory+swap (v1 memsw); v2's swap.max is the
			                   swap alone */
			if (swap == -1)
				s->limits.swap_max = CG_NOLIMIT;
			else if (limit < 0 || swap < limit)
				return ms_fail(err, -EINVAL,
				               "%s.swap: %lld must be at least the memory limit",
				               mp, (long long)swap);
			else
				s->limits.swap_max = swap - limit;
		}
		int64_t swappiness = CG_UNSET;
		if (get_int(mem, "swappiness", mp, -1, SPEC_SWAPPINESS_MAX, NULL, &swappiness, err))
			return err->code;
		if (swappiness >= 0) /* -1: the kernel's default, as runc reads it */
			s->limits.swappiness = swappiness;
		static const char *const soft[] = {"kernel", "kernelTCP", "disableOOMKiller",
		                                   "useHierarchy", "checkBeforeUpdate"};
		for (size_t i = 0; i < sizeof soft / sizeof *soft; i++)
			if (json_object_get(mem, soft[i]))
				warn(s, "%s.%s: not supported by moonshim; ignored", mp, soft[i]);
	}
	json_t *cpu = json_object_get(res, "cpu");
	if (cpu) {
		const char *cp = "linux.resources.cpu";
		int64_t shares = CG_UNSET, quota = CG_UNSET, period = CG_UNSET;
		if (want(cpu, JSON_OBJECT, cp, "an object", err) ||
		    get_int(cpu, "shares", cp, 0, INT64_MAX, NULL, &shares, err) ||
		    get_int(cpu, "quota", cp, -1, INT64_MAX, NULL, &quota, err) ||
		    get_int(cpu, "period", cp, 0, INT64_MAX, NULL, &period, err))
			return err->code;
		if (shares > 0) /* 0: the kernel's default */
			s->limits.cpu_shares = shares < 2 ? 2 : shares > 262144 ? 262144 : shares;
		if (quota != CG_UNSET)
			s->limits.cpu_quota_us = quota <= 0 ? CG_NOLIMIT : quota;
		if (period > 0)
			s->limits.cpu_period_us = period;
		if (get_cpuset(cpu, "cpus", cp, &s->limits.cpuset_cpus, err) ||
		    get_cpuset(cpu, "mems", cp, &s->limits.cpuset_mems, err))
			return err->code;
		static const char *const soft[] = {"realtimeRuntime", "realtimePeriod", "burst",
		                                   "idle"};
		for (size_t i = 0; i < sizeof soft / sizeof *soft; i++)
			if (json_object_get(cpu, soft[i]))
				warn(s, "%s.%s: not supported by moonshim; ignored", cp, soft[i]);
	}
	json_t *pids = json_object_get(res, "pids");
	if (pids) {
		int64_t lim = CG_UNSET;
		if (want(pids, JSON_OBJECT, "linux.resources.pids", "an object", err) ||
		    get_int(pids, "limit", "linux.resources.pids", INT64_MIN, INT64_MAX, NULL, &lim,
		            err))
			return err->code;
		if (lim != CG_UNSET)
			s->limits.pids_max = lim <= 0 ? CG_NOLIMIT : lim;
	}
	json_t *dev = json_object_get(res, "devices");
	if (dev) {
		if (want(dev, JSON_ARRAY, "linux.resources.devices", "an array", err))
			return err->code;
		s->device_rules = dev;
	}
	json_t *uni = json_object_get(res, "unified");
	if (uni && (want(uni, JSON_OBJECT, "linux.resources.unified", "an object", err) ||
	            parse_unified(s, uni, err)))
		return err->code;
	json_t *bio = json_object_get(res, "blockIO");
	if (bio && parse_block_io(s, bio, err))
		return err->code;
	json_t *huge = json_object_get(res, "hugepageLimits");
	if (huge && parse_hugepages(s, huge, err))
		return err->code;
	static const char *const soft[] = {"network", "rdma"};
	for (size_t i = 0; i < sizeof soft / sizeof *soft; i++)
		if (json_object_get(res, soft[i]))
			warn(s, "%s.%s: not supported by moonshim; ignored", path, soft[i]);
	return 0;
}

static int parse_devices(spec *s, json_t *arr, ms_err *err) {
	const char *path = "linux.devices";
	if (want(arr, JSON_ARRAY, path, "an array", err))
		return err->code;
	s->ndevices = json_array_size(arr);
	s->devices = xcalloc(s->ndevices, sizeof *s->devices);
	for (size_t i = 0; i < s->ndevices; i++) {
		char ep[64];
		snprintf(ep, sizeof ep, "%s[%zu]", path, i);
		json_t *e = json_array_get(arr, i);
		spec_device *d = &s->devices[i];
		const char *p = NULL, *type = NULL;
		int64_t mode = 0666, uid = 0, gid = 0;
		d->major = d->minor = -1;
		if (want(e, JSON_OBJECT, ep, "an object", err) || get_str(e, "path", ep, &p, err) ||
		    get_str(e, "type", ep, &type, err) ||
		    get_int(e, "major", ep, 0, 4095, NULL, &d->major, err) ||
		    get_int(e, "minor", ep, 0, 1048575, NULL, &d->minor, err) ||
		    get_int(e, "fileMode", ep, 0, 07777, NULL, &mode, err) ||
		    get_int(e, "uid", ep, 0, UINT32_MAX - 1, NULL, &uid, err) ||
		    get_int(e, "gid", ep, 0, UINT32_MAX - 1, NULL, &gid, err))
			return err->code;
		if (!p || strncmp(p, "/dev/", 5))
			return ms_fail(err, -EINVAL, "%s.path: must be under /dev, not \"%s\"", ep,
			               p ? p : "");
		if (!type || strlen(type) != 1 || !strchr("cbup", type[0]))
			return ms_fail(err, -EINVAL, "%s.type: must be c, b, u or p, not \"%s\"",
			               ep, type ? type : "");
		if (type[0] != 'p' && (d->major < 0 || d->minor < 0))
			return ms_fail(err, -EINVAL, "%s: a %s device needs major and minor", ep,
			               type);
		d->path = xstrdup(p);
		d->type = type[0] == 'u' ? 'c' : type[0];
		d->mode = (uint32_t)mode & 07777;
		d->uid = (uid_t)uid;
		d->gid = (gid_t)gid;
	}
	return 0;
}

static int parse_sysctls(spec *s, json_t *obj, ms_err *err) {
	if (want(obj, JSON_OBJECT, "linux.sysctl", "an object", err))
		return err->code;
	s->sysctls = xcalloc(json_object_size(obj), sizeof *s->sysctls);
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (!json_is_string(v))
			return ms_fail(err, -EINVAL, "linux.sysctl.%s: must be a string", key);
		if (!*key || strstr(key, "..") || key[0] == '/' || key[0] == '.')
			return ms_fail(err, -EINVAL, "linux.sysctl: \"%s\" is not a sysctl name",
			               key);
		spec_kv *kv = &s->sysctls[s->nsysctls++];
		kv->key = xstrdup(key);
		for (char *c = kv->key; *c; c++) /* "net/ipv4/ip_forward" names the same */
			if (*c == '/')
				*c = '.';
		kv->value = xstrdup(json_string_value(v));
	}
	return 0;
}

static int parse_linux(spec *s, json_t *lx, ms_err *err) {
	if (want(lx, JSON_OBJECT, "linux", "an object", err))
		return err->code;
	json_t *v;
	if ((v = json_object_get(lx, "namespaces")) && parse_namespaces(s, v, err))
		return err->code;
	if ((v = json_object_get(lx, "uidMappings")) &&
	    parse_idmaps(v, "linux.uidMappings", &s->uidmap, &s->nuidmap, err))
		return err->code;
	if ((v = json_object_get(lx, "gidMappings")) &&
	    parse_idmaps(v, "linux.gidMappings", &s->gidmap, &s->ngidmap, err))
		return err->code;
	if ((v = json_object_get(lx, "resources")) && parse_resources(s, v, err))
		return err->code;
	const char *cgp = NULL, *prop = NULL;
	if (get_str(lx, "cgroupsPath", "linux", &cgp, err) ||
	    get_str(lx, "rootfsPropagation", "linux", &prop, err))
		return err->code;
	if (cgp && *cgp) {
		if (strstr(cgp, "..") || strchr(cgp, ':'))
			return ms_fail(err, -EINVAL,
			               "linux.cgroupsPath: \"%s\" must be a plain path (no \"..\"; "
			               "the systemd "
			               "\"slice:prefix:name\" form is not supported)",
			               cgp);
		s->cgroups_path = xstrdup(cgp);
	}
	if (prop && *prop && parse_propagation(prop, &s->rootfs_propagation))
		return ms_fail(err, -EINVAL, "linux.rootfsPropagation: unknown propagation \"%s\"",
		               prop);
	if ((v = json_object_get(lx, "seccomp"))) {
		if (want(v, JSON_OBJECT, "linux.seccomp", "an object", err))
			return err->code;
		s->seccomp = v;
		char names[SPEC_WARN_LIST];
		if (sc_unknown_names(v, names, sizeof names)) {
			const struct scmp_version *lv = seccomp_version();
			spec_warn(s,
			          "linux.seccomp: syscall names libseccomp %u.%u.%u does not know "
			          "are skipped (no rule filters them): %s",
			          lv->major, lv->minor, lv->micro, names);
		}
	}
	if (get_strv(lx, "maskedPaths", "linux", &s->masked, &s->nmasked, err) ||
	    get_strv(lx, "readonlyPaths", "linux", &s->readonly, &s->nreadonly, err))
		return err->code;
	for (size_t i = 0; i < s->nmasked; i++)
		if (s->masked[i][0] != '/')
			return ms_fail(err, -EINVAL, "linux.maskedPaths[%zu]: must be absolute", i);
	for (size_t i = 0; i < s->nreadonly; i++)
		if (s->readonly[i][0] != '/')
			return ms_fail(err, -EINVAL, "linux.readonlyPaths[%zu]: must be absolute",
			               i);
	if ((v = json_object_get(lx, "devices")) && parse_devices(s, v, err))
		return err->code;
	if ((v = json_object_get(lx, "sysctl")) && parse_sysctls(s, v, err))
		return err->code;
	static const char *const refused[] = {"intelRdt", "mountLabel", "personality",
	                                      "memoryPolicy", "netDevices"};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
		if (json_object_get(lx, refused[i]))
			return ms_fail(
			    err, -ENOTSUP,
			    "linux.%s: not supported by moonshim (refusing to run without it)",
			    refused[i]);
	static const char *const known[] = {"namespaces", "uidMappings", "gidMappings",
	                                    "resources",  "cgroupsPath", "rootfsPropagation",
	                                    "seccomp",    "maskedPaths", "readonlyPaths",
	                                    "devices",    "sysctl",      NULL};
	check_unknown(s, lx, "linux", known);
	return 0;
}

/* ─── sysctls: only those of the container's own namespaces ──────────── */

/* The sysctls a new ipc namespace has its own copy of (ipc_sysctls.c and
 * mq_sysctls.c in the kernel); every other kernel.* or vm.* is the host's. */
static const char *const ipc_sysctls[] = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",          "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", NULL};
static const char *const uts_sysctls[] = {"kernel.hostname", "kernel.domainname", NULL};

static bool in_list(const char *const *list, const char *key) {
	for (; *list; list++)
		if (!strcmp(*list, key))
			return true;
	return false;
}

/* Whether the container gets a namespace of `type` other than ours: a new
 * one, or one joined by a path that is not the namespace we run in. */
static bool ns_private(const spec *s, int type, const char *self_ns) {
	if (s->ns_new & type)
		return true;
	struct stat mine, theirs;
	for (size_t i = 0; i < s->njoins; i++)
		if (s->joins[i].type == type)
			return stat(self_ns, &mine) == 0 && stat(s->joins[i].path, &theirs) == 0 &&
			       (mine.st_dev != theirs.st_dev || mine.st_ino != theirs.st_ino);
	return false;
}

/* runc's rule set: a sysctl is written only when it belongs to a namespace
 * the container does not share with the host; anything else would change
 * the host for every process on it. */
static int check_sysctls(const spec *s, ms_err *err) {
	for (size_t i = 0; i < s->nsysctls; i++) {
		const char *k = s->sysctls[i].key;
		if (in_list(ipc_sysctls, k) || !strncmp(k, "fs.mqueue.", 10)) {
			if (!ns_private(s, CLONE_NEWIPC, "/proc/self/ns/ipc"))
				return ms_fail(
				    err, -EINVAL,
				    "linux.sysctl: sysctl \"%s\" is not allowed in the host's ipc "
				    "namespace",
				    k);
		} else if (!strncmp(k, "net.", 4)) {
			if (!ns_private(s, CLONE_NEWNET, "/proc/self/ns/net"))
				return ms_fail(
				    err, -EINVAL,
				    "linux.sysctl: sysctl \"%s\" is not allowed in the host's "
				    "network namespace",
				    k);
		} else if (in_list(uts_sysctls, k)) {
			if (!ns_private(s, CLONE_NEWUTS, "/proc/self/ns/uts"))
				return ms_fail(
				    err, -EINVAL,
				    "linux.sysctl: sysctl \"%s\" is not allowed in the host's uts "
				    "namespace",
				    k);
		} else {
			return ms_fail(
			    err, -EINVAL,
			    "linux.sysctl: sysctl \"%s\" is not in a separate kernel namespace", k);
		}
	}
	return 0;
}

static bool same_idmap(const spec_idmap *a, size_t na, const spec_idmap *b, size_t nb) {
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].inside != b[i].inside || a[i].outside != b[i].outside ||
		    a[i].size != b[i].size)
			return false;
	return true;
}

/* Idmapped mounts: binds only, a bounded number, each with mappings of
 * its own or a user namespace of the container's to take them from. Own
 * mappings equal to the container's are dropped: its namespace serves. */
static int check_idmounts(spec *s, ms_err *err) {
	bool userns = s->ns_new & CLONE_NEWUSER, joined = s->ns_joins_mask & CLONE_NEWUSER;
	size_t n = 0;
	for (size_t i = 0; i < s->nmounts; i++) {
		spec_mount *m = &s->mounts[i];
		if (!m->idmap)
			continue;
		if (++n > SPEC_MAX_IDMAP_MOUNTS)
			return ms_fail(err, -E2BIG, "mounts[%zu]: more than %d idmapped mounts", i,
			               SPEC_MAX_IDMAP_MOUNTS);
		if (!m->bind)
			return ms_fail(err, -EINVAL,
			               "mounts[%zu] (%s): an idmapped mount must be a bind mount, "
			               "not type \"%s\"",
			               i, m->dest, m->type);
		if (!m->nuidmap && !userns && !joined)
			return ms_fail(
			    err, -EINVAL,
			    "mounts[%zu] (%s): idmap without uidMappings and gidMappings "
			    "takes the container's user namespace, and it has none",
			    i, m->dest);
		if (userns && same_idmap(m->uidmap, m->nuidmap, s->uidmap, s->nuidmap) &&
		    same_idmap(m->gidmap, m->ngidmap, s->gidmap, s->ngidmap)) {
			free(m->uidmap);
			free(m->gidmap);
			m->uidmap = m->gidmap = NULL;
			m->nuidmap = m->ngidmap = 0;
		}
	}
	return 0;
}

/* Cross-field checks: what only makes sense together. */
static int check_spec(spec *s, ms_err *err) {
	int rc;
	bool userns = s->ns_new & CLONE_NEWUSER;
	if (userns && (!s->nuidmap || !s->ngidmap))
		return ms_fail(err, -EINVAL,
		               "linux.%s: a new user namespace needs uid and gid mappings",
		               !s->nuidmap ? "uidMappings" : "gidMappings");
	if (!(s->ns_new & CLONE_NEWUSER) && (s->nuidmap || s->ngidmap))
		return ms_fail(err, -EINVAL,
		               "linux.%s: mappings given without a new user namespace",
		               s->nuidmap ? "uidMappings" : "gidMappings");
	if (userns && !id_mapped(s->uidmap, s->nuidmap, s->process.uid))
		return ms_fail(err, -EINVAL, "linux.uidMappings: process.user.uid %u is not mapped",
		               s->process.uid);
	if (userns && !id_mapped(s->gidmap, s->ngidmap, s->process.gid))
		return ms_fail(err, -EINVAL, "linux.gidMappings: process.user.gid %u is not mapped",
		               s->process.gid);
	if (s->hostname && !(s->ns_new & CLONE_NEWUTS))
		return ms_fail(err, -EINVAL, "hostname: setting it needs a new uts namespace");
	if ((rc = check_sysctls(s, err)))
		return rc;
	if (s->nmounts && !(s->ns_new & CLONE_NEWNS))
		return ms_fail(err, -EINVAL, "mounts: need a new mount namespace");
	return check_idmounts(s, err);
}

int spec_load(const char *bundle, spec **out, ms_err *err) {
	*out = NULL;
	char real[PATH_MAX], file[PATH_MAX + 16];
	if (!realpath(bundle, real))
		return ms_fail(err, -errno, "bundle %s: %s", bundle, strerror(errno));
	snprintf(file, sizeof file, "%s/config.json", real);
	struct stat fst;
	if (stat(file, &fst) < 0)
		return ms_fail(err, -errno, "bundle %s: config.json: %s", real, strerror(errno));
	json_t *root = jl_load_file(file, JSON_REJECT_DUPLICATES, err);
	if (!root)
		return err->code;
	return spec_from_json(root, real, out, err);
}

/* ─── hooks ─────────────────────────────────────────────────────────── */

static const char *const hook_names[SPEC_HOOK_KINDS] = {
    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};

const char *spec_hook_name(spec_hook_kind k) {
	return k < SPEC_HOOK_KINDS ? hook_names[k] : "?";
}

static int parse_hook(json_t *h, const char *path, spec_hook *out, ms_err *err) {
	const char *hp = NULL;
	int64_t timeout = 0;
	if (want(h, JSON_OBJECT, path, "an object", err) || get_str(h, "path", path, &hp, err) ||
	    get_strv(h, "args", path, &out->args, NULL, err) ||
	    get_strv(h, "env", path, &out->env, NULL, err) ||
	    get_int(h, "timeout", path, INT_MIN, INT_MAX, NULL, &timeout, err))
		return err->code;
	if (!hp || hp[0] != '/')
		return ms_fail(err, -EINVAL, "%s.path: must be an absolute path, not \"%s\"", path,
		               hp ? hp : "");
	if (json_object_get(h, "timeout") && timeout <= 0)
		return ms_fail(err, -EINVAL, "%s.timeout: must be more than 0 seconds, not %lld",
		               path, (long long)timeout);
	out->path = xstrdup(hp);
	out->timeout = (int)timeout;
	return 0;
}

static int parse_hooks(spec *s, json_t *hooks, ms_err *err) {
	if (!hooks)
		return 0;
	if (want(hooks, JSON_OBJECT, "hooks", "an object", err))
		return err->code;
	for (int k = 0; k < SPEC_HOOK_KINDS; k++) {
		char path[64];
		snprintf(path, sizeof path, "hooks.%s", hook_names[k]);
		json_t *arr = json_object_get(hooks, hook_names[k]);
		if (!arr || json_is_null(arr))
			continue;
		if (want(arr, JSON_ARRAY, path, "an array", err))
			return err->code;
		size_t n = json_array_size(arr);
		if (n > SPEC_MAX_HOOKS)
			return ms_fail(err, -E2BIG, "%s: %zu hooks, at most %d", path, n,
			               SPEC_MAX_HOOKS);
		s->hooks[k] = xcalloc(n, sizeof *s->hooks[k]);
		for (size_t i = 0; i < n; i++, s->nhooks[k]++) {
			char hp[80];
			snprintf(hp, sizeof hp, "%s[%zu]", path, i);
			if (parse_hook(json_array_get(arr, i), hp, &s->hooks[k][i], err)) {
				s->nhooks[k]++; /* freed with the spec */
				return err->code;
			}
		}
	}
	static const char *const known[] = {"prestart",
	                                    "createRuntime",
	                                    "createContainer",
	                                    "startContainer",
	                                    "poststart",
	                                    "poststop",
	                                    NULL};
	check_unknown(s, hooks, "hooks", known);
	return 0;
}

int spec_from_json(json_t *root, const char *bundle, spec **out, ms_err *err) {
	spec *s = xcalloc(1, sizeof *s);
	s->json = root;
	s->bundle = xstrdup(bundle);
	cg_limits_init(&s->limits);
	s->memory_reservation = CG_UNSET;
	*out = s;
	if (want(root, JSON_OBJECT, "config.json", "an object", err))
		goto fail;
	const char *ver = NULL;
	if (get_str(root, "ociVersion", "", &ver, err))
		goto fail;
	if (!ver || strncmp(ver, "1.", 2))
		warn(s, "ociVersion: \"%s\" is not a 1.x spec; reading it as one", ver ? ver : "");
	if (spec_parse_process(json_object_get(root, "process"), "process", &s->process, err))
		goto fail;
	json_t *r = json_object_get(root, "root");
	const char *rp = NULL;
	if (!r || want(r, JSON_OBJECT, "root", "an object", err) ||
	    get_str(r, "path", "root", &rp, err) ||
	    get_bool(r, "readonly", "root", &s->root_readonly, err)) {
		if (!r)
			ms_fail(err, -EINVAL, "root: missing (the container's root filesystem)");
		goto fail;
	}
	if (!rp || !*rp) {
		ms_fail(err, -EINVAL, "root.path: missing");
		goto fail;
	}
	s->rootfs = bundle_path(s, rp);
	struct stat st;
	if (stat(s->rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
		ms_fail(err, -ENOENT, "root.path: %s: %s", s->rootfs,
		        errno ? strerror(errno) : "not a directory");
		goto fail;
	}
	const char *hn = NULL, *dn = NULL;
	if (get_str(root, "hostname", "", &hn, err) || get_str(root, "domainname", "", &dn, err))
		goto fail;
	s->hostname = hn ? xstrdup(hn) : NULL;
	s->domainname = dn ? xstrdup(dn) : NULL;
	json_t *mounts = json_object_get(root, "mounts");
	if (mounts) {
		if (want(mounts, JSON_ARRAY, "mounts", "an array", err))
			goto fail;
		s->nmounts = json_array_size(mounts);
		s->mounts = xcalloc(s->nmounts, sizeof *s->mounts);
		for (size_t i = 0; i < s->nmounts; i++) {
			char mp[32];
			snprintf(mp, sizeof mp, "mounts[%zu]", i);
			if (parse_mount(s, json_array_get(mounts, i), mp, &s->mounts[i], err))
				goto fail;
		}
	}
	json_t *lx = json_object_get(root, "linux");
	if (!lx) {
		ms_fail(err, -EINVAL, "linux: missing (moonshim runs Linux containers)");
		goto fail;
	}
	if (parse_linux(s, lx, err))
		goto fail;
	json_t *ann = json_object_get(root, "annotations");
	if (ann) {
		if (want(ann, JSON_OBJECT, "annotations", "an object", err))
			goto fail;
		s->annotations = ann;
	}
	if (parse_hooks(s, json_object_get(root, "hooks"), err))
		goto fail;
	static const char *const refused[] = {"solaris", "windows", "vm", "zos"};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
		if (json_object_get(root, refused[i])) {
			ms_fail(err, -ENOTSUP, "%s: not a Linux container", refused[i]);
			goto fail;
		}
	static const char *const known[] = {"ociVersion", "process", "root",  "hostname",
	                                    "domainname", "mounts",  "linux", "annotations",
	                                    "hooks",      NULL};
	check_unknown(s, root, "config", known);
	if (check_spec(s, err))
		goto fail;
	return 0;
fail:
	spec_free(s);
	*out = NULL;
	return err->code ? err->code : -EINVAL;
}

void spec_free(spec *s) {
	if (!s)
		return;
	spec_process_free(&s->process);
	free(s->bundle);
	free(s->rootfs);
	free(s->hostname);
	free(s->domainname);
	for (size_t i = 0; i < s->nmounts; i++) {
		free(s->mounts[i].dest);
		free(s->mounts[i].type);
		free(s->mounts[i].source);
		free(s->mounts[i].data);
		free(s->mounts[i].uidmap);
		free(s->mounts[i].gidmap);
	}
	free(s->mounts);
	for (size_t i = 0; i < s->njoins; i++)
		free(s->joins[i].path);
	free(s->joins);
	free(s->uidmap);
	free(s->gidmap);
	free(s->cgroups_path);
	free_strv(s->masked);
	free_strv(s->readonly);
	for (size_t i = 0; i < s->ndevices; i++)
		free(s->devices[i].path);
	free(s->devices);
	for (size_t i = 0; i < s->nsysctls; i++) {
		free(s->sysctls[i].key);
		free(s->sysctls[i].value);
	}
	free(s->sysctls);
	for (int k = 0; k < SPEC_HOOK_KINDS; k++) {
		for (size_t i = 0; i < s->nhooks[k]; i++) {
			free(s->hooks[k][i].path);
			free_strv(s->hooks[k][i].args);
			free_strv(s->hooks[k][i].env);
		}
		free(s->hooks[k]);
	}
	for (int i = 0; i < s->nwarnings; i++)
		free(s->warnings[i]);
	free(s->throttles);
	free(s->hugepages);
	json_decref(s->json);
	free(s);
}

/* ─── for the containerd shim ───────────────────────────────────────── */

int spec_mount_options(const char *const *opts, size_t n, unsigned long *flags, char *data,
                       size_t datalen, ms_err *err) {
	*flags = 0;
	size_t dlen = 0;
	data[0] = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = opts[i];
		bool done = false;
		for (size_t k = 0; k < sizeof mount_opts / sizeof *mount_opts && !done; k++)
			if (!strcmp(mount_opts[k].name, name)) {
				*flags = mount_opts[k].clear ? *flags & ~mount_opts[k].flag
				                             : *flags | mount_opts[k].flag;
				done = true;
			}
		unsigned long prop;
		if (!done && !parse_propagation(name, &prop)) {
			*flags |= prop;
			done = true;
		}
		if (!done && (!strcmp(name, "bind") || !strcmp(name, "rbind"))) {
			*flags |= MS_BIND | (name[0] == 'r' ? MS_REC : 0);
			done = true;
		}
		if (!done) {
			size_t len = strlen(name);
			if (dlen + len + 2 > datalen)
				return ms_fail(err, -E2BIG, "mount options: too long");
			if (dlen)
				data[dlen++] = ',';
			memcpy(data + dlen, name, len + 1);
			dlen += len;
		}
	}
	return 0;
}

spec *spec_parse_resources(json_t *res, ms_err *err) {
	spec *s = xcalloc(1, sizeof *s);
	cg_limits_init(&s->limits);
	s->memory_reservation = CG_UNSET;
	if (parse_resources(s, res, err)) {
		spec_free(s);
		return NULL;
	}
	return s;
}

void spec_warn(spec *s, const char *fmt, ...) {
	if (s->nwarnings == SPEC_MAX_WARNINGS)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	s->warnings[s->nwarnings++] = xstrdup(buf);
}

int spec_exec_process(const spec *s, char *const *args, int nargs, const char *cwd,
                      const char *user, bool tty, spec_process *out, ms_err *err) {
	json_t *proc = json_deep_copy(json_object_get(s->json, "process"));
	if (!proc)
		return ms_fail(err, -EINVAL, "the container has no process to start from");
	json_t *a = json_array();
	for (int i = 0; i < nargs; i++)
		json_array_append_new(a, json_string(args[i]));
	json_object_set_new(proc, "args", a);
	json_object_set_new(proc, "terminal", json_boolean(tty));
	if (cwd)
		json_object_set_new(proc, "cwd", json_string(cwd));
	if (user) {
		unsigned uid = 0, gid = 0;
		int k = sscanf(user, "%u:%u", &uid, &gid);
		if (k < 1) {
			json_decref(proc);
			return ms_fail(err, -EINVAL, "user \"%s\": UID[:GID]", user);
		}
		json_object_set_new(
		    proc, "user",
		    json_pack("{s:i, s:i}", "uid", (int)uid, "gid", k == 2 ? (int)gid : 0));
	}
	int rc = spec_parse_process(proc, "process", out, err);
	json_decref(proc);
	return rc;
}
