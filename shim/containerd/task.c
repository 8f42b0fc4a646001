/*
 * task.c — containerd.task.v2.Task: each method as a ttrpc handler.
 *
 * A task is a container: its spec, cgroup, rootfs mounts and processes —
 * init (exec_id "") and execs. Processes are created by a helper forked
 * from this multi-threaded shim (container.h needs a single-threaded
 * caller), with CLONE_PARENT so the shim is their parent. Each process is
 * supervised by an sv (supervise.h), the same supervisor `moonshim run`
 * uses: for init the exit waiter, the cgroup watcher, the Lua world
 * (io.moonshim.* annotations, else the built-in default policy), the Go
 * watch and tap, events to the shim's log; for an exec its exit waiter.
 * The health, policy.action, go.* and error events of that log are also
 * published to containerd on topics of their own (tell_event, an observer
 * of the log that only queues). Here is only what containerd adds: stdio from its URIs (a pty
 * relayed to its FIFOs; a non-tty exec's stdout and stderr copied to its FIFOs through pipes, so
 * that the exec's exit ends its streams even while a child it left in the background holds the
 * pipes), TaskOOM (before TaskExit) and TaskExit once the sv is done, no restarts. Create leaves
 * init held before its execve; Start releases it. Every handler runs in
 * its own goroutine; the task list and each task are guarded by one
 * lock, never held while a handler waits.
 * A container's Delete tears it down (cgroup emptied, poststop hooks,
 * rootfs unmounted, cgroup removed) while it is still listed, marked
 * deleting: State answers it, stopped, and nothing else sees it; it is
 * unlinked just before Delete replies. So State never says "not found"
 * before Delete has answered, as with runc's shim: containerd's CRI takes
 * a task it cannot find for one with nothing to stop, while its own exit
 * handler (waiting in that Delete) has not yet marked the container
 * exited, and RemoveContainer then fails ("container is still running").
 */
#define _GNU_SOURCE
#include "task.h"

#include "binlog.h"
#include "metrics.h"
#include "oci.h"
#include "io.h"
#include "forkhelper.h"
#include "gowatch.h"
#include "base.h"
#include "supervise.h"

#include "containerd/events.pb-c.h"
#include "containerd/task.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TASK_SERVICE "containerd.task.v2.Task"
#define ID_MAX       256
/* the Lua scripts from annotations (a path to a script, or the script),
 * else the shim-wide defaults */
#define CHECKS_ANNOTATION "io.moonshim.checks"
#define POLICY_ANNOTATION "io.moonshim.policy"
#define DEFAULT_CHECKS    "/etc/moonshim/checks.lua"
#define DEFAULT_POLICY    "/etc/moonshim/policy.lua"
/* The type containerd's Exec sends the process in (JSON). */
#define PROCESS_TYPE "types.containerd.io/opencontainers/runtime-spec/1/Process"
/* a spec field not applied, told to containerd (tell_warnings) */
#define WARNING_TOPIC "/moonshim/warning"
#define UPDATE_TYPE   "containerd.events.ContainerUpdate"
#define WARNING_LABEL "io.moonshim.warning"
/* the supervisor's events told to containerd (tell_event), by type */
#define HEALTH_TOPIC "/moonshim/health" /* "health" */
#define POLICY_TOPIC "/moonshim/policy" /* "policy.action" */
#define GO_TOPIC     "/moonshim/go"     /* "go.*" */
#define ERROR_TOPIC  "/moonshim/error"  /* "error" */
#define EVENT_LABEL  "io.moonshim"      /* labels io.moonshim.<field>[.<field>] */
#define LABELS_MAX   32                 /* an event's labels: the rest are left out */
#define LABEL_KEY    128                /* a longer key is left out */
#define LABEL_VALUE  1024               /* a longer value is cut (on a UTF-8 boundary) */
#define LABEL_DEPTH  2                  /* objects in the event flattened this deep */
#define PIDS_BUF     (256 * 1024)       /* cgroup.procs of a container */
#define MAX_PIDS     16384
#define COPY_BUF     (32 * 1024)   /* an exec stream's copy buffer */
#define DRAIN_MAX    (1024 * 1024) /* taken from its pipe after the exec's exit */

/* A non-tty exec's stdout or stderr: the process writes a pipe (from) that
 * a goroutine copies to containerd's FIFO (to). At the exec's exit the
 * copier is evicted, takes what is left in the pipe without waiting and
 * the FIFO is closed: containerd's ExecSync sees EOF then, not when the
 * last background child holding the pipe goes (kubernetes#92057). */
typedef struct exec_copy {
	int from, to;
	rt_pollfd *pd; /* from's, owned by the exit waiter (copies_stop) */
	char *buf;
	rt_waitgroup *wg;
} exec_copy;

typedef struct proc {
	char exec_id[ID_MAX]; /* "" for init */
	pid_t pid;
	int pidfd;
	bool started, exited;
	int status;
	struct timespec exited_at;
	rt_chan *done; /* closed at the exit */
	char *io[3];   /* stdin, stdout, stderr URIs as containerd gave them */
	bool terminal;
	int pty_master;
	int relay_fds[2];  /* the stdin and stdout fds a pty relay uses */
	exec_copy copy[2]; /* a non-tty exec's stdout and stderr (from -1: none) */
	rt_waitgroup copies;
	ct_proc cp;        /* pid, pidfd, pty_master for its sv */
	sv *sv;            /* its supervision, once started */
	spec_process exec; /* an exec's process, until started */
	struct proc *next;
} proc;

typedef struct task {
	char id[ID_MAX];
	char bundle[PATH_MAX];
	spec *s;
	ctcg cg;
	bool rootfs_mounted;
	int start_fd; /* init is held until a byte arrives; -1 once started */
	bool paused;
	bool deleting; /* in Delete's teardown: only State (and Create's id check) sees it */
	proc init;
	proc *execs;
	task_service *svc;
	int64_t oom_kills_told; /* OOM kills published (under the service lock) */
	ev_log *log;            /* the shim's log (stderr) for this container's events */
	pb *pub;                /* its published state (publish.h), or NULL */
	ct_opts create;         /* how scripts exec in it (exec.container) */
	/* the annotations' scripts: a file, or Lua text */
	const char *policy_file, *policy_src, *checks_file, *checks_src;
	/* io.moonshim.go.*: the init's stderr through a tap to its FIFO */
	bool go_on;
	gw_opts go_opts;
	int go_sink;     /* the stderr FIFO, the tap's sink, until its sv has it; -1 */
	rt_waitgroup wg; /* the task's goroutines (its processes' waiters) */
	struct task *next;
} task;

struct task_service {
	task_opts o;
	rt_mutex mu;
	task *tasks;
};

/* ─── small helpers ─────────────────────────────────────────────────── */

static int reply(const ProtobufCMessage *m, uint8_t **out, size_t *out_len) {
	size_t n = protobuf_c_message_get_packed_size(m);
	*out = n ? malloc(n) : NULL;
	if (n && !*out)
		return TT_RESOURCE_EXHAUSTED;
	if (n)
		protobuf_c_message_pack(m, *out);
	*out_len = n;
	return TT_OK;
}

static void *unpack(const ProtobufCMessageDescriptor *d, tt_call *c) {
	return protobuf_c_message_unpack(d, NULL, c->len, c->payload);
}

static void ts_now(struct timespec *t) {
	clock_gettime(CLOCK_REALTIME, t);
}

static Google__Protobuf__Timestamp ts_proto(const struct timespec *t) {
	Google__Protobuf__Timestamp p = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	p.seconds = t->tv_sec;
	p.nanos = (int32_t)t->tv_nsec;
	return p;
}

static void publish(task_service *t, const char *topic, const char *type_url,
                    const ProtobufCMessage *m) {
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return;
	protobuf_c_message_pack(m, buf);
	if (t->o.publish)
		t->o.publish(t->o.publish_arg, topic, type_url, buf, n);
	free(buf);
}

/* What the spec asked for that moonshim did not apply (warnings from
 * parsing and from the cgroup): one line each in the shim's log, which in
 * containerd mode is the bundle's log FIFO containerd copies into its own
 * log, and one WARNING_TOPIC event each: a containerd.events.ContainerUpdate
 * (a type ctr 1.6 to 2.4 decode; google.protobuf.StringValue is unknown to
 * ctr 2.4, which drops the event) with the container's id and the text as
 * label WARNING_LABEL. Consumers pick events by topic (the CRI plugin takes
 * /tasks/ and /images/ ones), so none mistakes it for a container update. */
static void tell_warnings(task_service *t, const char *id, const spec *s, int from) {
	for (int i = from; i < s->nwarnings; i++) {
		fprintf(stderr, "moonshim: warning: container %s: %s\n", id, s->warnings[i]);
		Containerd__Events__ContainerUpdate__LabelsEntry label =
		    CONTAINERD__EVENTS__CONTAINER_UPDATE__LABELS_ENTRY__INIT;
		label.key = WARNING_LABEL;
		label.value = s->warnings[i];
		Containerd__Events__ContainerUpdate__LabelsEntry *labels[] = {&label};
		Containerd__Events__ContainerUpdate ev = CONTAINERD__EVENTS__CONTAINER_UPDATE__INIT;
		ev.id = (char *)id;
		ev.n_labels = 1, ev.labels = labels;
		publish(t, WARNING_TOPIC, UPDATE_TYPE, &ev.base);
	}
}

/* An event's fields as ContainerUpdate labels. */
typedef struct {
	Containerd__Events__ContainerUpdate__LabelsEntry e[LABELS_MAX];
	Containerd__Events__ContainerUpdate__LabelsEntry *p[LABELS_MAX];
	char keys[LABELS_MAX][LABEL_KEY];
	char values[LABELS_MAX][LABEL_VALUE + 1];
	size_t n;
} event_labels;

/* The label key.name = v, when v is a scalar (null and arrays are left out). */
static void add_label(event_labels *l, const char *key, json_t *v) {
	char *val = l->values[l->n];
	switch (json_typeof(v)) {
	case JSON_STRING: {
		size_t n = json_string_length(v);
		if (n > LABEL_VALUE) /* back to the first byte of a character */
			for (n = LABEL_VALUE; n && (json_string_value(v)[n] & 0xC0) == 0x80;)
				n--;
		memcpy(val, json_string_value(v), n);
		val[n] = 0;
		break;
	}
	case JSON_INTEGER:
		snprintf(val, LABEL_VALUE, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(val, LABEL_VALUE, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(val, LABEL_VALUE, "%s", json_is_true(v) ? "true" : "false");
		break;
	default:
		return;
	}
	snprintf(l->keys[l->n], LABEL_KEY, "%s", key);
	Containerd__Events__ContainerUpdate__LabelsEntry *e = &l->e[l->n];
	*e = (Containerd__Events__ContainerUpdate__LabelsEntry)
	    CONTAINERD__EVENTS__CONTAINER_UPDATE__LABELS_ENTRY__INIT;
	e->key = l->keys[l->n];
	e->value = val;
	l->p[l->n] = e;
	l->n++;
}

/* obj's fields under prefix, objects flattened to depth LABEL_DEPTH. */
static void add_labels(event_labels *l, const char *prefix, json_t *obj, int depth) {
	const char *name;
	json_t *v;
	json_object_foreach(obj, name, v) {
		char key[LABEL_KEY];
		if (l->n == LABELS_MAX)
			return;
		if ((depth == 0 && !strcmp(name, "id")) || /* the update's own id */
		    snprintf(key, sizeof key, "%s.%s", prefix, name) >= (int)sizeof key)
			continue;
		if (json_is_object(v) && depth + 1 < LABEL_DEPTH)
			add_labels(l, key, v, depth + 1);
		else
			add_label(l, key, v);
	}
}

static const char *event_topic(const char *type) {
	return !strcmp(type, "health")          ? HEALTH_TOPIC
	       : !strcmp(type, "policy.action") ? POLICY_TOPIC
	       : !strncmp(type, "go.", 3)       ? GO_TOPIC
	       : !strcmp(type, "error")         ? ERROR_TOPIC
	                                        : NULL;
}

/* An observer of a task's event log (ev_observe): health changes, policy
 * actions, Go-watch findings and errors also go to containerd, each as a
 * containerd.events.ContainerUpdate (a type `ctr events` decodes, as
 * tell_warnings' are) with the container's id and the event's fields as
 * labels io.moonshim.<field> (scalars; objects flattened one level:
 * io.moonshim.<field>.<field>; bounded: LABELS_MAX, LABEL_KEY, LABEL_VALUE),
 * on a topic of its own. It runs under the log's lock: publish only
 * queues (the shim's 1024-deep event queue, the oldest dropped when
 * containerd is away long), it never waits on containerd. */
static void tell_event(void *arg, const char *type, json_t *event, const char *line, size_t len) {
	task_service *t = arg;
	const char *topic = event_topic(type);
	event_labels *l = topic ? calloc(1, sizeof *l) : NULL;
	if (!l)
		return;
	add_labels(l, EVENT_LABEL, event, 0);
	Containerd__Events__ContainerUpdate ev = CONTAINERD__EVENTS__CONTAINER_UPDATE__INIT;
	ev.id = (char *)json_string_value(json_object_get(event, "id"));
	ev.n_labels = l->n, ev.labels = l->p;
	if (ev.id)
		publish(t, topic, UPDATE_TYPE, &ev.base);
	free(l);
}

/* Under t->mu: container id, also while Delete tears it down. */
static task *find_listed(task_service *t, const char *id) {
	for (task *k = t->tasks; k; k = k->next)
		if (!strcmp(k->id, id))
			return k;
	return NULL;
}

/* Under t->mu: container id, unless Delete is tearing it down. */
static task *find_task(task_service *t, const char *id) {
	task *k = find_listed(t, id);
	return k && !k->deleting ? k : NULL;
}

static proc *find_proc(task *k, const char *exec_id) {
	if (!exec_id || !*exec_id)
		return &k->init;
	for (proc *p = k->execs; p; p = p->next)
		if (!strcmp(p->exec_id, exec_id))
			return p;
	return NULL;
}

/* Under t->mu: the process exec_id ("": init) of container id. */
static proc *lookup(task_service *t, const char *id, const char *exec_id, task **k) {
	*k = find_task(t, id);
	return *k ? find_proc(*k, exec_id) : NULL;
}

/* An id must fit where we keep it: cut, two ids could become one (containerd
 * itself allows 76 bytes). TT_OK, or INVALID_ARGUMENT without quoting it. */
static int id_fits(char **msg, const char *what, const char *id) {
	size_t n = strlen(id);
	return n < ID_MAX ? TT_OK
	                  : tt_fail(msg, TT_INVALID_ARGUMENT, "%s of %zu bytes: at most %d", what,
	                            n, ID_MAX - 1);
}

static int not_found(char **msg, const char *id, const char *exec_id) {
	return exec_id && *exec_id
	           ? tt_fail(msg, TT_NOT_FOUND, "process %s of container %s not found", exec_id, id)
	           : tt_fail(msg, TT_NOT_FOUND, "container %s not created", id);
}

/* The number of containers it holds (Shutdown refuses while there are). */
static int task_count(task_service *t) {
	rt_mutex_lock(&t->mu);
	int n = 0;
	for (task *k = t->tasks; k; k = k->next)
		n++;
	rt_mutex_unlock(&t->mu);
	return n;
}

/* ─── stdio ─────────────────────────────────────────────────────────── */

/* containerd's stdio URIs: "" (none), a FIFO path ("fifo://" optional),
 * "file:///path" (binary:// is binlog.c's). FIFOs are opened so that
 * opening never blocks: stdout and stderr read-write (the container is then
 * a writer of its own, and the reader sees EOF when the container's copies
 * close), stdin read-only. */
static int open_stdio(const char *uri, int which, int *fd, ms_err *err) {
	*fd = -1;
	if (!uri || !*uri) {
		*fd = open("/dev/null", (which ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
		return *fd < 0 ? ms_fail(err, -errno, "/dev/null: %s", strerror(errno)) : 0;
	}
	const char *path = uri;
	if (!strncmp(uri, "fifo://", 7))
		path = uri + 7;
	else if (!strncmp(uri, "file://", 7)) {
		path = uri + 7;
		*fd = open(path,
		           which ? O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC,
		           0640);
		return *fd < 0 ? ms_fail(err, -errno, "%s: %s", uri, strerror(errno)) : 0;
	} else if (strstr(uri, "://"))
		return ms_fail(err, -ENOTSUP,
		               "stdio \"%s\": FIFO paths, file:// and binary:// are supported",
		               uri);
	*fd = open(path, (which ? O_RDWR : O_RDONLY | O_NONBLOCK) | O_CLOEXEC);
	if (*fd < 0)
		return ms_fail(err, -errno, "%s: %s", path, strerror(errno));
	if (!which) /* the container reads stdin blocking */
		fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK);
	return 0;
}

static void close_fds(int *fds, int n) {
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* ─── --go-watch from annotations ──────────────────────────────────── */

#define GO_ANNOTATION_PREFIX "io.moonshim.go."

/* io.moonshim.go.schedtrace=MS, .pprof=URL, .gctrace=1 (and .interval,
 * .debug2, .maxprocs, .stderr=blocking|non-blocking, .stderr-buffer=SIZE):
 * the same options as `run --go-watch`. */
static int go_annotations(task *k, ms_err *err) {
	k->go_sink = -1;
	gw_opts_init(&k->go_opts);
	if (k->svc->o.no_go_watch) /* the runtime options' go_watch = false */
		return 0;
	const char *key;
	json_t *v;
	json_object_foreach(k->s->annotations, key, v) {
		if (strncmp(key, GO_ANNOTATION_PREFIX, strlen(GO_ANNOTATION_PREFIX)) ||
		    !json_is_string(v))
			continue;
		if (gw_parse_one(key + strlen(GO_ANNOTATION_PREFIX), json_string_value(v),
		                 &k->go_opts, err))
			return ms_wrap(err, "annotation %s", key);
		k->go_on = true;
	}
	if (!k->go_on)
		return 0;
	if (k->s->process.terminal)
		return ms_fail(err, -EINVAL,
		               "io.moonshim.go.*: the program's stderr is read, which a terminal "
		               "merges into the pty: not both");
	char **env = gw_env(k->s->process.env, &k->go_opts, cg_limits_cpu_cores(&k->s->limits));
	if (!env)
		return ms_fail(err, -ENOMEM, "io.moonshim.go.*: out of memory");
	k->s->process.env = env;
	return 0;
}

/* ─── a non-tty exec's streams ──────────────────────────────────────── */

/* All of buf to the FIFO (blocking: containerd reads it); a reader gone
 * (EPIPE, SIGPIPE ignored) drops the rest. */
static void copy_out(int fd, const char *buf, ssize_t n) {
	rt_syscall_enter();
	while (n > 0) {
		ssize_t w = write(fd, buf, (size_t)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		buf += w;
		n -= w;
	}
	rt_syscall_exit();
}

/* Copies until EOF or the eviction at the exec's exit, then takes what
 * the pipe holds without waiting (bounded: a background child may go on
 * writing). */
static void copier(void *arg) {
	exec_copy *c = arg;
	ssize_t n;
	while ((n = rt_read(c->pd, c->buf, COPY_BUF, RT_FOREVER)) > 0)
		copy_out(c->to, c->buf, n);
	for (size_t left = DRAIN_MAX; left && (n = read(c->from, c->buf, COPY_BUF)) > 0;) {
		copy_out(c->to, c->buf, n);
		left = (size_t)n >= left ? 0 : left - (size_t)n;
	}
	rt_wg_done(c->wg);
}

/* End p's copies (after its exit, or when it never ran): the FIFOs close,
 * which is containerd's EOF. */
static void copies_stop(proc *p) {
	for (int i = 0; i < 2; i++)
		if (p->copy[i].pd)
			rt_poll_evict(p->copy[i].pd);
	rt_wg_wait(&p->copies);
	for (int i = 0; i < 2; i++) {
		exec_copy *c = &p->copy[i];
		if (c->pd)
			rt_poll_close(c->pd);
		c->pd = NULL;
		free(c->buf);
		c->buf = NULL;
		close_fds(&c->from, 1);
		close_fds(&c->to, 1);
	}
}

/* A non-tty exec: each of its stdout and stderr that is a FIFO (fds[1],
 * fds[2]) becomes a copy's sink, and fds[i] the write end of the copy's
 * pipe. On failure the copies are undone (fds stay the caller's). */
static int copies_prepare(proc *p, int fds[3], ms_err *err) {
	for (int i = 1; i < 3; i++) {
		struct stat st;
		if (fstat(fds[i], &st) || !S_ISFIFO(st.st_mode))
			continue; /* /dev/null or a file: no reader waits for its EOF */
		exec_copy *c = &p->copy[i - 1];
		int pp[2], perr = 0;
		if (pipe2(pp, O_CLOEXEC) < 0) {
			ms_fail(err, -errno, "exec stdio pipe: %s", strerror(errno));
			copies_stop(p);
			return err->code;
		}
		c->to = fds[i];
		c->from = pp[0];
		fds[i] = pp[1];
		fcntl(c->from, F_SETFL, fcntl(c->from, F_GETFL) | O_NONBLOCK);
		if (!(c->buf = malloc(COPY_BUF)) || !(c->pd = rt_poll_open(c->from, &perr))) {
			perr = perr ? perr : -ENOMEM;
			ms_fail(err, perr, "exec stdio copy: %s", strerror(-perr));
			copies_stop(p);
			return err->code;
		}
	}
	return 0;
}

static void copies_start(proc *p) {
	for (int i = 0; i < 2; i++)
		if (p->copy[i].pd) {
			rt_wg_add(&p->copies, 1);
			rt_go(copier, &p->copy[i], "exec stream copy");
		}
}

/* ─── exits ─────────────────────────────────────────────────────────── */

typedef struct {
	task_service *t;
	task *k;
	proc *p;
} exit_ctx;

/* Once p's sv is done (its exit, the relay and tap drained, the policies
 * through, its last memory events told: TaskOOM first): TaskExit. */
static void proc_waiter(void *arg) {
	exit_ctx *x = arg;
	proc *p = x->p;
	int status = sv_wait(p->sv);
	close_fds(p->relay_fds, 2); /* the relay is done: the FIFOs' EOF */
	copies_stop(p);             /* likewise for a non-tty exec's streams */
	rt_mutex_lock(&x->t->mu);
	p->status = status;
	ts_now(&p->exited_at);
	p->exited = true;
	rt_mutex_unlock(&x->t->mu);
	Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Google__Protobuf__Timestamp at = ts_proto(&p->exited_at);
	ev.container_id = x->k->id;
	ev.id = p->exec_id[0] ? p->exec_id : x->k->id;
	ev.pid = (uint32_t)p->pid;
	ev.exit_status = (uint32_t)p->status;
	ev.exited_at = &at;
	publish(x->t, "/tasks/exit", "containerd.events.TaskExit", &ev.base);
	rt_chan_close(p->done);
	rt_wg_done(&x->k->wg);
	free(x);
}

/* Publish /tasks/oom if the cgroup counted an OOM kill not yet told: on
 * the init's memory events, the sv's last look at its exit included. */
static void tell_oom(task_service *t, task *k, int64_t kills) {
	rt_mutex_lock(&t->mu);
	bool news = kills > k->oom_kills_told;
	if (news)
		k->oom_kills_told = kills;
	rt_mutex_unlock(&t->mu);
	if (!news)
		return;
	Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
	ev.container_id = k->id;
	publish(t, "/tasks/oom", "containerd.events.TaskOOM", &ev.base);
}

/* sv_opts.on_cgroup of an init's sv. */
static void cgroup_event(void *arg, const cg_event *e) {
	task *k = arg;
	if (e->kind == CG_EV_MEMORY)
		tell_oom(k->svc, k, e->mem.total.oom_kill + e->mem.total.oom_group_kill);
}

/* An annotation's script: a path to a file, or Lua text; else the default
 * file when it exists. */
static void pick_script(const spec *s, const char *annotation, const char *fallback,
                        const char **file, const char **src) {
	const char *v = json_string_value(json_object_get(s->annotations, annotation));
	struct stat st;
	*file = *src = NULL;
	if (v && v[0] == '/' && !strchr(v, '\n') && stat(v, &st) == 0)
		*file = v;
	else if (v)
		*src = v;
	else if (stat(fallback, &st) == 0)
		*file = fallback;
}

/* p was created (pid, pty_master): supervise it. For init the whole of
 * it (go_err: the read end of its stderr pipe for the tap, or -1); for an
 * exec its exit and relay. On failure nothing started and the caller's
 * fds are still its own. */
static int supervise_proc(task_service *t, task *k, proc *p, int go_err, ms_err *err) {
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0)
		return ms_fail(err, -errno, "pidfd_open %d: %s", p->pid, strerror(errno));
	p->cp = (ct_proc){.pid = p->pid, .pidfd = p->pidfd, .pty_master = p->pty_master};
	sv_opts o = {.proc = &p->cp,
	             .out_fd = -1,
	             .err_fd = -1,
	             .go_err_fd = -1,
	             .go_sink_fd = -1,
	             .start_fd = -1, /* Start releases init */
	             .debug = t->o.debug,
	             .name = k->id,
	             .relay = p->pty_master >= 0 ? p->relay_fds : NULL};
	bool init = p == &k->init;
	if (init) {
		o.cgroup = k->cg.cgroup;
		o.reap_cgroup = true;
		o.events = k->log;
		o.spec = k->s;
		o.create = &k->create;
		o.go = k->go_on ? &k->go_opts : NULL;
		o.go_err_fd = go_err;
		o.go_sink_fd = k->go_sink;
		o.on_cgroup = cgroup_event;
		o.on_cgroup_arg = k;
		o.policies = &k->policy_file;
		o.npolicies = k->policy_file ? 1 : 0;
		o.policy_name = POLICY_ANNOTATION;
		o.policy_src = k->policy_src;
		o.checks = &k->checks_file;
		o.nchecks = k->checks_file ? 1 : 0;
		o.check_name = CHECKS_ANNOTATION;
		o.check_src = k->checks_src;
		o.publish = k->pub;
	}
	exit_ctx *x = malloc(sizeof *x);
	if (!x || sv_start(&o, &p->sv, err)) {
		int rc = x ? err->code : ms_fail(err, -ENOMEM, "out of memory");
		free(x);
		close(p->pidfd);
		p->pidfd = -1;
		return rc;
	}
	if (init)
		k->go_sink = -1; /* the sv's: closed after the tap */
	*x = (exit_ctx){t, k, p};
	rt_wg_add(&k->wg, 1);
	rt_go(proc_waiter, x, "task exit waiter");
	return 0;
}

/* ─── Create ────────────────────────────────────────────────────────── */

/* containerd's rootfs mounts (overlay layers, a bind) onto <bundle>/rootfs. */
static int mount_rootfs(task *k, Containerd__Task__V2__CreateTaskRequest *r, ms_err *err) {
	char target[PATH_MAX + 16];
	snprintf(target, sizeof target, "%s/rootfs", k->bundle);
	for (size_t i = 0; i < r->n_rootfs; i++) {
		Containerd__Types__Mount *m = r->rootfs[i];
		unsigned long flags = 0;
		char data[4096];
		if (spec_mount_options((const char *const *)m->options, m->n_options, &flags, data,
		                       sizeof data, err))
			return ms_wrap(err, "rootfs[%zu]", i);
		const char *type = m->type && *m->type ? m->type : NULL;
		if (mount(m->source, target, (flags & MS_BIND) ? NULL : type, flags,
		          data[0] ? data : NULL) < 0)
			return ms_fail(err, -errno, "rootfs[%zu]: mount %s (%s) on %s: %s", i,
			               m->source, m->type, target, strerror(errno));
		k->rootfs_mounted = true;
	}
	return 0;
}

/* What the task holds outside its memory: fds, the log, the rootfs mount,
 * the cgroup, the svs. What State reads (ids, bundle, the processes' pids,
 * statuses and stdio URIs) stays. */
static void release_task(task *k) {
	if (k->go_sink >= 0)
		close(k->go_sink);
	k->go_sink = -1;
	ev_close(k->log);
	k->log = NULL;
	pb_close(k->pub, true); /* its series go away with it */
	k->pub = NULL;
	/* the unmount and the rmdirs (each retried a while on EBUSY) can take
	 * long: the shim's one P goes to the other handlers (State) meanwhile */
	rt_syscall_enter();
	if (k->rootfs_mounted) {
		char target[PATH_MAX + 16];
		snprintf(target, sizeof target, "%s/rootfs", k->bundle);
		umount2(target, MNT_DETACH);
		k->rootfs_mounted = false;
	}
	ctcg_teardown(&k->cg);
	rt_syscall_exit();
	if (k->start_fd >= 0)
		close(k->start_fd);
	k->start_fd = -1;
	for (proc *p = &k->init; p; p = p == &k->init ? k->execs : p->next) {
		sv_free(p->sv);
		p->sv = NULL;
		if (p->pidfd >= 0)
			close(p->pidfd);
		if (p->pty_master >= 0)
			close(p->pty_master);
		p->pidfd = p->pty_master = -1;
	}
}

/* The task's memory, once released and unlisted. */
static void free_released(task *k) {
	for (proc *p = &k->init; p; p = p == &k->init ? k->execs : p->next)
		for (int i = 0; i < 3; i++)
			free(p->io[i]);
	while (k->execs) {
		proc *p = k->execs;
		k->execs = p->next;
		spec_process_free(&p->exec);
		if (p->done)
			rt_chan_free(p->done);
		free(p);
	}
	if (k->init.done)
		rt_chan_free(k->init.done);
	spec_free(k->s);
	free(k);
}

static void free_task(task *k) {
	release_task(k);
	free_released(k);
}

static void init_proc(proc *p, const char *exec_id, const char *in, const char *out,
                      const char *errs, bool terminal) {
	snprintf(p->exec_id, sizeof p->exec_id, "%s", exec_id ? exec_id : "");
	p->pidfd = p->pty_master = -1;
	p->relay_fds[0] = p->relay_fds[1] = -1;
	for (int i = 0; i < 2; i++)
		p->copy[i] = (exec_copy){.from = -1, .to = -1, .wg = &p->copies};
	p->copies = (rt_waitgroup)RT_WAITGROUP_INIT;
	p->io[0] = strdup(in ? in : "");
	p->io[1] = strdup(out ? out : "");
	p->io[2] = strdup(errs ? errs : "");
	p->terminal = terminal;
	p->done = rt_chan_new(1, 0);
}

/* Open p's stdio for a new process into o->stdio; with a terminal the
 * relay fds are kept for after the pty arrives. */
static void reaper(void *arg) {
	pid_t pid = (pid_t)(intptr_t)arg;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), perr;
	rt_pollfd *pd = fd >= 0 ? rt_poll_open(fd, &perr) : NULL;
	if (pd) {
		rt_poll_wait(pd, RT_POLL_READ, RT_FOREVER);
		rt_poll_close(pd);
	}
	if (fd >= 0)
		close(fd);
	waitpid(pid, NULL, WNOHANG);
}

static int prepare_stdio(task_service *t, task *k, proc *p, ct_opts *o, int fds[3], ms_err *err) {
	fds[0] = fds[1] = fds[2] = -1;
	bool binary = !strncmp(p->io[1], BINLOG_SCHEME, strlen(BINLOG_SCHEME));
	if (binary && !p->terminal) { /* one logger takes both streams */
		pid_t logger = 0;
		int rc = binlog_start(p->io[1], k->id, t->o.ns ? t->o.ns : "default", &fds[1],
		                      &fds[2], &logger, err);
		if (logger > 0) /* it is our child: never leave a zombie */
			rt_go(reaper, (void *)(intptr_t)logger, "logger reaper");
		if (rc || open_stdio(p->io[0], 0, &fds[0], err)) {
			close_fds(fds, 3);
			return err->code;
		}
	}
	for (int i = 0; i < 3 && !binary; i++)
		if (open_stdio(p->io[i], i, &fds[i], err)) {
			close_fds(fds, 3);
			return err->code;
		}
	if (p->exec_id[0] && !p->terminal && !binary && copies_prepare(p, fds, err)) {
		close_fds(fds, 3);
		return err->code;
	}
	if (p->terminal) { /* the pty is the process's stdio; the FIFOs are the relay's */
		p->relay_fds[0] = fds[0];
		p->relay_fds[1] = fds[1];
		fds[0] = fds[1] = -1;
		close_fds(fds, 3);
		o->stdio[0] = o->stdio[1] = o->stdio[2] = -1;
		return 0;
	}
	for (int i = 0; i < 3; i++)
		o->stdio[i] = fds[i];
	return 0;
}

/* A new task for request r, not yet listed: 0, or a ttrpc code (msg set;
 * *out NULL or the task to free). */
static int new_task(task_service *t, Containerd__Task__V2__CreateTaskRequest *r, task **out,
                    char **msg) {
	*out = NULL;
	int code = id_fits(msg, "Create: a container id", r->id);
	if (code)
		return code;
	if (strlen(r->bundle) >= PATH_MAX)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Create: a bundle path of %zu bytes",
		               strlen(r->bundle));
	task *k = calloc(1, sizeof *k);
	if (!k)
		return tt_fail(msg, TT_RESOURCE_EXHAUSTED, "out of memory");
	*out = k;
	k->start_fd = -1;
	k->go_sink = -1;
	k->svc = t;
	k->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	snprintf(k->id, sizeof k->id, "%s", r->id);
	snprintf(k->bundle, sizeof k->bundle, "%s", r->bundle);
	init_proc(&k->init, "", r->stdin, r->stdout, r->stderr, r->terminal);
	rt_mutex_lock(&t->mu);
	bool taken = find_listed(t, r->id) != NULL;
	rt_mutex_unlock(&t->mu);
	if (taken)
		return tt_fail(msg, TT_ALREADY_EXISTS, "container %s already exists", r->id);
	return 0;
}

/* The task's rootfs, spec, annotations, scripts, log and cgroup. */
static int load_task(task_service *t, task *k, Containerd__Task__V2__CreateTaskRequest *r,
                     ms_err *err) {
	if (mount_rootfs(k, r, err) || spec_load(k->bundle, &k->s, err))
		return err->code;
	k->s->process.terminal = r->terminal;
	if (go_annotations(k, err))
		return err->code;
	pick_script(k->s, POLICY_ANNOTATION,
	            t->o.default_policy ? t->o.default_policy : DEFAULT_POLICY, &k->policy_file,
	            &k->policy_src);
	pick_script(k->s, CHECKS_ANNOTATION,
	            t->o.default_checks ? t->o.default_checks : DEFAULT_CHECKS, &k->checks_file,
	            &k->checks_src);
	k->log = ev_open("/proc/self/fd/2", k->id, err);
	if (k->log)
		ev_observe(k->log, tell_event, t);
	char default_rel[PATH_MAX];
	snprintf(default_rel, sizeof default_rel, "moonshim/%s/%s", t->o.ns ? t->o.ns : "default",
	         k->id);
	int rc = ctcg_setup(&k->cg, k->s, default_rel, err);
	tell_warnings(t, k->id, k->s, 0);
	if (rc)
		return err->code;
	char dir[PATH_MAX];
	if ((size_t)snprintf(dir, sizeof dir, "%s/%s/%s", t->o.publish_root,
	                     t->o.ns ? t->o.ns : "default", k->id) < sizeof dir) {
		k->pub = sv_publisher(dir, k->id, t->o.ns ? t->o.ns : "default", k->s, k->cg.rel);
		pb_observe(k->pub, k->log);
	}
	return 0;
}

/* The init, held at exec until Start (k->start_fd lets it go), and its
 * supervision. On failure after the process exists, k->init.pid is set
 * for the caller to kill. */
static int create_init(task_service *t, task *k, ms_err *err) {
	int fds[3] = {-1, -1, -1}, startp[2] = {-1, -1}, go_pipe[2] = {-1, -1};
	fh_job j = {.s = k->s,
	            .o = {.host = &k->cg.host,
	                  .cgroup = k->cg.cgroup,
	                  .cgroup_rel = k->cg.rel,
	                  .debug = t->o.debug,
	                  .id = k->id,
	                  .before_start = ctcg_attach_devices,
	                  .hook_arg = &k->cg,
	                  .hold = true,
	                  .clone_parent = true}};
	int rc = 0;
	if (prepare_stdio(t, k, &k->init, &j.o, fds, err) || ct_start_pair(startp, err)) {
		rc = err->code;
		goto out;
	}
	j.o.start_fd = startp[1];
	if (k->go_on && j.o.stdio[2] >= 0) { /* stderr into the tap, the FIFO its sink */
		if (pipe2(go_pipe, O_CLOEXEC) < 0 || (k->go_sink = dup(j.o.stdio[2])) < 0) {
			rc = ms_fail(err, -errno, "--go-watch pipe: %s", strerror(errno));
			goto out;
		}
		j.o.stdio[2] = go_pipe[1];
	}
	if (fh_create(&j)) {
		*err = j.err;
		rc = err->code;
		goto out;
	}
	k->start_fd = startp[0];
	startp[0] = -1;
	k->init.pid = j.pid;
	k->init.pty_master = j.pty_master;
	close_fds(&go_pipe[1], 1); /* the child has its own: the tap's EOF */
	/* what exec.container makes processes with */
	k->create = (ct_opts){.host = &k->cg.host,
	                      .cgroup = k->cg.cgroup,
	                      .cgroup_rel = k->cg.rel,
	                      .stdio = {-1, -1, -1},
	                      .debug = t->o.debug,
	                      .before_start = ctcg_attach_devices,
	                      .hook_arg = &k->cg,
	                      .clone_parent = true};
	if ((rc = supervise_proc(t, k, &k->init, go_pipe[0], err)) == 0)
		go_pipe[0] = -1; /* the tap took it */
out:
	close_fds(fds, 3);
	close_fds(startp, 2);
	close_fds(go_pipe, 2);
	return rc;
}

/* List the created task, tell containerd, answer. */
static int announce_created(task_service *t, task *k, Containerd__Task__V2__CreateTaskRequest *r,
                            uint8_t **out, size_t *out_len) {
	rt_mutex_lock(&t->mu);
	k->next = t->tasks;
	t->tasks = k;
	rt_mutex_unlock(&t->mu);
	Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
	io.stdin = r->stdin, io.stdout = r->stdout, io.stderr = r->stderr,
	io.terminal = r->terminal;
	ev.container_id = r->id, ev.bundle = r->bundle, ev.io = &io, ev.pid = (uint32_t)k->init.pid;
	ev.n_rootfs = r->n_rootfs, ev.rootfs = r->rootfs;
	publish(t, "/tasks/create", "containerd.events.TaskCreate", &ev.base);
	Containerd__Task__V2__CreateTaskResponse resp =
	    CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
	resp.pid = (uint32_t)k->init.pid;
	return reply(&resp.base, out, out_len);
}

static int h_create(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__CreateTaskRequest *r =
	    unpack(&containerd__task__v2__create_task_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Create: the request does not decode");
	ms_err err = {0};
	task *k;
	int code = new_task(t, r, &k, msg);
	if (!code && (load_task(t, k, r, &err) || create_init(t, k, &err)))
		code = tt_fail(msg, err.code == -ENOENT ? TT_NOT_FOUND : TT_FAILED_PRECONDITION,
		               "%s", err.msg);
	if (!code) {
		code = announce_created(t, k, r, out, out_len);
	} else if (k) {
		if (k->init.pid > 0) { /* created, then failed: it must not linger */
			kill(k->init.pid, SIGKILL);
			rt_go(reaper, (void *)(intptr_t)k->init.pid, "create reaper");
		}
		free_task(k);
	}
	containerd__task__v2__create_task_request__free_unpacked(r, NULL);
	return code;
}

/* ─── Start, Exec ───────────────────────────────────────────────────── */

static int start_exec(task_service *t, task *k, proc *p, ms_err *err) {
	fh_job j = {.s = k->s,
	            .p = &p->exec,
	            .init_pid = k->init.pid,
	            .o = {.host = &k->cg.host,
	                  .cgroup = k->cg.cgroup,
	                  .cgroup_rel = k->cg.rel,
	                  .debug = t->o.debug,
	                  .before_start = ctcg_attach_devices,
	                  .hook_arg = &k->cg,
	                  .clone_parent = true}};
	int fds[3];
	if (prepare_stdio(t, k, p, &j.o, fds, err))
		return err->code;
	int rc = (int)fh_create(&j);
	close_fds(fds, 3);
	if (rc) {
		*err = j.err;
		copies_stop(p);
		return rc;
	}
	p->pid = j.pid;
	p->pty_master = j.pty_master;
	/* the copies run before the exit waiter can: an exec that ends at once
	 * has its waiter stop the copies (evict, wait, close the FIFOs), and a
	 * copy started only after that would find its pipe closed and the
	 * output gone */
	copies_start(p);
	if ((rc = supervise_proc(t, k, p, -1, err))) { /* it must not run unwatched */
		kill(p->pid, SIGKILL);
		rt_go(reaper, (void *)(intptr_t)p->pid, "exec reaper");
		close_fds(p->relay_fds, 2);
		copies_stop(p);
		return rc;
	}
	return 0;
}

static int h_start(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__StartRequest *r =
	    unpack(&containerd__task__v2__start_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Start: the request does not decode");
	int code;
	ms_err err = {0};
	rt_mutex_lock(&t->mu);
	task *k;
	proc *p = lookup(t, r->id, r->exec_id, &k);
	bool exec = r->exec_id && *r->exec_id;
	if (!p) {
		rt_mutex_unlock(&t->mu);
		code = tt_fail(msg, TT_NOT_FOUND, "%s %s not created",
		               exec ? "process" : "container", exec ? r->exec_id : r->id);
		goto out;
	}
	if (p->started) {
		rt_mutex_unlock(&t->mu);
		code = tt_fail(msg, TT_FAILED_PRECONDITION, "%s already started",
		               exec ? r->exec_id : r->id);
		goto out;
	}
	p->started = true;
	int start_fd = exec ? -1 : k->start_fd;
	if (!exec)
		k->start_fd = -1;
	rt_mutex_unlock(&t->mu);
	if (!exec) {
		int rc = fh_start(start_fd, &err);
		close(start_fd);
		if (rc) {
			ctcg_explain_start_failure(k->cg.cgroup, k->s, &err);
			code = tt_fail(msg, TT_FAILED_PRECONDITION, "container %s: %s", r->id,
			               err.msg);
			goto out;
		}
		if (fh_hooks(k->s, SPEC_HOOK_POSTSTART, k->id, "running", p->pid, &err))
			fprintf(stderr, "moonshim: warning: container %s: %s\n", r->id, err.msg);
		Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
		ev.container_id = k->id, ev.pid = (uint32_t)p->pid;
		publish(t, "/tasks/start", "containerd.events.TaskStart", &ev.base);
	} else {
		if (start_exec(t, k, p, &err)) {
			code = tt_fail(msg, TT_FAILED_PRECONDITION, "%s", err.msg);
			goto out;
		}
		Containerd__Events__TaskExecStarted ev =
		    CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
		ev.container_id = k->id, ev.exec_id = p->exec_id, ev.pid = (uint32_t)p->pid;
		publish(t, "/tasks/exec-started", "containerd.events.TaskExecStarted", &ev.base);
	}
	Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
	resp.pid = (uint32_t)p->pid;
	code = reply(&resp.base, out, out_len);
	if (!exec) /* the container runs: what made it (spec, cgroup, Lua) is done */
		mem_settle();
out:
	containerd__task__v2__start_request__free_unpacked(r, NULL);
	return code;
}

static int h_exec(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__ExecProcessRequest *r =
	    unpack(&containerd__task__v2__exec_process_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Exec: the request does not decode");
	int code = TT_OK;
	proc *p = calloc(1, sizeof *p);
	json_t *j = NULL;
	ms_err err = {0};
	if (!p) {
		code = tt_fail(msg, TT_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if ((code = id_fits(msg, "Exec: an exec id", r->exec_id)))
		goto out;
	if (!r->spec || !r->spec->value.data) {
		code = tt_fail(msg, TT_INVALID_ARGUMENT, "Exec %s: no process spec", r->exec_id);
		goto out;
	}
	j = jl_loadb((const char *)r->spec->value.data, r->spec->value.len, 0, "process spec",
	             &err);
	if (!j || spec_parse_process(j, "process", &p->exec, &err)) {
		code = tt_fail(msg, TT_INVALID_ARGUMENT, "Exec %s: %s", r->exec_id, err.msg);
		goto out;
	}
	p->exec.terminal = r->terminal;
	init_proc(p, r->exec_id, r->stdin, r->stdout, r->stderr, r->terminal);
	rt_mutex_lock(&t->mu);
	task *k = find_task(t, r->id);
	if (!k || !*r->exec_id || find_proc(k, r->exec_id)) {
		rt_mutex_unlock(&t->mu);
		code = tt_fail(msg, k ? TT_ALREADY_EXISTS : TT_NOT_FOUND,
		               k ? "process %s already exists" : "container %s not created",
		               k ? r->exec_id : r->id);
		goto out;
	}
	p->next = k->execs;
	k->execs = p;
	p = NULL;
	rt_mutex_unlock(&t->mu);
	Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
	ev.container_id = r->id, ev.exec_id = r->exec_id;
	publish(t, "/tasks/exec-added", "containerd.events.TaskExecAdded", &ev.base);
	*out = NULL, *out_len = 0;
out:
	if (p) {
		spec_process_free(&p->exec);
		for (int i = 0; i < 3; i++)
			free(p->io[i]);
		if (p->done)
			rt_chan_free(p->done);
		free(p);
	}
	json_decref(j);
	containerd__task__v2__exec_process_request__free_unpacked(r, NULL);
	return code;
}

/* ─── Wait, State, Pids ─────────────────────────────────────────────── */

static int h_wait(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__WaitRequest *r =
	    unpack(&containerd__task__v2__wait_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Wait: the request does not decode");
	int code;
	rt_mutex_lock(&t->mu);
	task *k;
	proc *p = lookup(t, r->id, r->exec_id, &k);
	rt_mutex_unlock(&t->mu);
	if (!p) {
		code = not_found(msg, r->id, r->exec_id);
		goto out;
	}
	/* the process outlives this call while it is not exited: Delete
	 * refuses a running process */
	rt_case cs[2] = {{.c = p->done, .dir = RT_RECV}, {.c = c->done, .dir = RT_RECV}};
	int which = rt_select(cs, 2, c->deadline);
	if (which != 0) {
		code = tt_fail(msg, which == 1 ? TT_CANCELED : TT_DEADLINE_EXCEEDED,
		               "Wait %s: gave up", r->id);
		goto out;
	}
	Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = ts_proto(&p->exited_at);
	resp.exit_status = (uint32_t)p->status;
	resp.exited_at = &at;
	code = reply(&resp.base, out, out_len);
out:
	containerd__task__v2__wait_request__free_unpacked(r, NULL);
	return code;
}

static int h_state(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__StateRequest *r =
	    unpack(&containerd__task__v2__state_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "State: the request does not decode");
	int code;
	rt_mutex_lock(&t->mu);
	task *k = find_listed(t, r->id); /* a container in Delete's teardown: stopped */
	proc *p = k ? find_proc(k, r->exec_id) : NULL;
	if (!p) {
		rt_mutex_unlock(&t->mu);
		code = not_found(msg, r->id, r->exec_id);
		goto out;
	}
	Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = ts_proto(&p->exited_at);
	resp.id = k->id;
	resp.bundle = k->bundle;
	resp.pid = (uint32_t)(p->pid > 0 ? p->pid : 0);
	resp.status = p->exited     ? CONTAINERD__V1__TYPES__STATUS__STOPPED
	              : !p->started ? CONTAINERD__V1__TYPES__STATUS__CREATED
	              : k->paused   ? CONTAINERD__V1__TYPES__STATUS__PAUSED
	                            : CONTAINERD__V1__TYPES__STATUS__RUNNING;
	resp.stdin = p->io[0], resp.stdout = p->io[1], resp.stderr = p->io[2];
	resp.terminal = p->terminal;
	resp.exit_status = (uint32_t)p->status;
	if (p->exited)
		resp.exited_at = &at;
	resp.exec_id = p->exec_id;
	code = reply(&resp.base, out, out_len);
	rt_mutex_unlock(&t->mu);
out:
	containerd__task__v2__state_request__free_unpacked(r, NULL);
	return code;
}

static int h_pids(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__PidsRequest *r =
	    unpack(&containerd__task__v2__pids_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Pids: the request does not decode");
	int code;
	/* on the heap: a goroutine's stack is small */
	char *buf = malloc(PIDS_BUF);
	Containerd__V1__Types__ProcessInfo *infos = calloc(MAX_PIDS, sizeof *infos);
	Containerd__V1__Types__ProcessInfo **ptrs = calloc(MAX_PIDS, sizeof *ptrs);
	cg_err ce = {0};
	if (!buf || !infos || !ptrs) {
		code = tt_fail(msg, TT_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	rt_mutex_lock(&t->mu);
	task *k = find_task(t, r->id);
	ssize_t n = k ? cg_read(k->cg.cgroup, "cgroup.procs", buf, PIDS_BUF, &ce) : -ENOENT;
	rt_mutex_unlock(&t->mu);
	if (n < 0) {
		code = tt_fail(msg, k ? TT_INTERNAL : TT_NOT_FOUND, "%s",
		               k ? ce.msg : "container not created");
		goto out;
	}
	size_t count = 0;
	for (char *line = strtok(buf, "\n"); line && count < MAX_PIDS; line = strtok(NULL, "\n")) {
		containerd__v1__types__process_info__init(&infos[count]);
		infos[count].pid = (uint32_t)atoi(line);
		ptrs[count] = &infos[count];
		count++;
	}
	Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	resp.n_processes = count;
	resp.processes = ptrs;
	code = reply(&resp.base, out, out_len);
out:
	free(buf);
	free(infos);
	free(ptrs);
	containerd__task__v2__pids_request__free_unpacked(r, NULL);
	return code;
}

/* ─── Kill, Delete ──────────────────────────────────────────────────── */

static int h_kill(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__KillRequest *r =
	    unpack(&containerd__task__v2__kill_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Kill: the request does not decode");
	int code = TT_OK;
	rt_mutex_lock(&t->mu);
	task *k;
	proc *p = lookup(t, r->id, r->exec_id, &k);
	if (!p)
		code = not_found(msg, r->id, r->exec_id);
	else if (r->all && k->cg.cgroup) {
		cg_err ce = {0};
		if (cg_kill(k->cg.cgroup, (int)r->signal, &ce))
			code = tt_fail(msg, TT_INTERNAL, "%s", ce.msg);
	} else if (p->exited || p->pidfd < 0)
		code = tt_fail(msg, TT_NOT_FOUND, "process already finished");
	else if (syscall(SYS_pidfd_send_signal, p->pidfd, (int)r->signal, NULL, 0) < 0)
		code = tt_fail(msg, errno == ESRCH ? TT_NOT_FOUND : TT_INTERNAL,
		               "signal %u to %d: %s", r->signal, p->pid, strerror(errno));
	rt_mutex_unlock(&t->mu);
	*out = NULL, *out_len = 0;
	containerd__task__v2__kill_request__free_unpacked(r, NULL);
	return code;
}

static int h_delete(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__DeleteRequest *r =
	    unpack(&containerd__task__v2__delete_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Delete: the request does not decode");
	int code;
	bool exec = r->exec_id && *r->exec_id;
	rt_mutex_lock(&t->mu);
	task *k;
	proc *p = lookup(t, r->id, r->exec_id, &k);
	if (!p) {
		rt_mutex_unlock(&t->mu);
		code = not_found(msg, r->id, r->exec_id);
		goto out;
	}
	if (p->started && !p->exited) {
		rt_mutex_unlock(&t->mu);
		code = tt_fail(msg, TT_FAILED_PRECONDITION, "cannot delete a running process");
		goto out;
	}
	/* an exec: unlinked while locked; a container: hidden from all but
	 * State until its teardown is done (the header). Finish outside the lock. */
	if (exec) {
		for (proc **pp = &k->execs; *pp; pp = &(*pp)->next)
			if (*pp == p) {
				*pp = p->next;
				break;
			}
	} else
		k->deleting = true;
	rt_mutex_unlock(&t->mu);
	if (!p->started &&
	    p->pid > 0) { /* created, never started: its init waits, release it to die */
		syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
		rt_chan_recv(p->done, NULL);
	}
	Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Google__Protobuf__Timestamp at = ts_proto(&p->exited_at);
	resp.pid = (uint32_t)(p->pid > 0 ? p->pid : 0);
	resp.exit_status = (uint32_t)p->status;
	resp.exited_at = &at;
	code = reply(&resp.base, out, out_len);
	if (exec) {
		sv_free(p->sv);
		if (p->pidfd >= 0)
			close(p->pidfd);
		if (p->pty_master >= 0)
			close(p->pty_master);
		for (int i = 0; i < 3; i++)
			free(p->io[i]);
		spec_process_free(&p->exec);
		rt_chan_free(p->done);
		free(p);
		goto out;
	}
	/* the container: nothing of it may outlive Delete */
	cg_err ce = {0};
	if (k->cg.cgroup && cg_populated(k->cg.cgroup, &ce) == 1)
		cg_kill(k->cg.cgroup, SIGKILL, &ce);
	for (int i = 0; i < 500 && k->cg.cgroup && cg_populated(k->cg.cgroup, &ce) == 1; i++)
		rt_sleep(10 * 1000000LL);
	rt_wg_wait(&k->wg); /* every process's sv is done */
	Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	ev.container_id = k->id, ev.id = k->id, ev.pid = resp.pid,
	ev.exit_status = resp.exit_status;
	ev.exited_at = &at;
	publish(t, "/tasks/delete", "containerd.events.TaskDelete", &ev.base);
	ms_err herr = {0}; /* poststop: its processes are gone; a failure is a warning */
	if (fh_hooks(k->s, SPEC_HOOK_POSTSTOP, k->id, "stopped", 0, &herr))
		fprintf(stderr, "moonshim: warning: container %s: %s\n", k->id, herr.msg);
	release_task(k);
	rt_mutex_lock(&t->mu);
	for (task **kk = &t->tasks; *kk; kk = &(*kk)->next)
		if (*kk == k) {
			*kk = k->next;
			break;
		}
	rt_mutex_unlock(&t->mu);
	free_released(k);
out:
	containerd__task__v2__delete_request__free_unpacked(r, NULL);
	return code;
}

/* ─── Pause, Resume, Update, Stats, ResizePty, CloseIO ──────────────── */

static int pause_resume(task_service *t, tt_call *c, bool pause, char **msg) {
	Containerd__Task__V2__PauseRequest *r =
	    unpack(&containerd__task__v2__pause_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "the request does not decode");
	int code = TT_OK;
	rt_mutex_lock(&t->mu);
	task *k = find_task(t, r->id);
	cg *cgr = k ? k->cg.cgroup : NULL;
	rt_mutex_unlock(&t->mu);
	cg_err ce = {0};
	if (!cgr)
		code = tt_fail(msg, TT_NOT_FOUND, "container %s not created", r->id);
	else if (cg_freeze(cgr, pause, &ce) ||
	         cg_freeze_wait(cgr, pause, rt_deadline_in(5000 * 1000000LL), &ce))
		code = tt_fail(msg, TT_INTERNAL, "%s", ce.msg);
	else {
		rt_mutex_lock(&t->mu);
		k->paused = pause;
		rt_mutex_unlock(&t->mu);
		Containerd__Events__TaskPaused ev =
		    CONTAINERD__EVENTS__TASK_PAUSED__INIT; /* same shape as TaskResumed */
		ev.container_id = r->id;
		publish(t, pause ? "/tasks/paused" : "/tasks/resumed",
		        pause ? "containerd.events.TaskPaused" : "containerd.events.TaskResumed",
		        &ev.base);
	}
	containerd__task__v2__pause_request__free_unpacked(r, NULL);
	return code;
}

static int h_pause(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	*out = NULL, *out_len = 0;
	return pause_resume(arg, c, true, msg);
}

static int h_resume(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	*out = NULL, *out_len = 0;
	return pause_resume(arg, c, false, msg);
}

static int h_update(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__UpdateTaskRequest *r =
	    unpack(&containerd__task__v2__update_task_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Update: the request does not decode");
	int code = TT_OK;
	json_t *j = NULL;
	ms_err err = {0};
	spec *res = NULL;
	if (!r->resources || !(j = jl_loadb((const char *)r->resources->value.data,
	                                    r->resources->value.len, 0, "resources", &err)))
		code = tt_fail(msg, TT_INVALID_ARGUMENT,
		               "Update %s: resources are not LinuxResources JSON", r->id);
	else if (!(res = spec_parse_resources(j, &err)))
		code = tt_fail(msg, TT_INVALID_ARGUMENT, "Update %s: %s", r->id, err.msg);
	else {
		rt_mutex_lock(&t->mu);
		task *k = find_task(t, r->id);
		if (!k)
			code = tt_fail(msg, TT_NOT_FOUND, "container %s not created", r->id);
		else if (ctcg_update(&k->cg, res, &err))
			code = tt_fail(msg, TT_INVALID_ARGUMENT, "Update %s: %s", r->id, err.msg);
		rt_mutex_unlock(&t->mu);
		tell_warnings(t, r->id, res, 0);
	}
	spec_free(res);
	json_decref(j);
	*out = NULL, *out_len = 0;
	containerd__task__v2__update_task_request__free_unpacked(r, NULL);
	return code;
}

/* Stats: v1 Metrics on a v1/hybrid host, v2 Metrics on a pure v2 one (as
 * runc's shim answers, and as containerd's cgroups.Mode() expects). */
static int h_stats(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__StatsRequest *r =
	    unpack(&containerd__task__v2__stats_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Stats: the request does not decode");
	int code;
	rt_mutex_lock(&t->mu);
	task *k = find_task(t, r->id);
	if (!k) {
		rt_mutex_unlock(&t->mu);
		code = tt_fail(msg, TT_NOT_FOUND, "container %s not created", r->id);
		goto out;
	}
	size_t n = 0;
	const char *type_url = NULL;
	uint8_t *buf = metrics_pack(k->cg.cgroup, k->cg.host.layout, &n, &type_url);
	rt_mutex_unlock(&t->mu);
	if (!buf) {
		code = tt_fail(msg, TT_RESOURCE_EXHAUSTED, "Stats %s: out of memory", r->id);
		goto out;
	}
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = (char *)type_url;
	any.value.data = buf, any.value.len = n;
	Containerd__Task__V2__StatsResponse resp = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
	resp.stats = &any;
	code = reply(&resp.base, out, out_len);
	free(buf);
out:
	containerd__task__v2__stats_request__free_unpacked(r, NULL);
	return code;
}

static int h_resize_pty(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__ResizePtyRequest *r =
	    unpack(&containerd__task__v2__resize_pty_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "ResizePty: the request does not decode");
	int code = TT_OK;
	rt_mutex_lock(&t->mu);
	task *k;
	proc *p = lookup(t, r->id, r->exec_id, &k);
	if (!p)
		code = not_found(msg, r->id, r->exec_id);
	else if (p->pty_master >= 0)
		tty_set_size(p->pty_master, (unsigned short)r->height, (unsigned short)r->width);
	rt_mutex_unlock(&t->mu);
	*out = NULL, *out_len = 0;
	containerd__task__v2__resize_pty_request__free_unpacked(r, NULL);
	return code;
}

/* The process's stdin is the FIFO itself (or the pty relay's): the
 * container sees EOF when containerd closes its end. Nothing to do. */
static int h_close_io(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	*out = NULL, *out_len = 0;
	return TT_OK;
}

static int h_connect(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	Containerd__Task__V2__ConnectRequest *r =
	    unpack(&containerd__task__v2__connect_request__descriptor, c);
	if (!r)
		return tt_fail(msg, TT_INVALID_ARGUMENT, "Connect: the request does not decode");
	Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
	resp.shim_pid = (uint32_t)getpid();
	resp.version = "2";
	rt_mutex_lock(&t->mu);
	task *k = find_task(t, r->id);
	if (k && k->init.pid > 0)
		resp.task_pid = (uint32_t)k->init.pid;
	int code = reply(&resp.base, out, out_len);
	rt_mutex_unlock(&t->mu);
	containerd__task__v2__connect_request__free_unpacked(r, NULL);
	return code;
}

static int h_shutdown(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	task_service *t = arg;
	*out = NULL, *out_len = 0;
	if (task_count(t) == 0 && t->o.shutdown)
		t->o.shutdown(t->o.shutdown_arg);
	return TT_OK;
}

static int h_checkpoint(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg) {
	return tt_fail(msg, TT_UNIMPLEMENTED,
	               "Checkpoint: moonshim does not checkpoint containers (no CRIU support)");
}

task_service *task_service_new(tt_server *s, const task_opts *o) {
	task_service *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->o = *o;
	t->mu = (rt_mutex)RT_MUTEX_INIT;
	static const struct {
		const char *name;
		tt_handler h;
	} methods[] = {
	    {"Create", h_create},
	    {"Start", h_start},
	    {"Exec", h_exec},
	    {"Wait", h_wait},
	    {"State", h_state},
	    {"Pids", h_pids},
	    {"Kill", h_kill},
	    {"Delete", h_delete},
	    {"Pause", h_pause},
	    {"Resume", h_resume},
	    {"Update", h_update},
	    {"Stats", h_stats},
	    {"ResizePty", h_resize_pty},
	    {"CloseIO", h_close_io},
	    {"Connect", h_connect},
	    {"Shutdown", h_shutdown},
	    {"Checkpoint", h_checkpoint},
	};
	for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
		tt_register(s, TASK_SERVICE, methods[i].name, methods[i].h, t);
	return t;
}
