/*
 * rtopts.c — the runtime options' TOML subset (rtopts.h). Must stay true:
 * the input is the operator's but arrives through containerd as bytes:
 * every read is bounded by len, lines by RO_LINE_MAX, values by the
 * fields they go to; nothing is allocated.
 */
#define _GNU_SOURCE
#include "rtopts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define RO_LINE_MAX 4096
#define RO_KEY_MAX  64

typedef struct {
	char key[RO_KEY_MAX];
	enum { V_STRING, V_BOOL, V_OTHER } kind;
	char str[PATH_MAX];
	bool b;
} ro_entry;

void ro_init(ro_options *o) {
	*o = (ro_options){.go_watch = true};
}

static void warn(ro_options *o, const char *fmt, const char *what, int line) {
	size_t n = strlen(o->warnings);
	if (n < sizeof o->warnings - 1)
		snprintf(o->warnings + n, sizeof o->warnings - n, fmt, what, line);
}

static bool key_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static const char *skip_ws(const char *p, const char *end) {
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* A basic ("...", with \" \\ \n \t escapes) or literal ('...') string at p
 * into out; returns the end past the quote, or NULL. */
static const char *parse_string(const char *p, const char *end, char *out, size_t cap) {
	char q = *p++;
	size_t n = 0;
	while (p < end && *p != q) {
		char c = *p++;
		if (q == '"' && c == '\\') {
			if (p >= end)
				return NULL;
			c = *p++;
			c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
			if (c != '\n' && c != '\t' && c != '"' && c != '\\')
				return NULL;
		}
		if (n + 1 >= cap)
			return NULL;
		out[n++] = c;
	}
	out[n] = 0;
	return p < end ? p + 1 : NULL;
}

/* One `key = value` line (no newline) into e; -1 if it is not one. */
static int parse_line(const char *p, const char *end, ro_entry *e) {
	size_t k = 0;
	while (p < end && key_char(*p) && k + 1 < sizeof e->key)
		e->key[k++] = *p++;
	e->key[k] = 0;
	p = skip_ws(p, end);
	if (!k || p >= end || *p != '=')
		return -1;
	p = skip_ws(p + 1, end);
	if (p >= end)
		return -1;
	if (*p == '"' || *p == '\'') {
		e->kind = V_STRING;
		if (!(p = parse_string(p, end, e->str, sizeof e->str)))
			return -1;
	} else if (end - p >= 4 && !strncmp(p, "true", 4)) {
		e->kind = V_BOOL, e->b = true, p += 4;
	} else if (end - p >= 5 && !strncmp(p, "false", 5)) {
		e->kind = V_BOOL, e->b = false, p += 5;
	} else { /* a number, array or inline table: skipped with a warning */
		e->kind = V_OTHER;
		return 0;
	}
	p = skip_ws(p, end);
	return p == end || *p == '#' ? 0 : -1;
}

static int apply(ro_options *o, const ro_entry *e, int line, ms_err *err) {
	static const char *const containerd_keys[] = {"TypeUrl",  "ConfigPath",  "ConfigBody",
	                                              "type_url", "config_path", NULL};
	for (const char *const *c = containerd_keys; *c; c++)
		if (!strcmp(e->key, *c))
			return 0;
	char *path =
	    !strcmp(e->key, "default_policy") || !strcmp(e->key, "policy")   ? o->default_policy
	    : !strcmp(e->key, "default_checks") || !strcmp(e->key, "checks") ? o->default_checks
	    : !strcmp(e->key, "publish_root")                                ? o->publish_root
	                                                                     : NULL;
	bool *flag = !strcmp(e->key, "go_watch") ? &o->go_watch
	             : !strcmp(e->key, "debug")  ? &o->debug
	                                         : NULL;
	if (!path && !flag) {
		warn(o, "runtime options: unknown key \"%s\" (line %d) ignored\n", e->key, line);
		return 0;
	}
	if (path && (e->kind != V_STRING || e->str[0] != '/'))
		return ms_fail(err, -EINVAL, "runtime options line %d: %s must be an absolute path",
		               line, e->key);
	if (flag && e->kind != V_BOOL)
		return ms_fail(err, -EINVAL, "runtime options line %d: %s must be true or false",
		               line, e->key);
	if (path)
		snprintf(path, PATH_MAX, "%s", e->str);
	else
		*flag = e->b;
	return 0;
}

int ro_parse(const char *text, size_t len, ro_options *o, ms_err *err) {
	if (len > RO_BODY_MAX)
		return ms_fail(err, -E2BIG, "runtime options: %zu bytes, more than %d", len,
		               RO_BODY_MAX);
	if (!len) /* an empty Options: its body is NULL, and NULL + 0 is undefined */
		return 0;
	const char *p = text, *end = text + len;
	bool in_table = false; /* keys under a [table] are not ours */
	for (int line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le - p > RO_LINE_MAX)
			return ms_fail(err, -E2BIG, "runtime options line %d: longer than %d bytes",
			               line, RO_LINE_MAX);
		const char *s = skip_ws(p, le), *e = le;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		p = nl ? nl + 1 : end;
		if (s == e || *s == '#')
			continue;
		if (*s == '[') {
			char name[RO_KEY_MAX];
			snprintf(name, sizeof name, "%.*s", (int)(e - s), s);
			warn(o, "runtime options: table %s (line %d) ignored\n", name, line);
			in_table = true;
			continue;
		}
		ro_entry ent = {0};
		if (parse_line(s, e, &ent) < 0)
			return ms_fail(err, -EINVAL,
			               "runtime options line %d: not `key = \"string\"|true|false`",
			               line);
		if (in_table)
			continue;
		if (ent.kind == V_OTHER) {
			warn(o,
			     "runtime options: key \"%s\" (line %d): only strings and booleans; "
			     "ignored\n",
			     ent.key, line);
			continue;
		}
		if (apply(o, &ent, line, err))
			return err->code;
	}
	return 0;
}
