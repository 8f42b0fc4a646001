/*
 * expo.h — metrics in Prometheus' text exposition format 0.0.4 or in
 * OpenMetrics 1.0.0 (prefix ex_), for `moonshim metrics`.
 *
 * A caller declares its metric families once (a static table), then adds
 * samples in any order; ex_render groups every family's samples under its
 * HELP and TYPE lines, as both formats require. The two formats differ
 * where it shows: OpenMetrics names a counter family without `_total` in
 * its TYPE line (its samples keep it), and ends with `# EOF`; Prometheus'
 * text names the sample (`x_total`) in TYPE. Label values are escaped
 * (backslash, double quote, newline) and made valid UTF-8 (an invalid
 * byte becomes U+FFFD), whatever bytes the caller gives.
 */
#ifndef MOONSHIM_EXPO_H
#define MOONSHIM_EXPO_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { EX_PROM = 0, EX_OPENMETRICS } ex_format;
typedef enum { EX_GAUGE = 0, EX_COUNTER, EX_HISTOGRAM } ex_type;

#define EX_CT_PROM        "text/plain; version=0.0.4; charset=utf-8"
#define EX_CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define EX_LABEL_MAX      8   /* labels on one sample */
#define EX_VALUE_MAX      256 /* bytes of a label value kept (longer are cut) */

/* A family: its name (a counter's without `_total`), type and help. */
typedef struct ex_family {
	const char *name;
	ex_type type;
	const char *help;
} ex_family;

/* One label; a NULL value leaves the label out. */
typedef struct ex_label {
	const char *name, *value;
} ex_label;

typedef struct ex_set ex_set;

/* The format an Accept field asks for: OpenMetrics when it names
 * application/openmetrics-text with a q above 0, else Prometheus text. */
ex_format ex_negotiate(const char *accept);
const char *ex_content_type(ex_format f);

/* NULL on ENOMEM. fams must outlive the set. */
ex_set *ex_new(const ex_family *fams, int nfams, ex_format f);
void ex_free(ex_set *s);
/* Labels every later sample starts with (escaped once, here), until the
 * next ex_scope; nl 0 clears them. A container's id, mode and names. */
void ex_scope(ex_set *s, const ex_label *labels, int nl);
/* A gauge's or counter's sample of family fam (index into the table). */
void ex_add(ex_set *s, int fam, const ex_label *labels, int nl, double v);
/* A histogram: bounds[n] upper bounds (ascending), counts[n + 1] per
 * bucket (the last above every bound); made cumulative here, with +Inf,
 * _sum and _count. */
void ex_histogram(ex_set *s, int fam, const ex_label *labels, int nl, const double *bounds,
                  const double *counts, int n, double sum);
/* The whole text (malloc'd, *len), or NULL on ENOMEM. Families without
 * samples are left out. */
char *ex_render(ex_set *s, size_t *len);

/* Escape v as a label value into out (NUL-terminated, cut at a whole
 * character to fit n; n >= 4): the bytes written. */
size_t ex_escape(const char *v, char *out, size_t n);

#endif
