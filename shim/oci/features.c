/*
 * features.c — the OCI runtime features moonshim has (features.h): one
 * table of what is supported, turned into the runtime-spec features JSON.
 * Must stay true: an entry is listed only when spec.c parses it and the
 * container gets it; tests/containerd/features_test.c loads every listed
 * mount option and namespace through spec_from_json. containerd 2.x asks
 * for mountExtensions.idmap before it creates a container with idmapped
 * mounts (and refuses one without it).
 */
#define _GNU_SOURCE
#include "features.h"

#include <seccomp.h>
#include <stddef.h>

#define OCI_VERSION_MIN "1.0.0"
#define OCI_VERSION_MAX "1.2.1"

/* hooks.c runs every kind, at the points runc runs them */
static const char *const hooks[] = {
    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
    NULL};
/* idmapped mounts (mounts[].uidMappings, "idmap"/"ridmap"): idmount.c */
static const bool idmap_mounts = true;
/* recursive read-only ("rro"): rootfs.c, mount_setattr after the mount;
 * containerd's CRI offers it (RecursiveReadOnlyMounts) when it is listed
 * here and the kernel is 5.12 or later */

/* spec.c's mount_opts and prop_opts tables, bind/rbind, idmap/ridmap, rro, and tmpcopyup
 * (accepted with a warning: the tmpfs starts empty, so it is not listed) */
static const char *const mount_options[] = {"ro",          "rw",
                                            "nosuid",      "suid",
                                            "nodev",       "dev",
                                            "noexec",      "exec",
                                            "sync",        "async",
                                            "dirsync",     "remount",
                                            "mand",        "nomand",
                                            "atime",       "noatime",
                                            "diratime",    "nodiratime",
                                            "relatime",    "norelatime",
                                            "strictatime", "nostrictatime",
                                            "lazytime",    "nolazytime",
                                            "silent",      "loud",
                                            "private",     "rprivate",
                                            "shared",      "rshared",
                                            "slave",       "rslave",
                                            "unbindable",  "runbindable",
                                            "bind",        "rbind",
                                            "idmap",       "ridmap",
                                            "rro",         NULL};

/* spec.c's ns_flag table */
static const char *const namespaces[] = {"cgroup", "ipc",  "mount", "network", "pid",
                                         "time",   "user", "uts",   NULL};

/* seccomp.c's action and operator tables (SCMP_ACT_NOTIFY is refused) */
static const char *const seccomp_actions[] = {
    "SCMP_ACT_ALLOW",        "SCMP_ACT_ERRNO",       "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",        "SCMP_ACT_TRAP",        NULL};
static const char *const seccomp_operators[] = {"SCMP_CMP_EQ",        "SCMP_CMP_GE", "SCMP_CMP_GT",
                                                "SCMP_CMP_LE",        "SCMP_CMP_LT", "SCMP_CMP_NE",
                                                "SCMP_CMP_MASKED_EQ", NULL};
/* the spec's architecture names; listed when libseccomp resolves them
 * (seccomp.c maps SCMP_ARCH_X to libseccomp's "x" the same way) */
static const char *const seccomp_archs[][2] = {{"SCMP_ARCH_X86", "x86"},
                                               {"SCMP_ARCH_X86_64", "x86_64"},
                                               {"SCMP_ARCH_X32", "x32"},
                                               {"SCMP_ARCH_ARM", "arm"},
                                               {"SCMP_ARCH_AARCH64", "aarch64"},
                                               {"SCMP_ARCH_MIPS", "mips"},
                                               {"SCMP_ARCH_MIPS64", "mips64"},
                                               {"SCMP_ARCH_MIPS64N32", "mips64n32"},
                                               {"SCMP_ARCH_MIPSEL", "mipsel"},
                                               {"SCMP_ARCH_MIPSEL64", "mipsel64"},
                                               {"SCMP_ARCH_MIPSEL64N32", "mipsel64n32"},
                                               {"SCMP_ARCH_PPC", "ppc"},
                                               {"SCMP_ARCH_PPC64", "ppc64"},
                                               {"SCMP_ARCH_PPC64LE", "ppc64le"},
                                               {"SCMP_ARCH_S390", "s390"},
                                               {"SCMP_ARCH_S390X", "s390x"},
                                               {"SCMP_ARCH_RISCV64", "riscv64"}};

static json_t *strings(const char *const *v) {
	json_t *a = json_array();
	for (; a && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *archs(void) {
	json_t *a = json_array();
	for (size_t i = 0; a && i < sizeof seccomp_archs / sizeof *seccomp_archs; i++)
		if (seccomp_arch_resolve_name(seccomp_archs[i][1]))
			json_array_append_new(a, json_string(seccomp_archs[i][0]));
	return a;
}

json_t *oci_features(void) {
	json_t *seccomp =
	    json_pack("{s:b, s:o, s:o, s:o}", "enabled", true, "actions", strings(seccomp_actions),
	              "operators", strings(seccomp_operators), "archs", archs());
	/* cgroup v1, v2 and hybrid hosts (cgroup/); no systemd driver */
	json_t *linux_ = json_pack(
	    "{s:o, s:{s:b, s:b, s:b, s:b}, s:o*, s:{s:b}, s:{s:b}, s:{s:{s:b}}}", "namespaces",
	    strings(namespaces), "cgroup", "v1", true, "v2", true, "systemd", false, "systemdUser",
	    false, "seccomp", seccomp, "apparmor", "enabled", false, "selinux", "enabled", false,
	    "mountExtensions", "idmap", "enabled", idmap_mounts);
	return json_pack("{s:s, s:s, s:o, s:o, s:o*}", "ociVersionMin", OCI_VERSION_MIN,
	                 "ociVersionMax", OCI_VERSION_MAX, "hooks", strings(hooks), "mountOptions",
	                 strings(mount_options), "linux", linux_);
}
