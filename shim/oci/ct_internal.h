/* ct_internal.h — what container.c shares with rootfs.c, process.c and
 * netlo.c; not part of the container module's interface. */
#ifndef MOONSHIM_CT_INTERNAL_H
#define MOONSHIM_CT_INTERNAL_H

#include <sys/capability.h>

#include "container.h"
#include "seccomp.h"

/* In the child, inside the new mount namespace: the spec's mounts, /dev,
 * pivot_root, sysctls, masked and read-only paths, the read-only root.
 * userns: the child is in a new user namespace (device nodes are bound
 * from the host, not created). idmount_fds[i]: for an idmapped mount i,
 * the detached mount the parent made (moved into place, then closed). */
int ct__rootfs_setup(const spec *s, const ct_opts *o, bool userns, int sync_fd, int *idmount_fds,
                     ms_err *err);

/* In the parent: /proc/PID/FILE (uid_map, gid_map) from n ranges; what
 * names the field for errors. */
int ct__write_idmap(pid_t pid, const char *file, const spec_idmap *m, size_t n, const char *what,
                    ms_err *err);

/* In the parent, the child's maps written: mount i of s (an idmapped bind)
 * as a detached clone of its source with MOUNT_ATTR_IDMAP set, through
 * the container's user namespace (the child pid's, or the one it joins)
 * or one made for the mount's own mappings. *fd gets it. */
int ct__idmount_open(const spec *s, size_t i, pid_t pid, int *fd, ms_err *err);

/* In the child, mounts made, before pivot_root: the parent's prestart and
 * createRuntime hooks (asked for over sync_fd, waited for), then the
 * createContainer ones here. */
int ct__create_hooks(const spec *s, const ct_opts *o, int sync_fd, ms_err *err);

/* In the child: open a pty in the container's /dev/pts, make its slave the
 * controlling terminal and stdio and /dev/console; *master gets the master. */
int ct__setup_terminal(int *master, bool bind_console, ms_err *err);

/* What the parent prepares for the last steps of a container process. */
typedef struct ct_final {
	const spec_process *p;
	const sc_program *seccomp;
	cap_t caps;   /* effective, permitted, inheritable of p */
	int start_fd; /* ct_opts.start_fd */
	int sync_fd;  /* the child's end of the handshake socket */
	/* ct_create's: the spec whose startContainer hooks run before execve,
	 * and the container's id; NULL for an exec */
	const spec *hooks;
	const char *id;
} ct_final;

/* In the child: tell the parent the process waits for its start. */
void ct__send_ready(int sync_fd);

int ct__final_prepare(const spec_process *p, const sc_program *sc, ct_final *f, ms_err *err);
void ct__final_release(ct_final *f);
/* In the child: rlimits, user and groups, capabilities, no_new_privs,
 * seccomp, every fd but 0-2 marked close-on-exec, execve. Returns only on
 * failure. */
int ct__final_exec(const ct_final *f, ms_err *err);

/* In the child: bring up lo in its network namespace (libnl). */
int ct__loopback_up(ms_err *err);

#endif
