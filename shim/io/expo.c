/*
 * expo.c — expo.h's writer: a growing text buffer per family, filled by
 * ex_add and ex_histogram, joined under HELP and TYPE lines by ex_render.
 * Invariants: every byte of a label value that leaves here is valid UTF-8
 * with `\`, `"` and newline escaped; a failed allocation marks the set,
 * and ex_render then returns NULL rather than a partial exposition.
 */
#define _GNU_SOURCE
#include "expo.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BUF_FIRST 256 /* a family's buffer starts this big and doubles */
#define NUM_MAX   40  /* a %.17g double, a sign, "+Inf" */

typedef struct buf {
	char *p;
	size_t len, cap;
} buf;

struct ex_set {
	const ex_family *fams;
	int n;
	ex_format fmt;
	bool oom;
	buf *bodies; /* one per family */
	buf scope;   /* the labels every sample starts with, escaped (ex_scope) */
};

/* ─── Buffers ─────────────────────────────────────────────────────────── */

static bool buf_room(ex_set *s, buf *b, size_t more) {
	if (s->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : BUF_FIRST;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		s->oom = true;
		return false;
	}
	b->p = p, b->cap = cap;
	return true;
}

static void buf_put(ex_set *s, buf *b, const char *t, size_t n) {
	if (!buf_room(s, b, n))
		return;
	memcpy(b->p + b->len, t, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void buf_str(ex_set *s, buf *b, const char *t) {
	buf_put(s, b, t, strlen(t));
}

/* ─── Values and labels ───────────────────────────────────────────────── */

/* An integer in decimal (a scrape has ~100 of them per container:
 * printf's float path is the slow part of rendering). */
static void fmt_int(long long v, char *out, bool force_point) {
	char tmp[24];
	int n = 0;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		*out++ = '-';
	while (n)
		*out++ = tmp[--n];
	if (force_point)
		*out++ = '.', *out++ = '0';
	*out = 0;
}

/* A number as both formats read it: integers without a point, NaN, +Inf. */
static void fmt_value(double v, char *out, bool force_point) {
	if (isnan(v))
		strcpy(out, "NaN");
	else if (isinf(v))
		strcpy(out, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		fmt_int((long long)v, out, force_point);
	else /* the shortest that reads back as v */
		for (int prec = 15; prec <= 17; prec++)
			if (snprintf(out, NUM_MAX, "%.*g", prec, v) > 0 && strtod(out, NULL) == v)
				break;
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
	unsigned c = p[0];
	size_t len = c < 0x80             ? 1
	             : (c & 0xe0) == 0xc0 ? 2
	             : (c & 0xf0) == 0xe0 ? 3
	             : (c & 0xf8) == 0xf0 ? 4
	                                  : 0;
	if (!len || len > n)
		return 0;
	unsigned cp = len == 1 ? c : c & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range, a surrogate */
	return len;
}

size_t ex_escape(const char *v, char *out, size_t n) {
	static const char fffd[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)v;
	size_t o = 0, left = strlen(v);
	while (left) {
		size_t l = utf8_len(p, left);
		const char *piece = (const char *)p;
		size_t pn = l;
		if (!l)
			piece = fffd, pn = 3, l = 1;
		else if (*p == '\\')
			piece = "\\\\", pn = 2;
		else if (*p == '"')
			piece = "\\\"", pn = 2;
		else if (*p == '\n')
			piece = "\\n", pn = 2;
		if (o + pn >= n)
			break; /* cut at a whole character */
		memcpy(out + o, piece, pn);
		o += pn, p += l, left -= l;
	}
	out[o] = 0;
	return o;
}

/* name="escaped value" (with a comma before it unless first) */
static void put_label(ex_set *s, buf *b, const ex_label *l, bool first) {
	char esc[EX_VALUE_MAX * 2], cut[EX_VALUE_MAX + 1];
	buf_str(s, b, first ? "" : ",");
	buf_str(s, b, l->name);
	buf_str(s, b, "=\"");
	size_t vn = strnlen(l->value, EX_VALUE_MAX);
	memcpy(cut, l->value, vn);
	cut[vn] = 0;
	buf_put(s, b, esc, ex_escape(cut, esc, sizeof esc));
	buf_str(s, b, "\"");
}

static void put_labels(ex_set *s, buf *b, const ex_label *labels, int nl, const char *le) {
	bool any = s->scope.len > 0;
	if (any) {
		buf_str(s, b, "{");
		buf_put(s, b, s->scope.p, s->scope.len);
	}
	for (int i = 0; i < nl + (le != NULL); i++) {
		const ex_label *l = i < nl ? &labels[i] : &(ex_label){"le", le};
		if (!l->value)
			continue;
		buf_str(s, b, any ? "" : "{");
		put_label(s, b, l, !any);
		any = true;
	}
	if (any)
		buf_str(s, b, "}");
}

static void put_sample(ex_set *s, int fam, const char *suffix, const ex_label *labels, int nl,
                       const char *le, double v) {
	buf *b = &s->bodies[fam];
	char num[NUM_MAX];
	buf_str(s, b, s->fams[fam].name);
	buf_str(s, b, suffix);
	put_labels(s, b, labels, nl, le);
	fmt_value(v, num, false);
	buf_str(s, b, " ");
	buf_str(s, b, num);
	buf_str(s, b, "\n");
}

/* ─── The set ─────────────────────────────────────────────────────────── */

ex_format ex_negotiate(const char *accept) {
	for (const char *p = accept; p && (p = strcasestr(p, "application/openmetrics-text"));) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *q = memmem(p, n, ";q=", 3);
		if (!q)
			q = memmem(p, n, "; q=", 4);
		if (!q || strtod(strchr(q, '=') + 1, NULL) > 0)
			return EX_OPENMETRICS;
		p += n;
	}
	return EX_PROM;
}

const char *ex_content_type(ex_format f) {
	return f == EX_OPENMETRICS ? EX_CT_OPENMETRICS : EX_CT_PROM;
}

ex_set *ex_new(const ex_family *fams, int nfams, ex_format f) {
	ex_set *s = calloc(1, sizeof *s);
	if (s && !(s->bodies = calloc((size_t)nfams, sizeof *s->bodies))) {
		free(s);
		return NULL;
	}
	if (s)
		s->fams = fams, s->n = nfams, s->fmt = f;
	return s;
}

void ex_free(ex_set *s) {
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		free(s->bodies[i].p);
	free(s->bodies);
	free(s->scope.p);
	free(s);
}

void ex_scope(ex_set *s, const ex_label *labels, int nl) {
	s->scope.len = 0;
	for (int i = 0; i < nl; i++)
		if (labels[i].value)
			put_label(s, &s->scope, &labels[i], s->scope.len == 0);
}

void ex_add(ex_set *s, int fam, const ex_label *labels, int nl, double v) {
	put_sample(s, fam, s->fams[fam].type == EX_COUNTER ? "_total" : "", labels, nl, NULL, v);
}

void ex_histogram(ex_set *s, int fam, const ex_label *labels, int nl, const double *bounds,
                  const double *counts, int n, double sum) {
	double cum = 0;
	char le[NUM_MAX];
	for (int i = 0; i <= n; i++) {
		cum += counts[i];
		if (i < n)
			fmt_value(bounds[i], le, s->fmt == EX_OPENMETRICS);
		put_sample(s, fam, "_bucket", labels, nl, i < n ? le : "+Inf", cum);
	}
	put_sample(s, fam, "_sum", labels, nl, NULL, sum);
	put_sample(s, fam, "_count", labels, nl, NULL, cum);
}

static const char *type_name(ex_type t) {
	return t == EX_COUNTER ? "counter" : t == EX_HISTOGRAM ? "histogram" : "gauge";
}

char *ex_render(ex_set *s, size_t *len) {
	buf out = {0};
	size_t total = sizeof "# EOF\n";
	for (int i = 0; i < s->n; i++)
		total +=
		    s->bodies[i].len ? s->bodies[i].len + 2 * strlen(s->fams[i].help) + 128 : 0;
	buf_room(s, &out, total); /* the HELP and TYPE lines fit in the slack */
	for (int i = 0; i < s->n; i++) {
		const ex_family *f = &s->fams[i];
		if (!s->bodies[i].len)
			continue;
		/* Prometheus' text types the sample name; OpenMetrics the family */
		const char *sfx = f->type == EX_COUNTER && s->fmt == EX_PROM ? "_total" : "";
		const char *parts[] = {"# HELP ",
		                       f->name,
		                       sfx,
		                       " ",
		                       f->help,
		                       "\n",
		                       "# TYPE ",
		                       f->name,
		                       sfx,
		                       " ",
		                       type_name(f->type),
		                       "\n"};
		for (size_t k = 0; k < sizeof parts / sizeof *parts; k++)
			buf_str(s, &out, parts[k]);
		buf_put(s, &out, s->bodies[i].p, s->bodies[i].len);
	}
	if (s->fmt == EX_OPENMETRICS)
		buf_str(s, &out, "# EOF\n");
	else if (!out.p)
		buf_put(s, &out, "", 0);
	if (s->oom) {
		free(out.p);
		return NULL;
	}
	*len = out.len;
	return out.p;
}
