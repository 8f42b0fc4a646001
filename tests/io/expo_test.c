/* expo_test.c — the exposition writer (shim/io/expo.c): label values
 * escaped and made valid UTF-8 whatever the bytes, histogram buckets made
 * cumulative with +Inf, _sum and _count, counters typed as each format
 * wants (`x_total` in Prometheus' TYPE line, `x` in OpenMetrics'), the
 * OpenMetrics `# EOF`, empty families left out, and the Accept field's
 * choice of format. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/io/expo.h"

#include <string.h>

static const ex_family fams[] = {
    {"t_probes", EX_COUNTER, "Probes."},
    {"t_seconds", EX_HISTOGRAM, "Durations."},
    {"t_gauge", EX_GAUGE, "A gauge."},
    {"t_unused", EX_GAUGE, "Never sampled."},
};

static char *render(ex_format f) {
	ex_set *s = ex_new(fams, 4, f);
	CHECK(s);
	ex_label l[2] = {{"check", "web"}, {"role", NULL}};
	ex_add(s, 0, l, 2, 7);
	double b[3] = {0.005, 0.05, 0.5}, k[4] = {1, 4, 3, 1};
	ex_histogram(s, 1, l, 1, b, k, 3, 1.25);
	ex_add(s, 2, NULL, 0, 0.5);
	size_t n;
	char *out = ex_render(s, &n);
	ex_free(s);
	CHECK(out && strlen(out) == n);
	return out;
}

TEST(expo_prometheus_text) {
	char *o = render(EX_PROM);
	CHECKF(strstr(o, "# HELP t_probes_total Probes.\n# TYPE t_probes_total counter\n"
	                 "t_probes_total{check=\"web\"} 7\n"),
	       "%s", o);
	CHECK(strstr(o, "# TYPE t_gauge gauge\nt_gauge 0.5\n"));
	CHECK(!strstr(o, "t_unused"));
	CHECK(!strstr(o, "# EOF"));
	free(o);
}

TEST(expo_histogram_cumulative) {
	char *o = render(EX_PROM);
	CHECKF(strstr(o, "t_seconds_bucket{check=\"web\",le=\"0.005\"} 1\n"), "%s", o);
	CHECKF(strstr(o, "le=\"0.05\"} 5\n"), "%s", o); /* the shortest that reads back */
	CHECKF(strstr(o, "le=\"0.5\"} 8\n"), "%s", o);
	CHECKF(strstr(o, "t_seconds_bucket{check=\"web\",le=\"+Inf\"} 9\n"), "%s", o);
	CHECK(strstr(o, "t_seconds_sum{check=\"web\"} 1.25\n"));
	CHECK(strstr(o, "t_seconds_count{check=\"web\"} 9\n"));
	/* every bucket at least the one before */
	double last = -1;
	for (const char *p = o; (p = strstr(p, "t_seconds_bucket")); p++) {
		double v = strtod(strchr(p, '}') + 2, NULL);
		CHECK(v >= last);
		last = v;
	}
	free(o);
}

TEST(expo_openmetrics) {
	char *o = render(EX_OPENMETRICS);
	CHECKF(strstr(o, "# TYPE t_probes counter\nt_probes_total{check=\"web\"} 7\n"), "%s", o);
	CHECK(!strstr(o, "# TYPE t_probes_total"));
	CHECK(strstr(o, "le=\"0.5\"} 8\n")); /* bounds as floats */
	size_t n = strlen(o);
	CHECK(n > 6 && !strcmp(o + n - 6, "# EOF\n"));
	CHECK(strstr(o, "# EOF") == o + n - 6); /* once, at the end */
	free(o);
}

TEST(expo_escape) {
	char out[256];
	ex_escape("a\\b\"c\nd", out, sizeof out);
	CHECK(!strcmp(out, "a\\\\b\\\"c\\nd"));
	ex_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\x99", out, sizeof out); /* valid: kept */
	CHECK(!strcmp(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\x99"));
	/* a stray byte, an overlong '/', a surrogate, a cut sequence, past U+10FFFF */
	ex_escape("x\xffy\xc0\xafz\xed\xa0\x80w\xe2\x82", out, sizeof out);
	CHECKF(!strcmp(out,
	               "x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xef\xbf"
	               "\xbdw\xef\xbf\xbd\xef\xbf\xbd"),
	       "%s", out);
	ex_escape("\xf4\x90\x80\x80", out, sizeof out);
	CHECK(!strcmp(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
	/* cut to fit, never inside a character or an escape */
	char small[6];
	ex_escape("ab\xe2\x82\xac", small, sizeof small);
	CHECK(!strcmp(small, "ab\xe2\x82\xac"));
	ex_escape("abc\xe2\x82\xac", small, sizeof small);
	CHECK(!strcmp(small, "abc"));
	ex_escape("abcd\"", small, sizeof small);
	CHECK(!strcmp(small, "abcd"));
}

TEST(expo_label_values_hostile) {
	ex_set *s = ex_new(fams, 4, EX_PROM);
	char big[1000];
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = 0;
	ex_label l[2] = {{"check", "q\"\n\\\xff"}, {"big", big}};
	ex_add(s, 2, l, 2, 1);
	size_t n;
	char *o = ex_render(s, &n);
	ex_free(s);
	CHECKF(strstr(o, "t_gauge{check=\"q\\\"\\n\\\\\xef\xbf\xbd\",big=\""), "%s", o);
	CHECK(!strstr(o, big)); /* cut at EX_VALUE_MAX */
	CHECK(strchr(o, '\n') && !strstr(o, "\n\n"));
	free(o);
}

TEST(expo_negotiate) {
	CHECK(ex_negotiate(NULL) == EX_PROM);
	CHECK(ex_negotiate("") == EX_PROM);
	CHECK(ex_negotiate("text/plain;version=0.0.4") == EX_PROM);
	CHECK(ex_negotiate("application/openmetrics-text; version=1.0.0") == EX_OPENMETRICS);
	CHECK(ex_negotiate("application/openmetrics-text;version=1.0.0,application/"
	                   "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/"
	                   "*;q=0.1") == EX_OPENMETRICS);
	CHECK(ex_negotiate("application/openmetrics-text;q=0, text/plain") == EX_PROM);
	CHECK(ex_negotiate("Application/OpenMetrics-Text") == EX_OPENMETRICS);
	CHECK(!strcmp(ex_content_type(EX_OPENMETRICS), EX_CT_OPENMETRICS));
}
