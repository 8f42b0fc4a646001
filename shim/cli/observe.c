/*
 * observe.c — the times, filters, event lines and container scans that
 * inspect, events and top share (observe.h). Pure but for ob_now and
 * ob_scan: the parsers take the clock as an argument and are fuzzed
 * (tests/fuzz/evline_fuzz.c).
 */
#define _GNU_SOURCE
#include "observe.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC_PER_MIN  60
#define SEC_PER_HOUR 3600
#define FRAC_DIGITS  9 /* nanoseconds */
#define DURATION_MAX (INT64_MAX / 2)
#define NESTED_MAX   (OB_LINE_MAX) /* a nested value printed whole up to this */

int64_t ob_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * OB_NS + ts.tv_nsec;
}

/* ─── Times ─────────────────────────────────────────────────────────── */

/* exactly n digits at *p, advancing it; -1 if they are not there */
static int digits(const char **p, int n) {
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

/* ".123" → nanoseconds (at most 9 digits kept, more are ignored) */
static int64_t fraction(const char **p) {
	int64_t ns = 0, scale = OB_NS / 10;
	if (**p != '.' || !isdigit((unsigned char)(*p)[1]))
		return 0;
	for ((*p)++; isdigit((unsigned char)**p); (*p)++, scale /= 10)
		ns += scale * (**p - '0');
	return ns;
}

/* the zone: "Z", "±hh:mm" → seconds east of UTC, or 1 when there is none
 * (local time), -2 when malformed */
static int zone(const char **p, long *off) {
	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		*off = 0;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return **p ? -2 : 1;
	int sign = **p == '-' ? -1 : 1;
	(*p)++;
	int h = digits(p, 2);
	if (h < 0 || **p != ':')
		return -2;
	(*p)++;
	int m = digits(p, 2);
	if (m < 0 || h > 23 || m > 59)
		return -2;
	*off = sign * (h * SEC_PER_HOUR + m * SEC_PER_MIN);
	return 0;
}

int ob_parse_rfc3339(const char *s, int64_t *ns) {
	const char *p = s;
	struct tm tm = {0};
	int y = digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return -EINVAL;
	int mo = digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return -EINVAL;
	int d = digits(&p, 2);
	if (d < 1 || d > 31)
		return -EINVAL;
	tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
	int64_t frac = 0;
	long off = 0;
	int z = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		tm.tm_hour = digits(&p, 2);
		if (tm.tm_hour < 0 || tm.tm_hour > 23 || *p++ != ':')
			return -EINVAL;
		tm.tm_min = digits(&p, 2);
		if (tm.tm_min < 0 || tm.tm_min > 59 || *p++ != ':')
			return -EINVAL;
		tm.tm_sec = digits(&p, 2);
		if (tm.tm_sec < 0 || tm.tm_sec > 60)
			return -EINVAL;
		frac = fraction(&p);
		z = zone(&p, &off);
	} else if (*p) {
		return -EINVAL;
	} else {
		z = 0; /* a date alone: midnight UTC */
	}
	if (z == -2 || *p)
		return -EINVAL;
	time_t t;
	if (z == 1) {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	} else {
		t = timegm(&tm) - off;
	}
	if (t <= INT64_MIN / OB_NS || t >= INT64_MAX / OB_NS)
		return -ERANGE; /* nanoseconds since 1970 reach 1677 to 2262 */
	*ns = (int64_t)t * OB_NS + frac;
	return 0;
}

void ob_format_time(int64_t ns, char *buf, size_t n) {
	time_t sec = (time_t)(ns / OB_NS);
	long frac = (long)(ns % OB_NS);
	if (frac < 0)
		sec--, frac += OB_NS;
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ldZ", frac);
}

/* "1764968400" or "1764968400.25" */
static int unix_time(const char *s, int64_t *ns) {
	const char *p = s;
	int64_t sec = 0;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (sec >= INT64_MAX / OB_NS)
			return -ERANGE;
		sec = sec * 10 + (*p - '0');
	}
	int64_t frac = fraction(&p);
	if (*p)
		return -EINVAL;
	if (sec >= INT64_MAX / OB_NS)
		return -ERANGE;
	*ns = sec * OB_NS + frac;
	return 0;
}

static int64_t unit_ns(const char *u, size_t n) {
	static const struct {
		const char *name;
		int64_t ns;
	} units[] = {{"ns", 1},
	             {"us", 1000},
	             {"\xC2\xB5s", 1000},
	             {"ms", 1000000},
	             {"s", OB_NS},
	             {"m", SEC_PER_MIN * OB_NS},
	             {"h", SEC_PER_HOUR * OB_NS}};
	for (size_t i = 0; i < sizeof units / sizeof *units; i++)
		if (strlen(units[i].name) == n && !memcmp(units[i].name, u, n))
			return units[i].ns;
	return 0;
}

/* a decimal "12", "1.5" or ".5" at *p, advancing it; -1 without a digit */
static double decimal(const char **p) {
	double v = 0, scale = 0.1;
	int ndigits = 0;
	for (; isdigit((unsigned char)**p); (*p)++, ndigits++)
		v = v * 10 + (**p - '0');
	if (**p == '.')
		for ((*p)++; isdigit((unsigned char)**p); (*p)++, scale /= 10, ndigits++)
			v += scale * (**p - '0');
	return ndigits ? v : -1;
}

/* Go's time.ParseDuration without a sign: "1h30m", "1.5s", "250ms" */
static int duration(const char *s, int64_t *ns) {
	const char *p = s;
	double total = 0;
	if (!*p)
		return -EINVAL;
	while (*p) {
		double v = decimal(&p);
		if (v < 0)
			return -EINVAL;
		const char *u = p;
		while (*p && !isdigit((unsigned char)*p) && *p != '.')
			p++;
		int64_t scale = unit_ns(u, (size_t)(p - u));
		if (!scale)
			return -EINVAL;
		total += v * (double)scale;
		if (total > (double)DURATION_MAX)
			return -ERANGE;
	}
	*ns = (int64_t)total;
	return 0;
}

int ob_parse_time(const char *s, int64_t now_ns, int64_t *ns, ms_err *err) {
	int64_t d;
	if (unix_time(s, ns) == 0)
		return 0;
	if (duration(s, &d) == 0) {
		*ns = now_ns - d;
		return 0;
	}
	if (ob_parse_rfc3339(s, ns) == 0)
		return 0;
	return ms_fail(err, -EINVAL,
	               "time \"%.64s\": not RFC 3339 (2026-12-05T21:00:00Z), a Unix timestamp "
	               "or a duration (10m, 1h30m)",
	               s);
}

/* ─── Filters ───────────────────────────────────────────────────────── */

static int add_value(const char **vals, int *n, const char *v, const char *what, ms_err *err) {
	if (!*v)
		return ms_fail(err, -EINVAL, "filter %s: the value is empty", what);
	if (*n >= OB_FILTER_MAX)
		return ms_fail(err, -E2BIG, "filter %s: more than %d values", what, OB_FILTER_MAX);
	vals[(*n)++] = v;
	return 0;
}

int ob_filter_add(ob_filter *f, const char *kv, ms_err *err) {
	const char *eq = strchr(kv, '=');
	if (!eq)
		return ms_fail(err, -EINVAL, "filter \"%.64s\": not KEY=VALUE", kv);
	size_t k = (size_t)(eq - kv);
	if (k == 4 && !strncmp(kv, "type", k))
		return add_value(f->types, &f->ntypes, eq + 1, "type", err);
	if ((k == 2 && !strncmp(kv, "id", k)) || (k == 9 && !strncmp(kv, "container", k)))
		return add_value(f->ids, &f->nids, eq + 1, "id", err);
	return ms_fail(err, -EINVAL, "filter \"%.64s\": unknown key (type, id or container)", kv);
}

int ob_filter_add_id(ob_filter *f, const char *id, ms_err *err) {
	return add_value(f->ids, &f->nids, id, "id", err);
}

/* "ns/id" matches "ns/id" and "id"; "id" matches "id" */
static bool id_matches(const char *want, const char *key) {
	if (!strcmp(want, key))
		return true;
	const char *slash = strrchr(key, '/');
	return slash && !strchr(want, '/') && !strcmp(want, slash + 1);
}

bool ob_filter_match_key(const ob_filter *f, const char *key) {
	if (!f->nids)
		return true;
	for (int i = 0; i < f->nids; i++)
		if (id_matches(f->ids[i], key))
			return true;
	return false;
}

bool ob_filter_match(const ob_filter *f, const char *key, const char *type) {
	if (!ob_filter_match_key(f, key))
		return false;
	if (!f->ntypes)
		return true;
	for (int i = 0; i < f->ntypes; i++)
		if (!strcmp(f->types[i], type))
			return true;
	return false;
}

/* ─── One journal line ──────────────────────────────────────────────── */

int ob_event_parse(const char *line, size_t len, ob_event *ev, ms_err *err) {
	memset(ev, 0, sizeof *ev);
	json_t *j = jl_loadb(line, len, JSON_REJECT_DUPLICATES, "event", err);
	if (!j)
		return err ? err->code : -EINVAL;
	if (!json_is_object(j)) {
		json_decref(j);
		return ms_fail(err, -EINVAL, "event: not a JSON object");
	}
	ev->obj = j;
	const char *type = json_string_value(json_object_get(j, "type"));
	ev->type = type ? type : "";
	const char *t = json_string_value(json_object_get(j, "time"));
	if (!t || ob_parse_rfc3339(t, &ev->time_ns))
		ev->time_ns = 0;
	return 0;
}

void ob_event_free(ob_event *ev) {
	json_decref(ev->obj);
	ev->obj = NULL;
}

/* a bounded output buffer: writes past the end are dropped */
typedef struct {
	char *buf;
	size_t n, len;
} out;

static void put(out *o, const char *s, size_t k) {
	if (o->len + 1 >= o->n)
		return;
	if (k > o->n - 1 - o->len)
		k = o->n - 1 - o->len;
	memcpy(o->buf + o->len, s, k);
	o->len += k;
	o->buf[o->len] = 0;
}

static void puts_(out *o, const char *s) {
	put(o, s, strlen(s));
}

/* text with C0, DEL and C1 control characters escaped: one event stays one
 * line, and nothing in it drives the terminal */
static void put_text(out *o, const char *s, size_t len) {
	char esc[8];
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			puts_(o, "\\n");
		else if (c == '\t')
			puts_(o, "\\t");
		else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof esc, "\\x%02x", c);
			puts_(o, esc);
		} else if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		           (unsigned char)s[i + 1] <= 0x9f) {
			snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)s[++i]);
			puts_(o, esc);
		} else {
			put(o, (const char *)&c, 1);
		}
	}
}

static int cmp_keys(const void *a, const void *b) {
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_value(out *o, json_t *v) {
	if (json_is_string(v)) {
		put_text(o, json_string_value(v), json_string_length(v));
		return;
	}
	char *s =
	    json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	if (s)
		put_text(o, s, strnlen(s, NESTED_MAX));
	free(s);
}

/* the fields but time, id and type, sorted: "(k=v, k=v)" */
static void put_fields(out *o, json_t *obj) {
	size_t n = json_object_size(obj), k = 0;
	const char **keys = calloc(n ? n : 1, sizeof *keys);
	if (!keys)
		return;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (strcmp(key, "time") && strcmp(key, "id") && strcmp(key, "type"))
			keys[k++] = key;
	}
	qsort(keys, k, sizeof *keys, cmp_keys);
	for (size_t i = 0; i < k; i++) {
		puts_(o, i ? ", " : " (");
		put_text(o, keys[i], strlen(keys[i]));
		puts_(o, "=");
		put_value(o, json_object_get(obj, keys[i]));
	}
	if (k)
		puts_(o, ")");
	free(keys);
}

size_t ob_event_format(const ob_event *ev, const char *key, char *buf, size_t n) {
	out o = {buf, n, 0};
	if (!n)
		return 0;
	buf[0] = 0;
	char t[64];
	if (ev->time_ns)
		ob_format_time(ev->time_ns, t, sizeof t);
	else
		snprintf(t, sizeof t, "-");
	puts_(&o, t);
	puts_(&o, " container ");
	put_text(&o, *ev->type ? ev->type : "-", strlen(*ev->type ? ev->type : "-"));
	puts_(&o, " ");
	put_text(&o, key, strlen(key));
	if (ev->obj)
		put_fields(&o, ev->obj);
	return o.len;
}

/* ─── Published containers ──────────────────────────────────────────── */

void ob_scan(const ob_roots *r, void (*fn)(const pb_entry *e, void *arg), void *arg) {
	ms_err err = {0};
	if (r->run && pb_scan(r->run, 1, fn, arg, &err))
		fprintf(stderr, "moonshim: %s\n", err.msg);
	err.code = 0;
	if (r->containerd && pb_scan(r->containerd, 2, fn, arg, &err))
		fprintf(stderr, "moonshim: %s\n", err.msg);
}

const char *ob_status(const pb_entry *e) {
	json_t *p = json_object_get(e->status, "process");
	const char *s = json_string_value(json_object_get(p, "status"));
	bool exited = json_is_integer(json_object_get(p, "exit_status"));
	if (!s)
		return "unknown";
	if (!strcmp(s, "stopped"))
		return "exited";
	if (e->live)
		return !strcmp(s, "running")   ? "running"
		       : !strcmp(s, "created") ? "created"
		                               : "unknown";
	return exited ? "exited" : "stopped";
}
