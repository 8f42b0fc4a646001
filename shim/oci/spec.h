/*
 * spec.h — an OCI bundle's config.json as moonshim uses it (prefix spec_).
 *
 * spec_load reads <bundle>/config.json with jansson and checks every field
 * moonshim acts on; what it returns is ready for container creation (flags
 * resolved, capability sets as bit masks, paths absolute). An error names
 * the JSON path ("linux.namespaces[2].type: unknown namespace type ...").
 * A field moonshim does not support is an error when ignoring it would
 * weaken isolation (apparmorProfile, selinuxLabel, intelRdt, seccomp
 * notify, ...) and a warning otherwise; warnings are kept in the spec for
 * the caller to print, never dropped.
 */
#ifndef MOONSHIM_SPEC_H
#define MOONSHIM_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "base.h"

#define SPEC_MAX_WARNINGS 16
/* linux.resources bounds (the spec is untrusted) */
#define SPEC_MAX_THROTTLES    64   /* blockIO throttle entries, all kinds */
#define SPEC_MAX_HUGEPAGES    8    /* hugepageLimits page sizes */
#define SPEC_SWAPPINESS_MAX   100  /* memory.swappiness */
#define SPEC_BLKIO_WEIGHT_MAX 1000 /* blockIO.weight (10..1000; 0: unset) */

typedef struct spec_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
} spec_rlimit;

/* The process to run: process in config.json, or an exec's process.json. */
typedef struct spec_process {
	char **args; /* NULL-terminated */
	char **env;  /* NULL-terminated */
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *gids; /* additionalGids */
	size_t ngids;
	bool terminal;
	struct {
		uint64_t bounding, effective, inheritable, permitted, ambient;
	} caps;
	bool has_caps; /* process.capabilities present: apply the sets */
	spec_rlimit *rlimits;
	size_t nrlimits;
	bool no_new_privs;
	bool has_oom_score_adj;
	int oom_score_adj;
	bool has_umask;
	mode_t umask; /* process.user.umask; 0022 when absent, as runc */
} spec_process;

typedef struct spec_idmap {
	uint32_t inside, outside, size; /* containerID, hostID, size */
} spec_idmap;

/* idmapped mounts a spec may hold (each is an fd passed to the container's
 * init, and perhaps a user namespace made for it) */
#define SPEC_MAX_IDMAP_MOUNTS 64

typedef struct spec_mount {
	char *dest;          /* absolute inside the container */
	char *type;          /* "" for a bind mount */
	char *source;        /* absolute for binds (relative ones resolved against the bundle) */
	char *data;          /* comma-joined options the kernel parses ("mode=755,size=64k") */
	unsigned long flags; /* MS_* set (MS_BIND, MS_RDONLY, ...) */
	unsigned long propagation; /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (| MS_REC), 0: none */
	bool bind;
	/* an idmapped bind (option idmap or ridmap, or mappings given): the
	 * source seen through MOUNT_ATTR_IDMAP; idmap_recursive (ridmap): on
	 * every mount of an rbind, not only its top */
	bool idmap, idmap_recursive;
	/* "rro": read-only on every mount of it, submounts too (mount_setattr
	 * MOUNT_ATTR_RDONLY with AT_RECURSIVE after mounting, as runc does) */
	bool rro;
	/* the mount's own mappings (both or neither); none: the container's
	 * user namespace (also when they equal the container's mappings) */
	spec_idmap *uidmap, *gidmap;
	size_t nuidmap, ngidmap;
} spec_mount;

typedef struct spec_ns_join {
	int type; /* CLONE_NEW* */
	char *path;
} spec_ns_join;

typedef struct spec_device {
	char *path;
	char type; /* 'c', 'b', 'u', 'p' */
	int64_t major, minor;
	uint32_t mode; /* permission bits; 0666 when absent */
	uid_t uid;
	gid_t gid;
} spec_device;

/* An OCI hook (hooks.* in config.json): run by hooks.c at its point of
 * the lifecycle, the container's state JSON on its stdin. */
typedef enum spec_hook_kind {
	SPEC_HOOK_PRESTART, /* deprecated; runs just before createRuntime */
	SPEC_HOOK_CREATE_RUNTIME,
	SPEC_HOOK_CREATE_CONTAINER,
	SPEC_HOOK_START_CONTAINER,
	SPEC_HOOK_POSTSTART,
	SPEC_HOOK_POSTSTOP,
	SPEC_HOOK_KINDS
} spec_hook_kind;

/* hooks lists longer than this are refused (CDI and NRI add a handful) */
#define SPEC_MAX_HOOKS 64

typedef struct spec_hook {
	char *path;  /* absolute */
	char **args; /* NULL-terminated; NULL: argv is just path */
	char **env;  /* NULL-terminated; NULL: not given */
	int timeout; /* seconds, 0: none */
} spec_hook;

typedef struct spec_kv {
	char *key, *value;
} spec_kv;

typedef struct spec {
	json_t *json; /* the whole document (owns the strings below' sources) */
	char *bundle; /* absolute */
	spec_process process;
	char *rootfs; /* absolute */
	bool root_readonly;
	char *hostname, *domainname; /* NULL: not set */
	spec_mount *mounts;
	size_t nmounts;

	int ns_new; /* CLONE_NEW* of namespaces created for the container */
	int ns_joins_mask;
	spec_ns_join *joins; /* namespaces joined by path */
	size_t njoins;
	spec_idmap *uidmap, *gidmap;
	size_t nuidmap, ngidmap;

	cg_limits limits; /* linux.resources: memory, cpu, cpuset, pids, blockIO, hugepages */
	cg_io_throttle *throttles; /* limits.throttles' storage */
	cg_hugepage *hugepages;    /* limits.hugepages' storage */
	/* memory.reservation: memory.low on v2, the soft limit on v1, as runc
	 * maps it (the layout is the runner's to know); CG_UNSET if absent */
	int64_t memory_reservation;
	char *cgroups_path;   /* NULL: the caller's default */
	json_t *seccomp;      /* linux.seccomp (borrowed), NULL when absent */
	json_t *device_rules; /* linux.resources.devices (borrowed) */
	char **masked, **readonly;
	size_t nmasked, nreadonly;
	spec_device *devices;
	size_t ndevices;
	spec_kv *sysctls;
	size_t nsysctls;
	unsigned long rootfs_propagation; /* MS_* | MS_REC; 0: default (rslave) */
	json_t *annotations;              /* borrowed object, may be NULL */
	spec_hook *hooks[SPEC_HOOK_KINDS];
	size_t nhooks[SPEC_HOOK_KINDS];

	char *warnings[SPEC_MAX_WARNINGS];
	int nwarnings;
} spec;

/* Read and check <bundle>/config.json. */
int spec_load(const char *bundle, spec **out, ms_err *err);
/* The same check on a parsed document (spec_load's second half; the fuzz
 * target's entry): root is taken over (freed with the spec, or on error),
 * bundle is an absolute directory relative paths resolve against (root.path
 * must name a directory there). *out NULL on error. */
int spec_from_json(json_t *root, const char *bundle, spec **out, ms_err *err);
/* Check a process object (an exec's --process file); jpath prefixes errors. */
int spec_parse_process(json_t *obj, const char *jpath, spec_process *out, ms_err *err);
void spec_process_free(spec_process *p);
/* A second process for s's container, as `exec` starts one: the
 * container's process (env, caps, rlimits, ...) with args, terminal tty,
 * and cwd and user ("UID[:GID]") when given. */
int spec_exec_process(const spec *s, char *const *args, int nargs, const char *cwd,
                      const char *user, bool tty, spec_process *out, ms_err *err);
void spec_free(spec *s);

/* Mount options ("ro", "nosuid", "bind", propagation, fs options) as
 * mount(2) flags and the fs data string. */
int spec_mount_options(const char *const *opts, size_t n, unsigned long *flags, char *data,
                       size_t datalen, ms_err *err);
/* An OCI LinuxResources object (Update): a spec with only limits,
 * memory_reservation and warnings set (strings borrowed from res: keep it
 * until done); NULL and err on a bad one. Free with spec_free. */
spec *spec_parse_resources(json_t *res, ms_err *err);
/* Add a warning (the runner's own, e.g. a field this host cannot apply). */
void spec_warn(spec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "createRuntime", ... : the config.json name of a hook kind. */
const char *spec_hook_name(spec_hook_kind k);

/* Signal name ("TERM", "SIGTERM") or number to a signal, -1 if unknown. */
int spec_signal_number(const char *name);

#endif
