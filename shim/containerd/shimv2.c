/*
 * shimv2.c — containerd-shim-moon-v2: the shim v2 binary contract.
 *
 *   containerd-shim-moon-v2 -namespace NS -address SOCK -publish-binary BIN
 *                           -id ID [-bundle DIR] [-debug] start|delete
 *
 * start   (cwd: the bundle) makes the listening socket, named as the runc
 *         shim names it (/run/containerd/s/<sha256(address/ns/group)>) so
 *         `ctr shim` and sibling containers find it; writes <bundle>/address;
 *         forks the daemon with fresh stdio (containerd reads start's
 *         output until it closes); prints the reply below and exits.
 *         Containers of one pod (the CRI sandbox annotation) share a
 *         daemon: a live socket for the group is reused.
 *
 * The start reply. containerd 1.6 takes start's whole stdout as the
 * address, so it gets the plain unix://PATH. 1.7 and later set
 * MAX_SHIM_VERSION (=2) in start's environment and parse a JSON
 * {"version":2,"address":"unix://PATH","protocol":"ttrpc"}: that is what
 * they get. Version 2, not 3, on purpose: 1.7 refuses a version above 2;
 * 2.x bridges a version 2 shim to containerd.task.v2.Task over one
 * connection and runs start and delete for every container, while a
 * version 3 answer would make it skip start for a pod's other containers
 * (it reuses the sandbox's socket through bootstrap.json) and speak
 * containerd.task.v3 over several connections. 2.3+ would also take a
 * protobuf BootstrapResult, but 2.2 cannot parse one; JSON works on all.
 * start's stdout and stderr reach containerd combined (CombinedOutput),
 * so a successful start writes nothing else; warnings go to the shim log.
 * delete  cleans up after a daemon that is gone: kills what is left in the
 *         container's cgroup, removes it, unmounts the rootfs, removes the
 *         dead daemon's socket, and prints a DeleteResponse (raw protobuf)
 *         on stdout.
 * daemon  one rt_main: the ttrpc server with the task service, and an
 *         event publisher forwarding to containerd's $TTRPC_ADDRESS.
 */
#define _GNU_SOURCE
#include "containerd.h"

#include "oci.h"
#include "base.h"
#include "bootstrap.h"
#include "io.h"
#include "task.h"
#include "ttrpc.h"

#include "containerd/events.pb-c.h"
#include "containerd/introspection.pb-c.h"
#include "containerd/task.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SOCKET_DIR         "/run/containerd/s"
#define SANDBOX_ANNOTATION "io.kubernetes.cri.sandbox-id"
#define FORWARD_SERVICE    "containerd.services.events.ttrpc.v1.Events"
#define FORWARD_TIMEOUT_NS (5 * 1000000000LL)
#define PUBLISH_QUEUE      1024               /* events waiting for containerd */
#define RETRY_MIN_NS       (100 * 1000000LL)  /* containerd unreachable: first wait */
#define RETRY_MAX_NS       (1000 * 1000000LL) /* the longest wait between tries */
#define STOP_TRIES         5                  /* after Shutdown: tries left for what is queued */
#define KILLED_STATUS      137
#define REPLY_VERSION      2
#define RUNTIME_NAME       "io.containerd.moon.v2"
#define FEATURES_TYPE                                                                              \
	"types.containerd.io/opencontainers/runtime-spec/1/features/Features" /* the shim API      \
	                                                                         version start     \
	                                                                         answers (see the  \
	                                                                         header) */
#define IDLE_THREAD_NS                                                                             \
	(1000 * 1000000LL) /* an idle extra M exits after this */ /* what delete reports: the runc \
	                                                             shim's 128+SIGKILL */

typedef struct shim_args {
	const char *ns, *address, *id, *bundle, *action;
	bool debug, ns_flag, info;
	const char *socket_dir;
	bs_params *bp; /* start's stdin (bootstrap.h) */
} shim_args;

/* ─── naming ────────────────────────────────────────────────────────── */

static void socket_path(const shim_args *a, const char *group, char *out, size_t n) {
	char key[PATH_MAX * 2];
	snprintf(key, sizeof key, "%s/%s/%s", a->address, a->ns, group);
	char hex[SHA256_HEX_LEN + 1];
	sha256_hex(key, strlen(key), hex);
	snprintf(out, n, "%s/%s", a->socket_dir ? a->socket_dir : SOCKET_DIR, hex);
}

/* The grouping key: the pod's sandbox id when CRI gives one, else our id. */
static void group_of(const shim_args *a, char *out, size_t n) {
	snprintf(out, n, "%s", a->id);
	json_t *j = jl_load_file("config.json", 0, NULL);
	const char *sb = json_string_value(
	    json_object_get(json_object_get(j, "annotations"), SANDBOX_ANNOTATION));
	if (sb && *sb)
		snprintf(out, n, "%s", sb);
	json_decref(j);
}

static int write_address(const char *addr) {
	FILE *f = fopen("address.tmp", "we");
	if (!f)
		return -errno;
	fputs(addr, f);
	if (fclose(f) != 0 || rename("address.tmp", "address") < 0)
		return -errno;
	return 0;
}

/* A unix address for path; false if it does not fit sun_path. */
static bool unix_addr(const char *path, struct sockaddr_un *sa) {
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof sa->sun_path)
		return false;
	memcpy(sa->sun_path, path, n + 1);
	return true;
}

static bool socket_alive(const char *path) {
	struct sockaddr_un sa;
	if (!unix_addr(path, &sa))
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* ─── the daemon ────────────────────────────────────────────────────── */

/* One event, its payload inline; the queue holds pointers, so an idle
 * shim's queue is PUBLISH_QUEUE pointers, not PUBLISH_QUEUE events. */
typedef struct event_msg {
	char topic[32];
	char type_url[64];
	struct timespec at;
	size_t len;
	uint8_t data[];
} event_msg;

typedef struct daemon_ctx {
	const shim_args *a;
	int listen_fd;
	char sock[PATH_MAX];
	tt_server *srv;
	rt_chan *events; /* event_msg *, each the receiver's to free */
	rt_chan *stop;   /* closed on Shutdown */
	rt_once stop_once;
	rt_waitgroup wg;
} daemon_ctx;

static void publish(void *arg, const char *topic, const char *type_url, const uint8_t *ev,
                    size_t len) {
	daemon_ctx *d = arg;
	event_msg *m = malloc(sizeof *m + len);
	if (!m)
		return;
	snprintf(m->topic, sizeof m->topic, "%s", topic);
	snprintf(m->type_url, sizeof m->type_url, "%s", type_url);
	clock_gettime(CLOCK_REALTIME, &m->at);
	m->len = len;
	if (len)
		memcpy(m->data, ev, len);
	/* never block a handler on containerd: a full queue (containerd away
	 * long) drops its oldest event, with a line in the shim log */
	rt_case cs[1] = {{.c = d->events, .dir = RT_SEND, .elem = &m}};
	while (rt_select(cs, 1, 0) != 0) {
		event_msg *old;
		rt_case rc[1] = {{.c = d->events, .dir = RT_RECV, .elem = &old}};
		if (rt_select(rc, 1, 0) == 0 && rc[0].ok) {
			fprintf(stderr,
			        "moonshim shim: %d events wait for containerd: the oldest (%s) "
			        "dropped\n",
			        PUBLISH_QUEUE, old->topic);
			free(old);
		}
	}
}

static int forward(daemon_ctx *d, tt_client **cl, const event_msg *m) {
	const char *addr = getenv("TTRPC_ADDRESS");
	if (!addr || !*addr)
		return 0; /* no containerd to tell (a test or `ctr shim` use) */
	ms_err err = {0};
	if (!*cl && !(*cl = tt_dial(addr, &err)))
		return -ECONNREFUSED;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = m->at.tv_sec, ts.nanos = (int32_t)m->at.tv_nsec;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = (char *)m->type_url;
	any.value.data = (uint8_t *)m->data, any.value.len = m->len;
	Containerd__Events__Envelope env = CONTAINERD__EVENTS__ENVELOPE__INIT;
	env.timestamp = &ts, env.namespace_ = (char *)d->a->ns, env.topic = (char *)m->topic,
	env.event = &any;
	Containerd__Events__ForwardRequest req = CONTAINERD__EVENTS__FORWARD_REQUEST__INIT;
	req.envelope = &env;
	size_t n = protobuf_c_message_get_packed_size(&req.base);
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&req.base, buf);
	const char *md[] = {TT_NAMESPACE_KEY, d->a->ns, NULL};
	char msg[256];
	int rc = tt_call_sync(*cl, FORWARD_SERVICE, "Forward", buf, n, md, FORWARD_TIMEOUT_NS, NULL,
	                      NULL, msg, sizeof msg);
	free(buf);
	if (rc < 0) { /* the connection is gone: dial again next time */
		tt_client_close(*cl);
		*cl = NULL;
	}
	return rc;
}

/* Whether Shutdown came (d->stop closed); else waits up to ns for it. */
static bool stopping(daemon_ctx *d, int64_t ns) {
	rt_case cs[1] = {{.c = d->stop, .dir = RT_RECV}};
	return rt_select(cs, 1, ns ? rt_deadline_in(ns) : 0) == 0;
}

/* Forward m until containerd takes it: while containerd is away (a restart)
 * events queue (PUBLISH_QUEUE) and the oldest is sent again and again, the
 * wait doubling to RETRY_MAX_NS; after Shutdown STOP_TRIES tries are left. */
static void deliver(daemon_ctx *d, tt_client **cl, const event_msg *m, int *after_stop) {
	int64_t wait = RETRY_MIN_NS;
	bool told = false;
	while (forward(d, cl, m) < 0) {
		if (!told)
			fprintf(stderr, "moonshim shim: containerd unreachable; %s waits for it\n",
			        m->topic);
		told = true;
		if (stopping(d, 0)) {
			if (++*after_stop > STOP_TRIES) {
				fprintf(stderr, "moonshim shim: shut down; %s dropped\n", m->topic);
				return;
			}
			rt_sleep(RETRY_MIN_NS);
			continue;
		}
		stopping(d, wait);
		wait = wait * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : wait * 2;
	}
	if (told)
		fprintf(stderr, "moonshim shim: containerd is back; %s delivered\n", m->topic);
}

static void publisher(void *arg) {
	daemon_ctx *d = arg;
	tt_client *cl = NULL;
	event_msg *m;
	int after_stop = 0;
	while (rt_chan_recv(d->events, &m)) {
		deliver(d, &cl, m, &after_stop);
		free(m);
	}
	if (cl)
		tt_client_close(cl);
	rt_wg_done(&d->wg);
}

static void close_stop(void *arg) {
	rt_chan_close(((daemon_ctx *)arg)->stop);
}

static void on_shutdown(void *arg) {
	daemon_ctx *d = arg;
	rt_once_do(&d->stop_once, close_stop, d);
}

static void server_loop(void *arg) {
	daemon_ctx *d = arg;
	ms_err err = {0};
	tt_serve(d->srv, d->listen_fd, &err);
	rt_wg_done(&d->wg);
}

static int daemon_main(void *arg) {
	daemon_ctx *d = arg;
	d->wg = (rt_waitgroup)RT_WAITGROUP_INIT;
	d->stop_once = (rt_once)RT_ONCE_INIT;
	d->events = rt_chan_new(sizeof(event_msg *), PUBLISH_QUEUE);
	d->stop = rt_chan_new(1, 0);
	d->srv = tt_server_new();
	const ro_options *ro = &d->a->bp->opts;
	task_opts to = {.ns = d->a->ns,
	                .debug = d->a->debug || ro->debug,
	                .default_policy = ro->default_policy[0] ? ro->default_policy : NULL,
	                .default_checks = ro->default_checks[0] ? ro->default_checks : NULL,
	                .no_go_watch = !ro->go_watch,
	                .publish_root = ro->publish_root[0] ? ro->publish_root : PB_CONTAINERD_ROOT,
	                .publish = publish,
	                .publish_arg = d,
	                .shutdown = on_shutdown,
	                .shutdown_arg = d};
	task_service *ts = task_service_new(d->srv, &to);
	(void)ts;
	rt_wg_add(&d->wg, 2);
	rt_go(publisher, d, "event publisher");
	rt_go(server_loop, d, "ttrpc server");
	rt_chan_recv(d->stop, NULL);
	/* let the Shutdown reply go out before the connection closes */
	rt_sleep(50 * 1000000LL);
	tt_server_stop(d->srv);
	rt_chan_close(d->events);
	rt_wg_wait(&d->wg);
	tt_server_free(d->srv);
	unlink(d->sock);
	return 0;
}

static int run_daemon(const shim_args *a, int listen_fd, const char *sock) {
	daemon_ctx d = {.a = a, .listen_fd = listen_fd};
	snprintf(d.sock, sizeof d.sock, "%s", sock);
	signal(SIGPIPE, SIG_IGN);
	if (a->bp->opts.warnings[0]) /* the shim log: containerd's log */
		fputs(a->bp->opts.warnings, stderr);
	/* one P: a shim's work is small; idle helper threads retire quickly */
	rt_config cfg = {
	    .procs = 1, .quiet_leaks = true, .blocking_threads = 1, .idle_m_ns = IDLE_THREAD_NS};
	return rt_main(&cfg, daemon_main, &d);
}

/* ─── start ─────────────────────────────────────────────────────────── */

/* What start prints (see the header): containerd 1.7+ (it sets
 * MAX_SHIM_VERSION) gets the JSON reply at version 2; 1.6 takes stdout
 * as the address itself, so it gets the plain address. */
static int print_reply(const char *addr) {
	const char *max = getenv("MAX_SHIM_VERSION");
	if (!max || atoi(max) < REPLY_VERSION) {
		puts(addr);
		return 0;
	}
	json_t *j = json_pack("{s:i, s:s, s:s}", "version", REPLY_VERSION, "address", addr,
	                      "protocol", "ttrpc");
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		fprintf(stderr, "moonshim shim: start reply: out of memory\n");
		return 1;
	}
	puts(s);
	free(s);
	return 0;
}

static int do_start(const shim_args *a) {
	char group[PATH_MAX], sock[PATH_MAX], addr[PATH_MAX + 8];
	group_of(a, group, sizeof group);
	socket_path(a, group, sock, sizeof sock);
	snprintf(addr, sizeof addr, "unix://%s", sock);
	if (socket_alive(sock)) { /* the pod's shim serves this container too */
		if (write_address(addr) < 0) {
			fprintf(stderr, "moonshim shim: writing address: %s\n", strerror(errno));
			return 1;
		}
		return print_reply(addr);
	}
	if (a->socket_dir) {
		ms_err e = {0};
		fs_mkdir_p(a->socket_dir, 0711, &e);
	} else {
		mkdir("/run/containerd", 0711);
		mkdir(SOCKET_DIR, 0711);
	}
	unlink(sock);
	struct sockaddr_un sa;
	if (!unix_addr(sock, &sa)) {
		fprintf(stderr, "moonshim shim: socket path %s is too long\n", sock);
		return 1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* only the owner may connect (containerd runs as the same user) */
	mode_t old = umask(0177);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || listen(fd, SOMAXCONN) < 0) {
		fprintf(stderr, "moonshim shim: socket %s: %s\n", sock, strerror(errno));
		return 1;
	}
	if (write_address(addr) < 0) {
		fprintf(stderr, "moonshim shim: writing address: %s\n", strerror(errno));
		unlink(sock);
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "moonshim shim: fork: %s\n", strerror(errno));
		unlink(sock);
		return 1;
	}
	if (pid == 0) {
		setsid();
		/* stdout and stderr must not be start's: containerd waits for them
		 * to close. stderr goes to the bundle's log FIFO when there is one. */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int log = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		dup2(null, 0);
		dup2(null, 1);
		dup2(log >= 0 ? log : null, 2);
		if (log > 2)
			close(log);
		if (null > 2)
			close(null);
		_exit(run_daemon(a, fd, sock));
	}
	close(fd);
	return print_reply(addr);
}

/* ─── delete ────────────────────────────────────────────────────────── */

static int do_delete(const shim_args *a) {
	const char *bundle = a->bundle ? a->bundle : ".";
	spec *s = NULL;
	ms_err err = {0};
	if (spec_load(bundle, &s, &err) == 0 && s->cgroups_path) {
		cg_host h;
		cg_err ce = {0};
		if (cg_host_detect(&h, "/proc/self/mounts", &ce) == 0)
			ctcg_reap(&h, s->cgroups_path + strspn(s->cgroups_path, "/"));
	} else if (err.code) {
		fprintf(stderr, "moonshim shim delete: %s\n", err.msg);
	}
	spec_free(s);
	char rootfs[PATH_MAX + 16];
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", bundle);
	umount2(rootfs, MNT_DETACH);
	/* a daemon killed (-9) never removed its socket; one nobody answers on
	 * is its (a live one serves the pod's other containers: it stays) */
	char group[PATH_MAX], sock[PATH_MAX];
	group_of(a, group, sizeof group);
	socket_path(a, group, sock, sizeof sock);
	if (!socket_alive(sock))
		unlink(sock);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = now.tv_sec, ts.nanos = (int32_t)now.tv_nsec;
	Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	resp.exit_status = KILLED_STATUS;
	resp.exited_at = &ts;
	uint8_t buf[128];
	size_t n = containerd__task__v2__delete_response__pack(&resp, buf);
	fwrite(buf, 1, n, stdout);
	return 0;
}

/* ─── -info ──────────────────────────────────────────────────────────── */

/* containerd 2.0+: the runtime options on stdin (an Any, or nothing); a
 * protobuf RuntimeInfo on stdout: name, version, the options given back,
 * and the OCI features (features.h) as JSON in an Any. */
static int do_info(void) {
	uint8_t *in = NULL;
	size_t len = 0;
	ms_err err = {0};
	bs_params bp;
	if (bs_read(0, &in, &len, &err) || bs_parse(in, len, NULL, NULL, &bp, &err)) {
		fprintf(stderr, "containerd-shim-moon-v2 -info: %s\n", err.msg);
		free(in);
		return 1;
	}
	json_t *f = oci_features();
	char *fjson = f ? json_dumps(f, JSON_COMPACT) : NULL;
	json_decref(f);
	Google__Protobuf__Any features = GOOGLE__PROTOBUF__ANY__INIT, *opts = NULL;
	features.type_url = FEATURES_TYPE;
	features.value.data = (uint8_t *)fjson, features.value.len = fjson ? strlen(fjson) : 0;
	if (bp.options) /* what was given, as given */
		opts = google__protobuf__any__unpack(NULL, len, in);
	Containerd__Types__RuntimeVersion ver = CONTAINERD__TYPES__RUNTIME_VERSION__INIT;
	ver.version = (char *)ms_version, ver.revision = (char *)ms_commit;
	Containerd__Types__RuntimeInfo info = CONTAINERD__TYPES__RUNTIME_INFO__INIT;
	info.name = RUNTIME_NAME, info.version = &ver, info.features = &features,
	info.options = opts;
	size_t n = containerd__types__runtime_info__get_packed_size(&info);
	uint8_t *out = fjson ? malloc(n) : NULL;
	int rc = 1;
	if (out) {
		containerd__types__runtime_info__pack(&info, out);
		rc = fwrite(out, 1, n, stdout) == n && fflush(stdout) == 0 ? 0 : 1;
	} else {
		fprintf(stderr, "containerd-shim-moon-v2 -info: out of memory\n");
	}
	if (opts)
		google__protobuf__any__free_unpacked(opts, NULL);
	free(out);
	free(fjson);
	free(in);
	return rc;
}

/* start's stdin (bootstrap.h) into a: BootstrapParams fill in what the
 * flags did not say; an error is one line on stderr (containerd shows it). */
static int read_start_input(shim_args *a, bs_params *bp) {
	uint8_t *in = NULL;
	size_t len = 0;
	ms_err err = {0};
	int rc = bs_read(0, &in, &len, &err)
	             ? err.code
	             : bs_parse(in, len, a->id, a->ns_flag ? a->ns : NULL, bp, &err);
	free(in);
	if (rc) {
		fprintf(stderr, "containerd-shim-moon-v2: %s\n", err.msg);
		return rc;
	}
	if (!bp->bootstrap)
		return 0;
	if (!a->id)
		a->id = bp->id;
	if (!a->ns_flag)
		a->ns = bp->ns;
	if (bp->socket_dir[0])
		a->socket_dir = bp->socket_dir;
	const char *env = getenv("TTRPC_ADDRESS");
	if ((!env || !*env) && bp->ttrpc_address[0])
		setenv("TTRPC_ADDRESS", bp->ttrpc_address, 1);
	return 0;
}

/* ─── arguments ─────────────────────────────────────────────────────── */

int cmd_shim(int argc, char **argv) {
	shim_args a = {.ns = "default", .address = "/run/containerd/containerd.sock"};
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		/* Go flag syntax: -flag value, --flag value, -flag=value */
		while (*o == '-' && o[1] == '-')
			o++;
		if (*o != '-') {
			a.action = o;
			continue;
		}
		o++;
		const char *eq = strchr(o, '=');
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - o : (long)strlen(o)), o);
		if (eq)
			v = eq + 1;
		const char **dst = !strcmp(name, "namespace")        ? &a.ns
		                   : !strcmp(name, "address")        ? &a.address
		                   : !strcmp(name, "id")             ? &a.id
		                   : !strcmp(name, "bundle")         ? &a.bundle
		                   : !strcmp(name, "publish-binary") ? NULL
		                   : !strcmp(name, "socket")         ? NULL
		                                                     : NULL;
		if (!strcmp(name, "debug")) {
			a.debug = !eq || strcmp(v, "false");
			continue;
		}
		if (!strcmp(name, "info")) {
			a.info = true;
			continue;
		}
		if (!strcmp(name, "v") || !strcmp(name, "version")) {
			/* the Go shim library's layout, which tools parse */
			printf("containerd-shim-moon-v2:\n  Version:  %s\n  Revision: %s\n",
			       ms_version, ms_commit);
			return 0;
		}
		bool known = dst || !strcmp(name, "publish-binary") || !strcmp(name, "socket");
		if (!known) {
			fprintf(stderr, "containerd-shim-moon-v2: unknown flag -%s\n", name);
			return 2;
		}
		if (!v) {
			fprintf(stderr, "containerd-shim-moon-v2: -%s needs a value\n", name);
			return 2;
		}
		if (dst)
			*dst = v;
		a.ns_flag |= dst == &a.ns;
		if (!eq)
			i++;
	}
	if (a.info)
		return do_info();
	static bs_params bp; /* lives as long as the daemon */
	bs_parse(NULL, 0, NULL, NULL, &bp, NULL);
	a.bp = &bp;
	if (a.action && !strcmp(a.action, "start") && read_start_input(&a, &bp))
		return 1;
	if (!a.id) {
		fprintf(stderr, "containerd-shim-moon-v2: -id is required\n");
		return 2;
	}
	if (a.action && !strcmp(a.action, "start"))
		return do_start(&a);
	if (a.action && !strcmp(a.action, "delete"))
		return do_delete(&a);
	fprintf(stderr, "containerd-shim-moon-v2: action must be start or delete (containerd runs "
	                "the daemon itself "
	                "through start)\n");
	return 2;
}
