/*
 * publish.h — what a supervisor tells the node about its container
 * (prefix pb_): a status snapshot and an event journal in a directory of
 * its own, read by `moonshim metrics`, `inspect`, `events` and `top`.
 *
 * Why files. A shim must never wait on a reader: a scrape, a stuck `top`
 * or a dead exporter cannot slow or block it. So the supervisor only
 * writes, at most once per PB_PERIOD_NS and only after something changed
 * (a probe, an event), a small JSON snapshot to a temporary file renamed
 * over status.json (tmpfs under /run: no disk, readers always see a whole
 * document). Readers open the files when they want; the kernel's page
 * cache is the only thing shared. A dead supervisor's series go away
 * because every reader checks the supervisor's pid with its start time
 * before trusting a snapshot (pid reuse cannot revive it), and the
 * supervisor removes its directory when the container is deleted.
 * Cgroup counters (memory, PSI, CPU throttling) are not copied: readers
 * read them from the cgroup the snapshot names, when they want them.
 *
 * Where. `moonshim run`: <root>/<id>/ beside state.json (root default
 * /run/moonshim). containerd shims: <PB_CONTAINERD_ROOT>/<namespace>/<id>/
 * (the runtime option publish_root changes it).
 *
 * status.json (version 1):
 *   version    1
 *   id         the container's id;  namespace  containerd's (containerd mode)
 *   mode       "run" | "containerd"
 *   labels     {"container","pod","namespace"} from the CRI annotations
 *              (io.kubernetes.cri.container-name, sandbox-name,
 *              sandbox-namespace), each only when present
 *   supervisor {"pid", "start_time"}: field 22 of /proc/PID/stat
 *   cgroup     the container's cgroup relative to the cgroup roots, or null
 *   updated    RFC 3339 UTC with nanoseconds (when this snapshot was made)
 *   process    {"status": "created"|"running"|"stopped", "pid", "started"
 *              (RFC 3339), "restarts", "exit_status" (once stopped)}
 *   scripts    [{"name", "kind": "check"|"policy"}] loaded in its Lua world
 *   health     State.Health as hk_json gives it, or null without checks:
 *              {"Status","FailingStreak","Log","Ready","Checks":[{"Name",
 *              "Role","Status","FailingStreak","Log":[≤5 results],
 *              "Probes":{"pass","fail","timeout","error" (counts),
 *              "duration":{"le":[bounds, s],"counts":[per bucket, one more
 *              than le: the last is above every bound],"sum": s}}}]}
 *   events     {"<type>": count} of every event the supervisor emitted
 *   policy     {"actions": {"<action>": count}, "step": the last
 *              policy.action's step (the ladder's), "last": that event}
 *   go         {"findings": {"<type>": count}, "last_findings": [≤5
 *              events, newest last], "sched": the workload's last SCHED
 *              sample {"uptime_ms","gomaxprocs","idleprocs","threads",
 *              "spinningthreads","idlethreads","runqueue"}} (when watched)
 *   errors     {"count", "by_script": {"<script>": count}, "last": [≤5
 *              "error" events, newest last]}
 *   runtime    the supervisor process's own {"goroutines","steals",
 *              "parks","switches","threads","rss_bytes"}
 *
 * events.jsonl: every event the supervisor emits, one JSON object per
 * line as the --events stream has them ({"time","id","type",...}). At
 * PB_JOURNAL_MAX bytes it is renamed to events.jsonl.1 (replacing the
 * older one) and a new one starts: readers following it reopen when the
 * inode changes.
 */
#ifndef MOONSHIM_PUBLISH_H
#define MOONSHIM_PUBLISH_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base.h"
#include "events.h"

#define PB_VERSION         1
#define PB_CONTAINERD_ROOT "/run/moonshim-containerd"
#define PB_STATUS          "status.json"
#define PB_STATUS_TMP      ".status.json.tmp" /* renamed over it */
#define PB_JOURNAL         "events.jsonl"
#define PB_JOURNAL_OLD     "events.jsonl.1"
#define PB_JOURNAL_MAX     (1 << 20)
#define PB_LAST_MAX        5         /* last findings, last errors kept */
#define PB_STATUS_MAX      (1 << 20) /* a reader refuses a larger status.json */

/* ─── Writing (a supervisor) ──────────────────────────────────────────── */

typedef struct pb pb;

/* A section computed when a snapshot is made (e.g. health from the
 * checks); returns a new reference or NULL (the key is then left out).
 * Called from the publisher's goroutine: it must take its own locks. */
typedef json_t *(*pb_section_fn)(void *arg);

/* Publish into dir (created, 0700, with its parents). identity is
 * consumed: id, namespace, mode, labels, cgroup — the keys that never
 * change. NULL and err on failure (the caller goes on without). */
pb *pb_open(const char *dir, json_t *identity, ms_err *err);
/* Register a computed section. When the key also holds an object set
 * otherwise (the counted "go" findings), the provider's keys are added to
 * it. */
void pb_provide(pb *p, const char *key, pb_section_fn fn, void *arg);
/* Stop calling arg's providers; their last values stay, as if pb_set. On
 * return none of them runs. */
void pb_withdraw(pb *p, void *arg);
/* Replace a section's value (consumed); the snapshot is rewritten soon. */
void pb_set(pb *p, const char *key, json_t *value);
/* Something a section shows changed: rewrite soon. */
void pb_dirty(pb *p);
/* Journal and count every event l emits from now on (ev_observe). */
void pb_observe(pb *p, ev_log *l);
/* In a goroutine: a first snapshot and the writer goroutine. Once. */
void pb_start(pb *p);
/* In a goroutine: a last snapshot, and the writer ends. */
void pb_stop(pb *p);
/* After pb_stop (or without pb_start; no runtime needed): free, and with
 * remove delete the published files and the directory (when empty: run's
 * state.json is its owner's). NULL is fine. */
void pb_close(pb *p, bool remove);

/* ─── Reading (metrics, inspect, events, top) ─────────────────────────── */

typedef struct pb_entry {
	char dir[PATH_MAX]; /* the container's directory */
	char key[512];      /* "id" (run) or "namespace/id" (containerd) */
	json_t *status;     /* status.json (borrowed for the callback) */
	bool live;          /* its supervisor runs (pid with its start time) */
} pb_entry;

/* Every container published under root: depth 1 (<root>/<id>, run's) or
 * 2 (<root>/<ns>/<id>, containerd's). A directory without a readable
 * status.json is skipped (a run container's state.json alone is not
 * published yet); a missing root is no error. */
int pb_scan(const char *root, int depth, void (*fn)(const pb_entry *e, void *arg), void *arg,
            ms_err *err);
/* Whether pid still is the process that started at start_time. */
bool pb_alive(pid_t pid, unsigned long long start_time);

#endif
