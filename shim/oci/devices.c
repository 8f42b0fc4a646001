/*
 * devices.c — linux.resources.devices: parsing the OCI rule list and
 * enforcing it with the kernel's device controller.
 *
 * Semantics (runc's): rules are read in order, the last rule that matches a
 * device and an access (m, r, w) decides, and an access nothing matches is
 * denied. runc's built-in rules come after the user's, so /dev/null and
 * friends stay usable whatever the spec says.
 *
 * Two enforcers:
 *   v1 (hybrid hosts, where the v1 devices hierarchy is mounted): the
 *   cgroup <devices>/<rel> gets "a" written to devices.deny (deny all, no
 *   exceptions), then one write per rule. v1 keeps a default and a list of
 *   exceptions of the opposite polarity, and a write of the default's
 *   polarity only shrinks an exception with exactly the same type:major:minor.
 *   So a rule that would punch a hole into a wider exception (allow c *:*,
 *   then deny c 1:3) cannot be expressed: we model the kernel's list while
 *   writing and refuse such lists with -EINVAL rather than enforce something
 *   else than the spec says.
 *   v2 (pure v2 hosts, or hybrid ones without a v1 devices mount): a
 *   BPF_PROG_TYPE_CGROUP_DEVICE program, written here instruction by
 *   instruction, attached to <unified>/<rel> with BPF_F_ALLOW_MULTI (so the
 *   programs of parent cgroups keep applying too).
 */
#define _GNU_SOURCE
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEV_ANY     (-1) /* wildcard major or minor */
#define DEV_ACC_ALL (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)
/* Device numbers are compared as 32-bit signed BPF immediates; real ones
 * are far smaller (12-bit majors, 20-bit minors). */
#define DEV_NUM_MAX INT32_MAX
#define DEV_PATH    (PATH_MAX + 64)

typedef struct dev_rule {
	int64_t major, minor;
	unsigned access; /* BPF_DEVCG_ACC_* bits */
	char type;       /* 'a', 'c' or 'b' */
	bool allow;
} dev_rule;

struct dev_rules {
	size_t n, nuser; /* r[nuser..n) are the built-in rules */
	dev_rule r[];
};

/* runc's default allowed devices, appended after the user's rules. */
static const dev_rule dev_builtin[] = {
    {DEV_ANY, DEV_ANY, BPF_DEVCG_ACC_MKNOD, 'c', true}, /* mknod of any node: */
    {DEV_ANY, DEV_ANY, BPF_DEVCG_ACC_MKNOD, 'b', true}, /* opening it is what counts */
    {1, 3, DEV_ACC_ALL, 'c', true},                     /* /dev/null */
    {1, 5, DEV_ACC_ALL, 'c', true},                     /* /dev/zero */
    {1, 7, DEV_ACC_ALL, 'c', true},                     /* /dev/full */
    {1, 8, DEV_ACC_ALL, 'c', true},                     /* /dev/random */
    {1, 9, DEV_ACC_ALL, 'c', true},                     /* /dev/urandom */
    {5, 0, DEV_ACC_ALL, 'c', true},                     /* /dev/tty */
    {5, 2, DEV_ACC_ALL, 'c', true},                     /* /dev/ptmx */
    {136, DEV_ANY, DEV_ACC_ALL, 'c', true},             /* /dev/pts/N */
};
#define DEV_NBUILTIN (sizeof dev_builtin / sizeof dev_builtin[0])

static bool is_everything(const dev_rule *r) {
	return r->type == 'a' && r->major == DEV_ANY && r->minor == DEV_ANY &&
	       r->access == DEV_ACC_ALL;
}

/* ─── Parsing ─────────────────────────────────────────────────────────── */

static int parse_num(json_t *rule, const char *key, const char *jpath, size_t i, int64_t *out,
                     ms_err *err) {
	json_t *v = json_object_get(rule, key);
	*out = DEV_ANY;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < DEV_ANY ||
	    json_integer_value(v) > DEV_NUM_MAX)
		return ms_fail(err, -EINVAL, "%s[%zu].%s: must be an integer from -1 (any) to %d",
		               jpath, i, key, DEV_NUM_MAX);
	*out = json_integer_value(v);
	return 0;
}

static int parse_rule(json_t *rule, const char *jpath, size_t i, dev_rule *out, ms_err *err) {
	if (!json_is_object(rule))
		return ms_fail(err, -EINVAL, "%s[%zu]: must be an object", jpath, i);
	json_t *allow = json_object_get(rule, "allow");
	if (!json_is_boolean(allow))
		return ms_fail(err, -EINVAL, "%s[%zu].allow: %s", jpath, i,
		               allow ? "must be true or false" : "missing");
	out->allow = json_is_true(allow);

	json_t *type = json_object_get(rule, "type");
	const char *t = type ? json_string_value(type) : "a";
	if (!t || strlen(t) != 1 || !strchr("acb", t[0]))
		return ms_fail(err, -EINVAL, "%s[%zu].type: must be \"a\", \"c\" or \"b\"", jpath,
		               i);
	out->type = t[0];

	int rc = parse_num(rule, "major", jpath, i, &out->major, err);
	if (!rc)
		rc = parse_num(rule, "minor", jpath, i, &out->minor, err);
	if (rc)
		return rc;

	json_t *access = json_object_get(rule, "access");
	const char *a = access ? json_string_value(access) : "rwm";
	out->access = 0;
	for (const char *p = a; p && *p; p++) {
		unsigned bit = *p == 'r'   ? BPF_DEVCG_ACC_READ
		               : *p == 'w' ? BPF_DEVCG_ACC_WRITE
		               : *p == 'm' ? BPF_DEVCG_ACC_MKNOD
		                           : 0;
		if (!bit)
			break;
		out->access |= bit;
		if (!p[1])
			return 0;
	}
	return ms_fail(err, -EINVAL, "%s[%zu].access: %s%s%s is not a non-empty subset of \"rwm\"",
	               jpath, i, a ? "\"" : "", a ? a : "(not a string)", a ? "\"" : "");
}

int dev_rules_parse(json_t *arr, const char *jpath, dev_rules **out, ms_err *err) {
	*out = NULL;
	if (arr && !json_is_null(arr) && !json_is_array(arr))
		return ms_fail(err, -EINVAL, "%s: must be an array", jpath);
	size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
	dev_rules *r = malloc(sizeof *r + (n + DEV_NBUILTIN) * sizeof r->r[0]);
	if (!r)
		return ms_fail(err, -ENOMEM, "%s: out of memory", jpath);
	for (size_t i = 0; i < n; i++) {
		int rc = parse_rule(json_array_get(arr, i), jpath, i, &r->r[i], err);
		if (rc) {
			free(r);
			return rc;
		}
	}
	memcpy(&r->r[n], dev_builtin, sizeof dev_builtin);
	r->n = n + DEV_NBUILTIN;
	r->nuser = n;
	*out = r;
	return 0;
}

void dev_rules_free(dev_rules *r) {
	free(r);
}

/* ─── Finding the v1 hierarchy ────────────────────────────────────────── */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
	char *d = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

static bool has_option(const char *opts, const char *word) {
	size_t n = strlen(word);
	for (const char *p = opts; (p = strstr(p, word)); p += n)
		if ((p == opts || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

/* The v1 devices mount point into mnt, or false when there is none (the
 * device controller is then the cgroup2 BPF hook). */
static bool v1_devices_mount(char *mnt, size_t n) {
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	while (!found && getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
		char *sep = strstr(line, " - ");
		char point[PATH_MAX], fstype[64], source[256], super[1024];
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
		    sscanf(sep + 3, "%63s %255s %1023s", fstype, source, super) != 3)
			continue;
		if (strcmp(fstype, "cgroup") || !has_option(super, "devices"))
			continue;
		unescape(point);
		found = (size_t)snprintf(mnt, n, "%s", point) < n;
	}
	free(line);
	fclose(f);
	return found;
}

/* The enforcer for this host: v1 when a v1 devices hierarchy is mounted and
 * the host is not pure v2 (with both, both would apply). */
static bool use_v1(const cg_host *h, char *mnt, size_t n) {
	return h->layout != CG_LAYOUT_V2 && v1_devices_mount(mnt, n);
}

static int check_rel(const char *rel, ms_err *err) {
	if (!rel || !rel[0] || rel[0] == '/' || !strcmp(rel, "..") || !strncmp(rel, "../", 3) ||
	    strstr(rel, "/../") || (strlen(rel) >= 3 && !strcmp(rel + strlen(rel) - 3, "/..")))
		return ms_fail(err, -EINVAL, "cgroup path \"%s\": must be relative, without \"..\"",
		               rel ? rel : "(null)");
	return 0;
}

/* Write val into dir/file in one write(2), as cgroup files want. */
static int write_file(const char *dir, const char *file, const char *val, ms_err *err) {
	char path[DEV_PATH + 32];
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
		return ms_fail(err, -ENAMETOOLONG, "%s/%s: path too long", dir, file);
	char what[64];
	snprintf(what, sizeof what, "device rule \"%s\"", val);
	return fs_write_file(path, val, what, err);
}

/* ─── v1: devices.allow / devices.deny ────────────────────────────────── */

/* The kernel's state of one v1 cgroup as we write it. */
typedef struct v1_state {
	bool default_allow;
	dev_rule *ex; /* exceptions, of the polarity opposite to the default */
	size_t n;
} v1_state;

static bool overlaps(const dev_rule *a, const dev_rule *b) {
	return a->type == b->type &&
	       (a->major == DEV_ANY || b->major == DEV_ANY || a->major == b->major) &&
	       (a->minor == DEV_ANY || b->minor == DEV_ANY || a->minor == b->minor) &&
	       (a->access & b->access);
}

static bool same_key(const dev_rule *a, const dev_rule *b) {
	return a->type == b->type && a->major == b->major && a->minor == b->minor;
}

static void format_entry(const dev_rule *r, char *buf, size_t n) {
	char maj[24] = "*", min[24] = "*";
	if (r->major != DEV_ANY)
		snprintf(maj, sizeof maj, "%lld", (long long)r->major);
	if (r->minor != DEV_ANY)
		snprintf(min, sizeof min, "%lld", (long long)r->minor);
	snprintf(
	    buf, n, "%c %s:%s %s%s%s", r->type, maj, min, r->access & BPF_DEVCG_ACC_READ ? "r" : "",
	    r->access & BPF_DEVCG_ACC_WRITE ? "w" : "", r->access & BPF_DEVCG_ACC_MKNOD ? "m" : "");
}

/* One rule of one concrete type ('c' or 'b') against the modelled state;
 * what names the rule in messages. */
static int v1_apply(v1_state *s, const dev_rule *r, const char *dir, const char *what,
                    ms_err *err) {
	char entry[64];
	const char *file = r->allow ? "devices.allow" : "devices.deny";
	format_entry(r, entry, sizeof entry);
	if (r->allow != s->default_allow) {
		/* a new exception; the kernel merges the access of an equal key */
		size_t k;
		for (k = 0; k < s->n && !same_key(&s->ex[k], r); k++)
			;
		if (k == s->n)
			s->ex[s->n++] = *r;
		else
			s->ex[k].access |= r->access;
		return write_file(dir, file, entry, err);
	}
	/* Same polarity as the default: the kernel only takes access away from
	 * an exception with exactly this key. */
	bool exact = false;
	for (size_t k = 0; k < s->n; k++) {
		if (!overlaps(&s->ex[k], r))
			continue;
		if (!same_key(&s->ex[k], r)) {
			char other[64];
			format_entry(&s->ex[k], other, sizeof other);
			return ms_fail(err, -EINVAL,
			               "%s (%s %s) narrows the earlier %s %s: cgroup v1 cannot "
			               "express that",
			               what, r->allow ? "allow" : "deny", entry,
			               r->allow ? "deny" : "allow", other);
		}
		exact = true;
		s->ex[k].access &= ~r->access;
	}
	if (!exact)
		return 0; /* nothing to take away */
	size_t j = 0;
	for (size_t k = 0; k < s->n; k++)
		if (s->ex[k].access)
			s->ex[j++] = s->ex[k];
	s->n = j;
	return write_file(dir, file, entry, err);
}

static int mkdir_p(const char *root, const char *rel, char *dir, size_t n, ms_err *err) {
	if ((size_t)snprintf(dir, n, "%s/%s", root, rel) >= n)
		return ms_fail(err, -ENAMETOOLONG, "%s/%s: path too long", root, rel);
	return fs_mkdir_p(dir, 0755, err);
}

static int v1_setup(const dev_rules *r, const char *mnt, const char *rel, ms_err *err) {
	char dir[DEV_PATH];
	int rc = mkdir_p(mnt, rel, dir, sizeof dir, err);
	if (rc)
		return rc;
	/* a 'a' rule that is not "everything" becomes a 'c' and a 'b' entry */
	v1_state s = {.default_allow = false, .ex = malloc(2 * r->n * sizeof *s.ex)};
	if (!s.ex)
		return ms_fail(err, -ENOMEM, "device rules: out of memory");
	rc = write_file(dir, "devices.deny", "a", err);
	for (size_t i = 0; i < r->n && !rc; i++) {
		const dev_rule *x = &r->r[i];
		if (is_everything(x)) {
			s.default_allow = x->allow;
			s.n = 0;
			rc = write_file(dir, x->allow ? "devices.allow" : "devices.deny", "a", err);
			continue;
		}
		char what[32] = "a built-in rule";
		if (i < r->nuser)
			snprintf(what, sizeof what, "[%zu]", i);
		dev_rule one = *x;
		for (const char *t = x->type == 'a' ? "cb" : (x->type == 'c' ? "c" : "b");
		     *t && !rc; t++) {
			one.type = *t;
			rc = v1_apply(&s, &one, dir, what, err);
		}
	}
	free(s.ex);
	return rc;
}

/* ─── v2: a BPF_PROG_TYPE_CGROUP_DEVICE program ───────────────────────────
 * Registers: r1 the bpf_cgroup_dev_ctx, r2 the access bits still undecided,
 * r3 the device type, r4 major, r5 minor, r6 scratch, r0 the verdict
 * (1 allow, 0 deny). Rules are checked from the last to the first: a
 * matching deny rule that covers an undecided bit denies; a matching allow
 * rule decides its bits, and allows once none is left. Bits left when the
 * rules run out are denied. */

#define INSNS_PER_RULE 11 /* 3 compares, 3 access test, 5 verdict */
#define INSNS_FIXED    8  /* 6 loads and splits, 2 final deny */

typedef struct bpf_code {
	struct bpf_insn *i;
	size_t n;
} bpf_code;

static void emit(bpf_code *c, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
	c->i[c->n++] =
	    (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}

#define ALU64_K(op, dst, imm) emit(c, BPF_ALU64 | (op) | BPF_K, dst, 0, 0, imm)
#define MOV64_X(dst, src)     emit(c, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define LDX_W(dst, off)       emit(c, BPF_LDX | BPF_MEM | BPF_W, dst, 1, off, 0)
#define JMP_K(op, dst, imm)   emit(c, BPF_JMP | (op) | BPF_K, dst, 0, 0, imm)
#define RETURN(v)                                                                                  \
	do {                                                                                       \
		ALU64_K(BPF_MOV, 0, v);                                                            \
		emit(c, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);                                           \
	} while (0)

/* One rule's block; every "no" jumps to the next block. */
static void emit_rule(bpf_code *c, const dev_rule *r) {
	size_t jumps[INSNS_PER_RULE], nj = 0;
	if (r->type != 'a') {
		jumps[nj++] = c->n;
		JMP_K(BPF_JNE, 3, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
	}
	if (r->major != DEV_ANY) {
		jumps[nj++] = c->n;
		JMP_K(BPF_JNE, 4, (int32_t)r->major);
	}
	if (r->minor != DEV_ANY) {
		jumps[nj++] = c->n;
		JMP_K(BPF_JNE, 5, (int32_t)r->minor);
	}
	/* with all of rwm, the rule covers any (non-empty) request */
	if (r->access != DEV_ACC_ALL) {
		MOV64_X(6, 2);
		ALU64_K(BPF_AND, 6, (int32_t)r->access);
		jumps[nj++] = c->n;
		JMP_K(BPF_JEQ, 6, 0);
	}
	if (!r->allow) {
		RETURN(0);
	} else if (r->access == DEV_ACC_ALL) {
		RETURN(1);
	} else {
		ALU64_K(BPF_AND, 2, (int32_t)~r->access);
		jumps[nj++] = c->n;
		JMP_K(BPF_JNE, 2, 0);
		RETURN(1);
	}
	for (size_t k = 0; k < nj; k++)
		c->i[jumps[k]].off = (int16_t)(c->n - jumps[k] - 1);
}

static int bpf_call(int cmd, union bpf_attr *a) {
	long rc = syscall(SYS_bpf, cmd, a, sizeof *a);
	return rc < 0 ? -errno : (int)rc;
}

/* The verifier's last non-empty line, for the error message. */
static const char *last_line(char *log) {
	size_t n = strlen(log);
	while (n && log[n - 1] == '\n')
		log[--n] = 0;
	char *nl = strrchr(log, '\n');
	return nl ? nl + 1 : log;
}

static int v2_load(const bpf_code *c, ms_err *err) {
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)c->i;
	a.insn_cnt = (uint32_t)c->n;
	a.license = (uint64_t)(uintptr_t) "GPL";
	int fd = bpf_call(BPF_PROG_LOAD, &a);
	if (fd >= 0)
		return fd;
	/* Load again with the verifier's log: only the failure pays for it. */
	enum { LOG_SIZE = 64 * 1024 };
	char *log = calloc(1, LOG_SIZE);
	if (log) {
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = LOG_SIZE;
		a.log_level = 1;
		int again = bpf_call(BPF_PROG_LOAD, &a);
		if (again >= 0) { /* a passing reload: keep it */
			free(log);
			return again;
		}
	}
	ms_fail(err, fd, "bpf(BPF_PROG_LOAD) of the device program (%zu instructions): %s%s%s",
	        c->n, strerror(-fd), log && log[0] ? "; verifier: " : "",
	        log && log[0] ? last_line(log) : "");
	free(log);
	return fd;
}

static int v2_setup(const dev_rules *r, const char *unified, const char *rel, ms_err *err) {
	char dir[DEV_PATH];
	if ((size_t)snprintf(dir, sizeof dir, "%s/%s", unified, rel) >= sizeof dir)
		return ms_fail(err, -ENAMETOOLONG, "%s/%s: path too long", unified, rel);
	bpf_code code = {.i = malloc((r->n * INSNS_PER_RULE + INSNS_FIXED) * sizeof *code.i)};
	if (!code.i)
		return ms_fail(err, -ENOMEM, "device program: out of memory");
	bpf_code *c = &code;
	LDX_W(2, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	MOV64_X(3, 2);
	ALU64_K(BPF_AND, 3, 0xffff); /* low 16 bits: BPF_DEVCG_DEV_* */
	ALU64_K(BPF_RSH, 2, 16);     /* high 16 bits: BPF_DEVCG_ACC_* */
	LDX_W(4, offsetof(struct bpf_cgroup_dev_ctx, major));
	LDX_W(5, offsetof(struct bpf_cgroup_dev_ctx, minor));
	bool decided = false;
	for (size_t i = r->n; i-- > 0 && !decided;) {
		emit_rule(c, &r->r[i]);
		/* the verifier refuses unreachable code after an unconditional rule */
		decided = is_everything(&r->r[i]);
	}
	if (!decided)
		RETURN(0);

	int rc, prog = v2_load(c, err);
	free(code.i);
	if (prog < 0)
		return prog;
	int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		rc = ms_fail(err, -errno, "open %s: %s", dir, strerror(errno));
		close(prog);
		return rc;
	}
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)cg;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	rc = bpf_call(BPF_PROG_ATTACH, &a);
	if (rc < 0)
		ms_fail(err, rc, "bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE) to %s: %s", dir,
		        strerror(-rc));
	/* once attached, the cgroup holds the program; our fds can go */
	close(cg);
	close(prog);
	return rc < 0 ? rc : 0;
}

/* ─── Public ──────────────────────────────────────────────────────────── */

int dev_setup(const dev_rules *r, const cg_host *h, const char *rel, ms_err *err) {
	char mnt[PATH_MAX];
	int rc = check_rel(rel, err);
	if (rc)
		return rc;
	if (use_v1(h, mnt, sizeof mnt)) {
		rc = v1_setup(r, mnt, rel, err);
		return rc ? ms_wrap(err, "linux.resources.devices (v1 %s/%s)", mnt, rel) : 0;
	}
	if (!h->unified[0])
		return ms_fail(err, -ENOTSUP,
		               "linux.resources.devices: no device controller "
		               "(neither a v1 devices hierarchy nor cgroup2)");
	rc = v2_setup(r, h->unified, rel, err);
	return rc ? ms_wrap(err, "linux.resources.devices") : 0;
}

int dev_attach(const cg_host *h, const char *rel, pid_t pid, ms_err *err) {
	char mnt[PATH_MAX], dir[DEV_PATH], val[24];
	int rc = check_rel(rel, err);
	if (rc || !use_v1(h, mnt, sizeof mnt))
		return rc;
	if ((size_t)snprintf(dir, sizeof dir, "%s/%s", mnt, rel) >= sizeof dir)
		return ms_fail(err, -ENAMETOOLONG, "%s/%s: path too long", mnt, rel);
	snprintf(val, sizeof val, "%d", (int)pid);
	return write_file(dir, "cgroup.procs", val, err);
}

void dev_cleanup(const cg_host *h, const char *rel) {
	char mnt[PATH_MAX], dir[DEV_PATH];
	if (check_rel(rel, NULL) || !use_v1(h, mnt, sizeof mnt))
		return;
	if ((size_t)snprintf(dir, sizeof dir, "%s/%s", mnt, rel) >= sizeof dir)
		return;
	/* rel itself, then each parent while rmdir succeeds (it fails on a
	 * parent that other containers still use) */
	size_t root = strlen(mnt);
	while (strlen(dir) > root && rmdir(dir) == 0) {
		char *slash = strrchr(dir, '/');
		if (!slash || (size_t)(slash - dir) <= root)
			break;
		*slash = 0;
	}
}
