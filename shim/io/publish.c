/*
 * publish.c — STAND-IN (branch evtop only) for the lead's reader: pb_scan
 * and pb_alive as publish.h describes them, until main's publish.c lands.
 */
#define _GNU_SOURCE
#include "publish.h"

#include <dirent.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

bool pb_alive(pid_t pid, unsigned long long start_time) {
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (pid <= 0)
		return false;
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return false;
	unsigned long long st = 0;
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
		if (++field == 22) {
			st = strtoull(tok, NULL, 10);
			break;
		}
	return st == start_time;
}

static void one(const char *dir, const char *key, void (*fn)(const pb_entry *, void *), void *arg) {
	pb_entry e;
	memset(&e, 0, sizeof e);
	snprintf(e.dir, sizeof e.dir, "%s", dir);
	snprintf(e.key, sizeof e.key, "%s", key);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/" PB_STATUS, dir);
	e.status = jl_load_file(path, 0, NULL);
	if (!json_is_object(e.status)) {
		json_decref(e.status);
		return;
	}
	json_t *s = json_object_get(e.status, "supervisor");
	e.live = pb_alive((pid_t)json_integer_value(json_object_get(s, "pid")),
	                  (unsigned long long)json_integer_value(json_object_get(s, "start_time")));
	fn(&e, arg);
	json_decref(e.status);
}

static int walk(const char *root, const char *prefix, int depth,
                void (*fn)(const pb_entry *, void *), void *arg, ms_err *err) {
	DIR *d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : ms_fail(err, -errno, "%s: %s", root, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char dir[PATH_MAX], key[512];
		snprintf(dir, sizeof dir, "%s/%s", root, de->d_name);
		snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name);
		struct stat st;
		if (stat(dir, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (depth > 1)
			walk(dir, key, depth - 1, fn, arg, err);
		else
			one(dir, key, fn, arg);
	}
	closedir(d);
	return 0;
}

int pb_scan(const char *root, int depth, void (*fn)(const pb_entry *e, void *arg), void *arg,
            ms_err *err) {
	return walk(root, "", depth, fn, arg, err);
}
