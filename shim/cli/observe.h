/*
 * observe.h — what `inspect`, `events` and `top` share (prefix ob_): the
 * times an operator types (--since/--until), event filters, one journal
 * line parsed and printed docker's way, and every published container of
 * both roots (run's and the containerd shims', publish.h).
 *
 * Everything here reads files a supervisor wrote from a workload's events
 * (a check's output, a policy's fields): a line is bounded (OB_LINE_MAX),
 * invalid JSON is refused with a message, and printed text never carries a
 * control character to the terminal.
 */
#ifndef MOONSHIM_OBSERVE_H
#define MOONSHIM_OBSERVE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "io.h"

#define OB_LINE_MAX   (64 * 1024) /* a longer journal line is skipped */
#define OB_FILTER_MAX 16          /* values per filter key */
#define OB_NS         1000000000LL

/* ─── Times ─────────────────────────────────────────────────────────── */

/* RFC 3339 ("2026-12-05T21:00:00Z", fraction and ±hh:mm offset allowed)
 * to nanoseconds since the epoch; -EINVAL if s is not one, -ERANGE before
 * 1678 or after 2261 (an int64 of nanoseconds). */
int ob_parse_rfc3339(const char *s, int64_t *ns);
/* docker's --since/--until: RFC 3339, a Unix timestamp ("1764968400",
 * "1764968400.5"), or a duration before now ("10m", "1h30m", "1.5s",
 * "250ms"). The message names s. */
int ob_parse_time(const char *s, int64_t now_ns, int64_t *ns, ms_err *err);
/* ns as RFC 3339 UTC with nine fraction digits (docker events' column). */
void ob_format_time(int64_t ns, char *buf, size_t n);
int64_t ob_now(void);

/* ─── Filters ───────────────────────────────────────────────────────── */

/* --filter KEY=VALUE as docker's: values of one key are alternatives,
 * different keys must all match. Keys: type, id (container: the same). An
 * id matches the key ("ns/id") or the bare id. */
typedef struct ob_filter {
	const char *types[OB_FILTER_MAX];
	int ntypes;
	const char *ids[OB_FILTER_MAX];
	int nids;
} ob_filter;
int ob_filter_add(ob_filter *f, const char *kv, ms_err *err);
int ob_filter_add_id(ob_filter *f, const char *id, ms_err *err);
bool ob_filter_match(const ob_filter *f, const char *key, const char *type);
/* Whether the id filter can match key at all (a journal worth reading). */
bool ob_filter_match_key(const ob_filter *f, const char *key);

/* ─── One journal line ──────────────────────────────────────────────── */

typedef struct ob_event {
	json_t *obj;      /* the whole event (owned) */
	const char *type; /* borrowed from obj ("" when absent) */
	int64_t time_ns;  /* 0 when the time is missing or not RFC 3339 */
} ob_event;
/* Parse one line (without its newline); -EINVAL with a message when it is
 * not a JSON object. */
int ob_event_parse(const char *line, size_t len, ob_event *ev, ms_err *err);
void ob_event_free(ob_event *ev);
/* docker's text: "TIME container TYPE KEY (k=v, k=v)", the other fields
 * sorted by name, strings bare, other values as compact JSON, control
 * characters escaped; cut at n-1 bytes. Returns the length written. */
size_t ob_event_format(const ob_event *ev, const char *key, char *buf, size_t n);

/* ─── Published containers ──────────────────────────────────────────── */

/* The two roots: run's (--root) and containerd shims' (--containerd-root). */
typedef struct ob_roots {
	const char *run;
	const char *containerd;
} ob_roots;
/* Every published container of both roots; a root that cannot be read is
 * reported on stderr once and skipped. */
void ob_scan(const ob_roots *r, void (*fn)(const pb_entry *e, void *arg), void *arg);
/* The status "process.status" shows a reader, docker's words: "created",
 * "running", "exited"; "stopped" when the supervisor went away without
 * recording an exit. */
const char *ob_status(const pb_entry *e);

#endif
