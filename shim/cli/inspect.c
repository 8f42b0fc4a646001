/*
 * inspect.c — `moonshim [--root DIR] inspect [--containerd-root DIR] ID...`:
 * what a container's supervisor last published (publish.h), shaped like
 * `docker inspect`'s State: one JSON array, an object per ID in the order
 * given. An ID is "id" (run's root first, then any containerd namespace)
 * or "ns/id". A snapshot whose supervisor is gone is shown as it was, its
 * status "exited" or "stopped", with Supervisor.Alive false. An unknown ID
 * is "Error: No such object: ID" on stderr and exit status 1, after the
 * array of the others (as docker does).
 */
#include "commands.h"

#include "observe.h"
#include "io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZERO_TIME "0001-01-01T00:00:00Z" /* docker's "never" */

typedef struct {
	const char *want; /* the ID asked for */
	json_t *status;   /* the snapshot found (owned), or NULL */
	char key[512];
	bool live, exact, ambiguous;
	char other[512]; /* a second namespace with this id */
} wanted;

typedef struct {
	wanted *w;
	int n;
} lookup;

static void match(const pb_entry *e, void *arg) {
	lookup *l = arg;
	for (int i = 0; i < l->n; i++) {
		wanted *w = &l->w[i];
		bool exact = !strcmp(w->want, e->key);
		const char *slash = strrchr(e->key, '/');
		bool bare = !strchr(w->want, '/') && slash && !strcmp(w->want, slash + 1);
		if (!exact && !bare)
			continue;
		if (w->status && (w->exact || !exact)) {
			if (!w->exact)
				w->ambiguous = true,
				snprintf(w->other, sizeof w->other, "%s", e->key);
			continue;
		}
		json_decref(w->status);
		w->status = json_incref(e->status);
		w->exact = exact, w->ambiguous = false, w->live = e->live;
		snprintf(w->key, sizeof w->key, "%s", e->key);
	}
}

/* the last PB_LAST_MAX entries of an array (a new reference) */
static json_t *last_of(json_t *a) {
	json_t *r = json_array();
	size_t n = json_array_size(a);
	for (size_t i = n > PB_LAST_MAX ? n - PB_LAST_MAX : 0; i < n; i++)
		json_array_append(r, json_array_get(a, i));
	return r;
}

/* State.Health with every Log cut to its last five results */
static json_t *health(json_t *h) {
	if (!json_is_object(h))
		return NULL;
	json_t *r = json_deep_copy(h);
	json_object_set_new(r, "Log", last_of(json_object_get(h, "Log")));
	json_t *checks = json_object_get(r, "Checks");
	size_t i;
	json_t *c;
	json_array_foreach(checks, i, c) {
		if (json_is_object(c))
			json_object_set_new(c, "Log", last_of(json_object_get(c, "Log")));
	}
	return r;
}

static json_t *state(const pb_entry *e) {
	json_t *p = json_object_get(e->status, "process");
	const char *st = ob_status(e);
	bool running = !strcmp(st, "running");
	json_t *started = json_object_get(p, "started");
	return json_pack("{s:s, s:b, s:I, s:I, s:o, s:I, s:o*}", "Status", st, "Running", running,
	                 "Pid", running ? json_integer_value(json_object_get(p, "pid")) : 0,
	                 "ExitCode", json_integer_value(json_object_get(p, "exit_status")),
	                 "StartedAt",
	                 json_is_string(started) ? json_incref(started) : json_string(ZERO_TIME),
	                 "Restarts", json_integer_value(json_object_get(p, "restarts")), "Health",
	                 health(json_object_get(e->status, "health")));
}

/* a section of the snapshot, or an empty object when it is missing */
static json_t *section(json_t *s, const char *key, const char *sub) {
	json_t *v = json_object_get(json_object_get(s, key), sub);
	return v ? json_incref(v) : json_object();
}

static json_t *moonshim_sections(json_t *s) {
	json_t *policy = json_object_get(s, "policy"), *go = json_object_get(s, "go"),
	       *errors = json_object_get(s, "errors");
	json_t *sched = json_object_get(go, "sched");
	return json_pack(
	    "{s:o, s:{s:O?, s:O?, s:o}, s:{s:o, s:o, s:O?}, s:{s:I, s:o, s:o}, s:o}", "Scripts",
	    json_is_array(json_object_get(s, "scripts"))
	        ? json_incref(json_object_get(s, "scripts"))
	        : json_array(),
	    "Policy", "Step", json_object_get(policy, "step"), "LastAction",
	    json_object_get(policy, "last"), "Actions", section(s, "policy", "actions"), "GoWatch",
	    "Findings", section(s, "go", "findings"), "LastFindings",
	    last_of(json_object_get(go, "last_findings")), "Sched", sched, "Errors", "Count",
	    json_integer_value(json_object_get(errors, "count")), "ByScript",
	    section(s, "errors", "by_script"), "Last", last_of(json_object_get(errors, "last")),
	    "Events",
	    json_is_object(json_object_get(s, "events")) ? json_incref(json_object_get(s, "events"))
	                                                 : json_object());
}

static json_t *inspect_one(const wanted *w) {
	pb_entry e = {.status = w->status, .live = w->live};
	snprintf(e.key, sizeof e.key, "%s", w->key);
	json_t *s = w->status, *sup = json_object_get(s, "supervisor");
	json_t *o = json_pack(
	    "{s:O?, s:s, s:O?, s:O?, s:O?, s:O?, s:o, s:{s:O?, s:b, s:O?, s:s*}}", "Id",
	    json_object_get(s, "id"), "Key", w->key, "Namespace", json_object_get(s, "namespace"),
	    "Mode", json_object_get(s, "mode"), "Labels", json_object_get(s, "labels"), "Cgroup",
	    json_object_get(s, "cgroup"), "State", state(&e), "Supervisor", "Pid",
	    json_object_get(sup, "pid"), "Alive", w->live, "Updated", json_object_get(s, "updated"),
	    "Note", w->live ? NULL : "the supervisor is gone: this is its last snapshot");
	json_t *more = moonshim_sections(s);
	if (o && more)
		json_object_update(o, more);
	json_decref(more);
	return o;
}

static void usage(FILE *f) {
	fprintf(f, "usage: moonshim [--root DIR] inspect [--containerd-root DIR] ID...\n");
}

int cmd_inspect(int argc, char **argv) {
	ob_roots roots = {g_cli.root, PB_CONTAINERD_ROOT};
	wanted *w = calloc((size_t)argc, sizeof *w);
	lookup l = {w, 0};
	for (int i = 1; w && i < argc; i++) {
		if (cli_global_option(argc, argv, &i))
			continue;
		if (!strcmp(argv[i], "--containerd-root") && i + 1 < argc) {
			roots.containerd = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			free(w);
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "moonshim inspect: unknown option %s\n", argv[i]);
			usage(stderr);
			free(w);
			return 2;
		} else {
			w[l.n++].want = argv[i];
		}
	}
	if (!w || !l.n) {
		usage(stderr);
		free(w);
		return 2;
	}
	roots.run = g_cli.root;
	ob_scan(&roots, match, &l);
	json_t *out = json_array();
	int rc = 0;
	for (int i = 0; i < l.n; i++) {
		if (w[i].ambiguous) {
			fprintf(stderr, "Error: %s is ambiguous: %s and %s; name one as NS/ID\n",
			        w[i].want, w[i].key, w[i].other);
			rc = 1;
		} else if (!w[i].status) {
			fprintf(stderr, "Error: No such object: %s\n", w[i].want);
			rc = 1;
		} else {
			json_array_append_new(out, inspect_one(&w[i]));
		}
		json_decref(w[i].status);
	}
	char *s = json_dumps(out, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(out);
	free(w);
	return rc;
}
