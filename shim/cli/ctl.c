/*
 * ctl.c — the runc-like verbs on a container that `run` started:
 *   state ID                         its state as JSON (runc's fields)
 *   kill [--all] ID [SIG]            a signal to its init (or every process)
 *   exec [OPTIONS] ID [--] CMD...    one more process inside it
 *   ps [--format table|json] ID      its processes
 *   list [--format table|json]       every container under the root
 *   delete [--force] ID              its record, once it stopped
 * Each reads the record under --root and trusts a pid only with its start
 * time (state.h).
 */
#define _GNU_SOURCE
#include "commands.h"

#include "oci.h"
#include "base.h"
#include "state.h"
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long delete --force waits for the supervisor to clean up. */
#define DELETE_WAIT_MS 5000

/* Common parsing: global options, flags the verb declares, one ID, and
 * (for exec) the command after it. Unknown options are an error. */
typedef struct {
	const char *name;
	bool takes_value;
	const char **value; /* or NULL for a flag */
	bool *flag;
} verb_opt;

static int parse_verb(int argc, char **argv, const verb_opt *opts, const char **id, int *rest) {
	for (int i = 1; i < argc; i++) {
		if (cli_global_option(argc, argv, &i))
			continue;
		const char *a = argv[i];
		if (!strcmp(a, "--") && *id) {
			*rest = i + 1;
			return 0;
		}
		bool matched = false;
		for (const verb_opt *o = opts; o && o->name && !matched; o++) {
			if (strcmp(a, o->name))
				continue;
			matched = true;
			if (o->takes_value) {
				if (i + 1 >= argc) {
					fprintf(stderr, "moonshim %s: %s needs a value\n", argv[0],
					        a);
					return -1;
				}
				*o->value = argv[++i];
			} else {
				*o->flag = true;
			}
		}
		if (matched)
			continue;
		if (a[0] == '-' && a[1] && !*id) {
			fprintf(stderr, "moonshim %s: unknown option %s\n", argv[0], a);
			return -1;
		}
		if (!*id) {
			*id = a;
			continue;
		}
		if (rest) {
			*rest = i;
			return 0;
		}
		fprintf(stderr, "moonshim %s: unexpected argument \"%s\"\n", argv[0], a);
		return -1;
	}
	if (!*id && strcmp(argv[0], "list")) {
		fprintf(stderr, "moonshim %s: the container id is missing\n", argv[0]);
		return -1;
	}
	if (rest)
		*rest = argc;
	return 0;
}

/* Errors read the same from every verb: "moonshim: what was wrong". */
static int fail(const char *verb, const ms_err *e) {
	(void)verb;
	fprintf(stderr, "moonshim: %s\n", e->msg);
	return 1;
}

static json_t *state_json(const st_record *r) {
	const char *status = st_status(r);
	bool live = !strcmp(status, "running");
	return json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "ociVersion", "1.0.2", "id",
	                 r->id, "pid", live ? r->pid : 0, "status", status, "bundle", r->bundle,
	                 "rootfs", r->rootfs, "created", r->created, "owner", r->owner);
}

static void print_json(json_t *j) {
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (s)
		puts(s);
	free(s);
}

/* The record of a running container, or an error saying what it is. */
static int load_running(const char *id, st_record *r, ms_err *err) {
	if (st_read(g_cli.root, id, r, err))
		return err->code;
	const char *status = st_status(r);
	if (strcmp(status, "running"))
		return ms_fail(err, -ESRCH, "container \"%s\" is not running (%s)", id, status);
	return 0;
}

/* ─── state, list ───────────────────────────────────────────────────── */

int cmd_state(int argc, char **argv) {
	const char *id = NULL;
	ms_err err = {0};
	st_record r;
	if (parse_verb(argc, argv, NULL, &id, NULL))
		return 2;
	if (st_read(g_cli.root, id, &r, &err))
		return fail("state", &err);
	print_json(state_json(&r));
	return 0;
}

static void list_table(const st_record *r, void *arg) {
	const char *status = st_status(r);
	printf("%-12s %-8d %-10s %-40s %-32s %s\n", r->id, strcmp(status, "running") ? 0 : r->pid,
	       status, r->bundle, r->created, r->owner[0] ? r->owner : "root");
}

static void list_json(const st_record *r, void *arg) {
	json_array_append_new(arg, state_json(r));
}

int cmd_list(int argc, char **argv) {
	const char *format = "table", *id = NULL;
	bool quiet = false;
	verb_opt opts[] = {{"--format", true, &format, NULL},
	                   {"-f", true, &format, NULL},
	                   {"--quiet", false, NULL, &quiet},
	                   {"-q", false, NULL, &quiet},
	                   {0}};
	ms_err err = {0};
	if (parse_verb(argc, argv, opts, &id, NULL))
		return 2;
	if (!strcmp(format, "json")) {
		json_t *arr = json_array();
		if (st_list(g_cli.root, list_json, arr, &err)) {
			json_decref(arr);
			return fail("list", &err);
		}
		print_json(arr);
		return 0;
	}
	if (!quiet)
		printf("%-12s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE",
		       "CREATED", "OWNER");
	return st_list(g_cli.root, list_table, NULL, &err) ? fail("list", &err) : 0;
}

/* ─── kill ──────────────────────────────────────────────────────────── */

static int open_cgroup(const st_record *r, cg_host *h, cg **out, ms_err *err) {
	cg_err ce = {0};
	if (cg_host_detect(h, "/proc/self/mounts", &ce) ||
	    !(*out = cg_open(h, r->cgroup, false, &ce)))
		return ms_fail(err, ce.code ? ce.code : -EIO, "cgroup %s: %s", r->cgroup, ce.msg);
	return 0;
}

int cmd_kill(int argc, char **argv) {
	const char *id = NULL;
	bool all = false;
	int rest = 0;
	verb_opt opts[] = {{"--all", false, NULL, &all}, {"-a", false, NULL, &all}, {0}};
	ms_err err = {0};
	st_record r;
	if (parse_verb(argc, argv, opts, &id, &rest))
		return 2;
	const char *signame = rest < argc ? argv[rest] : "TERM";
	int sig = spec_signal_number(signame);
	if (sig < 0) {
		fprintf(stderr, "moonshim kill: unknown signal \"%s\"\n", signame);
		return 2;
	}
	if (load_running(id, &r, &err))
		return fail("kill", &err);
	if (all) {
		cg_host h;
		cg *c;
		cg_err ce = {0};
		if (open_cgroup(&r, &h, &c, &err))
			return fail("kill", &err);
		int rc = cg_kill(c, sig, &ce);
		cg_close(c);
		if (rc) {
			ms_fail(&err, rc, "%s", ce.msg);
			return fail("kill", &err);
		}
		return 0;
	}
	int pfd = (int)syscall(SYS_pidfd_open, r.pid, 0);
	/* the start time check after opening: the pidfd then names the right process */
	if (pfd < 0 || !ct_pid_running(r.pid, r.start_time)) {
		ms_fail(&err, -ESRCH, "container \"%s\" is not running", id);
		return fail("kill", &err);
	}
	int rc = (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0);
	int e = errno;
	close(pfd);
	if (rc < 0) {
		ms_fail(&err, -e, "signal %d to %d: %s", sig, r.pid, strerror(e));
		return fail("kill", &err);
	}
	return 0;
}

/* ─── ps ────────────────────────────────────────────────────────────── */

static void read_cmdline(pid_t pid, char *buf, size_t n) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len = fd >= 0 ? read(fd, buf, n - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (len <= 0) {
		snprintf(buf, n, "?");
		return;
	}
	buf[len] = 0;
	for (ssize_t i = 0; i < len - 1; i++)
		if (!buf[i])
			buf[i] = ' ';
}

int cmd_ps(int argc, char **argv) {
	const char *id = NULL, *format = "table";
	verb_opt opts[] = {{"--format", true, &format, NULL}, {"-f", true, &format, NULL}, {0}};
	ms_err err = {0};
	st_record r;
	cg_host h;
	cg *c;
	if (parse_verb(argc, argv, opts, &id, NULL))
		return 2;
	if (load_running(id, &r, &err) || open_cgroup(&r, &h, &c, &err))
		return fail("ps", &err);
	char procs[65536];
	cg_err ce = {0};
	ssize_t n = cg_read(c, "cgroup.procs", procs, sizeof procs, &ce);
	cg_close(c);
	if (n < 0) {
		ms_fail(&err, (int)n, "%s", ce.msg);
		return fail("ps", &err);
	}
	bool json = !strcmp(format, "json");
	json_t *arr = json_array();
	if (!json)
		printf("%-8s %s\n", "PID", "CMD");
	for (char *line = strtok(procs, "\n"); line; line = strtok(NULL, "\n")) {
		pid_t pid = atoi(line);
		if (json) {
			json_array_append_new(arr, json_integer(pid));
			continue;
		}
		char cmd[512];
		read_cmdline(pid, cmd, sizeof cmd);
		printf("%-8d %s\n", pid, cmd);
	}
	if (json)
		print_json(arr);
	else
		json_decref(arr);
	return 0;
}

/* ─── delete ────────────────────────────────────────────────────────── */

static bool alive(pid_t pid) {
	return pid > 0 && kill(pid, 0) == 0;
}

int cmd_delete(int argc, char **argv) {
	const char *id = NULL;
	bool force = false;
	verb_opt opts[] = {{"--force", false, NULL, &force}, {"-f", false, NULL, &force}, {0}};
	ms_err err = {0};
	st_record r;
	if (parse_verb(argc, argv, opts, &id, NULL))
		return 2;
	if (st_read(g_cli.root, id, &r, &err))
		return fail("delete", &err);
	bool running = !strcmp(st_status(&r), "running");
	if (running && !force) {
		ms_fail(&err, -EBUSY, "container \"%s\" is running: stop it first, or use --force",
		        id);
		return fail("delete", &err);
	}
	cg_host h;
	cg_err ce = {0};
	bool have_host = r.cgroup[0] && cg_host_detect(&h, "/proc/self/mounts", &ce) == 0;
	cg *c = have_host && running ? cg_open(&h, r.cgroup, false, &ce) : NULL;
	if (c) { /* stop it now; the supervisor then finishes its part */
		cg_kill(c, SIGKILL, &ce);
		cg_close(c);
	}
	/* the supervisor of a detached container records the exit and removes
	 * the cgroup; give it the chance, then do what it could not */
	for (int ms = 0; alive(r.supervisor) && r.supervisor != getpid() && ms < DELETE_WAIT_MS;
	     ms += 10)
		usleep(10000);
	if (have_host)
		ctcg_reap(&h, r.cgroup);
	st_remove(g_cli.root, id);
	return 0;
}

/* ─── exec ──────────────────────────────────────────────────────────── */

static char **strv_append(char **v, const char *s) {
	size_t n = 0;
	while (v && v[n])
		n++;
	char **nv = realloc(v, (n + 2) * sizeof *nv);
	if (!nv)
		abort();
	nv[n] = strdup(s);
	nv[n + 1] = NULL;
	return nv;
}

/* The exec'd process: --process FILE, or the container's process with
 * the command, env, cwd and user given on the command line. */
static int exec_process(const spec *s, const char *file, char **cmd, int ncmd, char **envs,
                        int nenv, const char *cwd, const char *user, bool tty, spec_process *p,
                        ms_err *err) {
	if (file) {
		json_t *j = jl_load_file(file, JSON_REJECT_DUPLICATES, err);
		if (!j)
			return err->code;
		int rc = spec_parse_process(j, "process", p, err);
		json_decref(j);
		return rc ? ms_wrap(err, "%s", file) : 0;
	}
	if (!ncmd)
		return ms_fail(err, -EINVAL,
		               "no command given (exec ID -- CMD..., or --process FILE)");
	int rc = spec_exec_process(s, cmd, ncmd, cwd, user, tty, p, err);
	for (int i = 0; !rc && i < nenv; i++)
		p->env = strv_append(p->env, envs[i]);
	return rc;
}

#define MAX_EXEC_ENV 64
#define EXEC_FAILED  255

int cmd_exec(int argc, char **argv) {
	const char *id = NULL, *file = NULL, *cwd = NULL, *user = NULL;
	bool detach = false, tty = false;
	char *envs[MAX_EXEC_ENV];
	int nenv = 0, rest = 0;
	/* --env repeats: pull those out first */
	char **av = calloc((size_t)argc + 1, sizeof *av);
	int ac = 0;
	for (int i = 0; i < argc; i++) {
		if ((!strcmp(argv[i], "--env") || !strcmp(argv[i], "-e")) && i + 1 < argc &&
		    nenv < MAX_EXEC_ENV) {
			envs[nenv++] = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--"))
			while (i < argc)
				av[ac++] = argv[i++];
		else
			av[ac++] = argv[i];
	}
	verb_opt opts[] = {{"--process", true, &file, NULL}, {"-p", true, &file, NULL},
	                   {"--cwd", true, &cwd, NULL},      {"--user", true, &user, NULL},
	                   {"-u", true, &user, NULL},        {"--detach", false, NULL, &detach},
	                   {"-d", false, NULL, &detach},     {"--tty", false, NULL, &tty},
	                   {"-t", false, NULL, &tty},        {0}};
	if (parse_verb(ac, av, opts, &id, &rest)) {
		free(av);
		return 2;
	}
	ms_err err = {0};
	st_record r;
	spec *s = NULL;
	spec_process p = {0};
	cg_host h;
	cg *c = NULL;
	/* like runc, exec answers 255 when it cannot start the process: its
	 * other statuses are the process's own */
	int status = EXEC_FAILED;
	if (load_running(id, &r, &err) || spec_load(r.bundle, &s, &err) ||
	    exec_process(s, file, av + rest, ac - rest, envs, nenv, cwd, user, tty, &p, &err) ||
	    open_cgroup(&r, &h, &c, &err))
		goto out;
	ct_opts o = {.host = &h,
	             .cgroup = c,
	             .cgroup_rel = r.cgroup,
	             .stdio = {-1, -1, -1},
	             .debug = g_cli.debug};
	ct_proc proc;
	/* v1 device rules live in their own hierarchy: join the container's there */
	ctcg view = {.host = h, .cgroup = c, .devices_set = true};
	snprintf(view.rel, sizeof view.rel, "%s", r.cgroup);
	o.before_start = ctcg_attach_devices;
	o.hook_arg = &view;
	sv_block_signals();
	if (ct_exec(s, &p, r.pid, &o, &proc, &err))
		goto out;
	if (detach) {
		printf("%d\n", proc.pid);
		status = 0;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	sv_opts so = {
	    .proc = &proc, .out_fd = -1, .err_fd = -1, .start_fd = -1, .debug = g_cli.debug};
	status = sv_supervise(&so);
	if (status < 0) { /* nobody would wait for it: it does not run on */
		ms_fail(&err, status, "supervising %d: the netpoller (epoll, eventfd): %s",
		        proc.pid, strerror(-status));
		syscall(SYS_pidfd_send_signal, proc.pidfd, SIGKILL, NULL, 0);
		waitpid(proc.pid, NULL, 0);
		status = EXEC_FAILED;
	}
out:
	if (err.msg[0])
		fail("exec", &err);
	spec_process_free(&p);
	spec_free(s);
	if (c)
		cg_close(c);
	free(av);
	return status;
}
