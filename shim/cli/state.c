/* state.c — the records under the state root: claim, write, read, list. */
#define _GNU_SOURCE
#include "state.h"

#include "oci.h"
#include "base.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int st_check_id(const char *id, ms_err *err) {
	size_t n = strlen(id);
	if (!n || n >= ST_ID_MAX || !strcmp(id, ".") || !strcmp(id, ".."))
		return ms_fail(
		    err, -EINVAL,
		    "container id \"%s\": must be 1 to %d characters, not \".\" or \"..\"", id,
		    ST_ID_MAX - 1);
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("_-.", *c)))
			return ms_fail(
			    err, -EINVAL,
			    "container id \"%s\": only letters, digits, '_', '-' and '.'", id);
	return 0;
}

int st_claim(const char *root, const char *id, ms_err *err) {
	int rc = fs_mkdir_p(root, 0700, err);
	if (rc)
		return ms_wrap(err, "state root %s", root);
	char dir[PATH_MAX + ST_ID_MAX];
	snprintf(dir, sizeof dir, "%s/%s", root, id);
	if (mkdir(dir, 0700) < 0)
		return ms_fail(err, -errno,
		               errno == EEXIST ? "container \"%s\" already exists (in %s)"
		                               : "%s: %s",
		               id, errno == EEXIST ? root : strerror(errno));
	return 0;
}

int st_write(const char *root, const st_record *r, ms_err *err) {
	char path[PATH_MAX + ST_ID_MAX + 32], tmp[sizeof path + 8];
	snprintf(path, sizeof path, "%s/%s/state.json", root, r->id);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	json_t *j = json_pack(
	    "{s:s, s:s, s:i, s:I, s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "ociVersion", "1.0.2",
	    "id", r->id, "pid", r->pid, "pid_start_time", (json_int_t)r->start_time, "supervisor",
	    r->supervisor, "status", r->status, "bundle", r->bundle, "rootfs", r->rootfs, "created",
	    r->created, "cgroup", r->cgroup, "exit_status", r->exit_status, "owner", r->owner);
	int rc = json_dump_file(j, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (rc < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return ms_fail(err, -EIO, "writing %s failed", path);
	}
	return 0;
}

static void copy_str(json_t *j, const char *key, char *dst, size_t n) {
	const char *s = json_string_value(json_object_get(j, key));
	snprintf(dst, n, "%s", s ? s : "");
}

int st_read(const char *root, const char *id, st_record *r, ms_err *err) {
	memset(r, 0, sizeof *r);
	if (st_check_id(id, err))
		return err->code;
	char path[PATH_MAX + ST_ID_MAX + 32];
	snprintf(path, sizeof path, "%s/%s/state.json", root, id);
	json_t *j = jl_load_file(path, 0, NULL);
	if (!j) {
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", root, id);
		if (stat(path, &st) < 0)
			return ms_fail(err, -ENOENT, "container \"%s\" does not exist (in %s)", id,
			               root);
		snprintf(r->id, sizeof r->id, "%s", id);
		snprintf(r->status, sizeof r->status, "creating");
		return 0;
	}
	copy_str(j, "id", r->id, sizeof r->id);
	r->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	r->start_time =
	    (unsigned long long)json_integer_value(json_object_get(j, "pid_start_time"));
	r->supervisor = (pid_t)json_integer_value(json_object_get(j, "supervisor"));
	copy_str(j, "status", r->status, sizeof r->status);
	copy_str(j, "bundle", r->bundle, sizeof r->bundle);
	copy_str(j, "rootfs", r->rootfs, sizeof r->rootfs);
	copy_str(j, "created", r->created, sizeof r->created);
	copy_str(j, "cgroup", r->cgroup, sizeof r->cgroup);
	copy_str(j, "owner", r->owner, sizeof r->owner);
	r->exit_status = (int)json_integer_value(json_object_get(j, "exit_status"));
	json_decref(j);
	return 0;
}

void st_remove(const char *root, const char *id) {
	char path[PATH_MAX + ST_ID_MAX + 32];
	snprintf(path, sizeof path, "%s/%s/state.json", root, id);
	unlink(path);
	snprintf(path, sizeof path, "%s/%s/state.json.tmp", root, id);
	unlink(path);
	/* what the supervisor published beside it (publish.h) */
	static const char *const published[] = {PB_STATUS, PB_STATUS_TMP, PB_JOURNAL,
	                                        PB_JOURNAL_OLD};
	for (size_t i = 0; i < sizeof published / sizeof *published; i++) {
		snprintf(path, sizeof path, "%s/%s/%s", root, id, published[i]);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/%s", root, id);
	rmdir(path);
}

const char *st_status(const st_record *r) {
	if (!strcmp(r->status, "running") || !strcmp(r->status, "paused")) {
		if (!ct_pid_running(r->pid, r->start_time))
			return "stopped";
		return "running";
	}
	return r->status[0] ? r->status : "stopped";
}

int st_list(const char *root, void (*fn)(const st_record *r, void *arg), void *arg, ms_err *err) {
	DIR *d = opendir(root);
	if (!d)
		return errno == ENOENT
		           ? 0
		           : ms_fail(err, -errno, "state root %s: %s", root, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		st_record r;
		ms_err ignored = {0};
		if (st_read(root, e->d_name, &r, &ignored) == 0)
			fn(&r, arg);
	}
	closedir(d);
	return 0;
}
