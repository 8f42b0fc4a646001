/*
 * host.c — which cgroup layout this host has: pure v2, hybrid (v2 for PSI
 * and events, v1 for memory/cpu/pids), or v1 only (refused).
 */
#define _GNU_SOURCE
#include "cg_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cg__err(cg_err *err, int code, const char *fmt, ...) {
	if (!err)
		return;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
}

const char *cg_layout_name(cg_layout l) {
	switch (l) {
	case CG_LAYOUT_V2:
		return "v2";
	case CG_LAYOUT_HYBRID:
		return "hybrid";
	case CG_LAYOUT_V1:
		return "v1";
	}
	return "unknown";
}

const char *cg_v1_hier_name(cg_v1_hier h) {
	static const char *const names[CG_V1_MORE] = {
	    [CG_V1_CPUSET] = "cpuset",
	    [CG_V1_CPUACCT] = "cpuacct",
	    [CG_V1_BLKIO] = "blkio",
	    [CG_V1_HUGETLB] = "hugetlb",
	    [CG_V1_FREEZER] = "freezer",
	    [CG_V1_NET_CLS] = "net_cls",
	    [CG_V1_NET_PRIO] = "net_prio",
	    [CG_V1_PERF_EVENT] = "perf_event",
	    [CG_V1_MISC] = "misc",
	    [CG_V1_RDMA] = "rdma",
	    [CG_V1_SYSTEMD] = "name=systemd",
	};
	return (unsigned)h < CG_V1_MORE ? names[h] : "?";
}

bool cg__has_word(const char *list, char sep, const char *word) {
	size_t n = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == sep) && (p[n] == sep || p[n] == 0 || p[n] == '\n'))
			return true;
	return false;
}

static void read_controllers(cg_host *h) {
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/cgroup.controllers", h->unified);
	FILE *f = fopen(path, "r");
	h->controllers[0] = 0;
	if (!f)
		return;
	if (fgets(h->controllers, sizeof h->controllers, f))
		h->controllers[strcspn(h->controllers, "\n")] = 0;
	fclose(f);
}

bool cg_host_has_controller(const cg_host *h, const char *name) {
	return cg__has_word(h->controllers, ' ', name);
}

int cg_host_detect(cg_host *h, const char *mounts, cg_err *err) {
	memset(h, 0, sizeof *h);
	FILE *f = fopen(mounts, "r");
	if (!f) {
		cg__err(err, -errno, "cannot read %s: %s", mounts, strerror(errno));
		return err ? err->code : -EIO;
	}
	char dev[256], dir[PATH_MAX], type[64], opts[1024];
	bool any_v1 = false;
	while (fscanf(f, "%255s %4095s %63s %1023s %*[^\n]", dev, dir, type, opts) == 4) {
		if (!strcmp(type, "cgroup2") && !h->unified[0]) {
			snprintf(h->unified, sizeof h->unified, "%s", dir);
		} else if (!strcmp(type, "cgroup")) {
			any_v1 = true;
			if (cg__has_word(opts, ',', "memory"))
				snprintf(h->v1_memory, sizeof h->v1_memory, "%s", dir);
			if (cg__has_word(opts, ',', "cpu"))
				snprintf(h->v1_cpu, sizeof h->v1_cpu, "%s", dir);
			if (cg__has_word(opts, ',', "pids"))
				snprintf(h->v1_pids, sizeof h->v1_pids, "%s", dir);
			for (int i = 0; i < CG_V1_MORE; i++)
				if (cg__has_word(opts, ',', cg_v1_hier_name(i)))
					snprintf(h->v1_more[i], sizeof h->v1_more[i], "%s", dir);
		}
	}
	fclose(f);
	if (!h->unified[0]) {
		h->layout = CG_LAYOUT_V1;
		cg__err(err, -ENOTSUP,
		        any_v1
		            ? "cgroup v1 only (%s): moonshim needs cgroup2 for PSI, events and kill"
		            : "no cgroup filesystem mounted (%s)",
		        mounts);
		return -ENOTSUP;
	}
	read_controllers(h);
	h->layout = cg_host_has_controller(h, "memory") || !h->v1_memory[0] ? CG_LAYOUT_V2
	                                                                    : CG_LAYOUT_HYBRID;
	return 0;
}
