/*
 * state.h — containers' records under the state root (prefix st_):
 * <root>/<id>/state.json, written atomically (temp file + rename). The
 * directory is created exclusively, so it doubles as the claim on an id.
 * A pid is trusted only together with its start time, which catches pid
 * reuse after the container exited.
 */
#ifndef MOONSHIM_STATE_H
#define MOONSHIM_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base.h"

#define ST_DEFAULT_ROOT "/run/moonshim"
#define ST_ID_MAX       256

typedef struct st_record {
	char id[ST_ID_MAX];
	pid_t pid;                     /* the container's init, 0 before it exists */
	unsigned long long start_time; /* of pid (ct_start_time) */
	pid_t supervisor;              /* the moonshim process that waits for it */
	char bundle[PATH_MAX];
	char rootfs[PATH_MAX];
	char cgroup[PATH_MAX]; /* relative to the cgroup roots */
	char created[48];      /* RFC 3339 */
	char status[16];       /* "creating", "running", "stopped" as recorded */
	int exit_status;       /* valid when stopped */
	char owner[64];
} st_record;

/* The id may name a directory: letters, digits, "_", "-", "." (not "."
 * or ".."), at most ST_ID_MAX-1 bytes. */
int st_check_id(const char *id, ms_err *err);
/* Claim <root>/<id> (mkdir -p root, mode 0700). -EEXIST: the id is taken. */
int st_claim(const char *root, const char *id, ms_err *err);
int st_write(const char *root, const st_record *r, ms_err *err);
int st_read(const char *root, const char *id, st_record *r, ms_err *err);
void st_remove(const char *root, const char *id);
/* The status now: "running" (or "paused" if the cgroup is frozen) while
 * the recorded pid lives with its start time, else "stopped"; "creating"
 * as recorded. */
const char *st_status(const st_record *r);
/* Every id under root, calling fn for each readable record. */
int st_list(const char *root, void (*fn)(const st_record *r, void *arg), void *arg, ms_err *err);

#endif
