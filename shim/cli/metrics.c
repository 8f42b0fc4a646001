/*
 * metrics.c — `moonshim metrics`: the node's Prometheus exporter. It
 * serves GET /metrics (httpserve.h) with one scrape of every live
 * container under both state roots (mxcollect.c), in Prometheus' text
 * format or in OpenMetrics when the Accept field asks for it, until
 * SIGINT or SIGTERM.
 *
 *   moonshim [--root DIR] metrics [--listen ADDR:PORT] [--containerd-root DIR]
 *
 * It only reads what supervisors publish (publish.h) and their cgroups:
 * a scrape never talks to a shim, so it can neither slow nor block one.
 */
#define _GNU_SOURCE
#include "commands.h"
#include "mxcollect.h"

#include "rt.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct {
	const char *listen, *containerd_root;
	mx *m;
} metrics_args;

typedef struct {
	mx *m;
	ex_format f;
	size_t len;
} scrape_job;

static intptr_t scrape(void *arg) {
	scrape_job *j = arg;
	return (intptr_t)mx_scrape(j->m, j->f, &j->len);
}

static void handle(const hs_request *r, hs_response *out, void *arg) {
	metrics_args *a = arg;
	if (strcmp(r->path, MX_PATH)) {
		static const char msg[] = "not found: the metrics are at " MX_PATH "\n";
		out->status = 404;
		out->body = strdup(msg);
		out->len = out->body ? strlen(msg) : 0;
		return;
	}
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
		out->status = 405;
		out->allow = "GET, HEAD";
		return;
	}
	/* file reads from start to end: on the blocking pool, not on a P */
	scrape_job j = {a->m, ex_negotiate(r->accept), 0};
	out->body = (char *)rt_blocking(scrape, &j);
	out->len = j.len;
	if (!out->body) {
		out->status = 500;
		return;
	}
	out->content_type = ex_content_type(j.f);
}

static void log_line(const char *msg, void *arg) {
	fprintf(stderr, "moonshim metrics: %s\n", msg);
}

/* Park until SIGINT or SIGTERM arrives on a signalfd. */
static int wait_signal(void) {
	int fd = cli_stop_signalfd(), perr = 0;
	rt_pollfd *pd = fd >= 0 ? rt_poll_open(fd, &perr) : NULL;
	if (!pd) {
		fprintf(stderr, "moonshim metrics: signalfd: %s\n",
		        strerror(fd < 0 ? errno : -perr));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct signalfd_siginfo si;
	ssize_t r = rt_read(pd, &si, sizeof si, RT_FOREVER);
	rt_poll_close(pd);
	close(fd);
	return r == (ssize_t)sizeof si ? (int)si.ssi_signo : -1;
}

static int metrics_main(void *arg) {
	metrics_args *a = arg;
	ms_err err = {0};
	int fd = hs_listen(a->listen, &err);
	if (fd < 0) {
		fprintf(stderr, "moonshim metrics: %s\n", err.msg);
		return 1;
	}
	int port = hs_port(fd);
	hs_opts o = {.log = log_line};
	hs_server *s = hs_start(fd, handle, a, &o, &err);
	if (!s) {
		fprintf(stderr, "moonshim metrics: %s\n", err.msg);
		return 1;
	}
	fprintf(stderr, "moonshim metrics: serving %s on %s (port %d), roots %s and %s\n", MX_PATH,
	        a->listen, port, g_cli.root, a->containerd_root);
	int sig = wait_signal();
	hs_stop(s);
	return sig < 0 ? 1 : 0;
}

static void metrics_usage(FILE *f) {
	fprintf(
	    f,
	    "usage: moonshim [--root DIR] metrics [--listen ADDR:PORT] [--containerd-root DIR]\n"
	    "  --listen ADDR:PORT     where to serve %s (default %s; [::1]:PORT for IPv6;\n"
	    "                         port 0 picks a free one, printed on stderr)\n"
	    "  --containerd-root DIR  the containerd shims' publish root (default %s)\n"
	    "Every live container under --root (moonshim run's) and --containerd-root, in\n"
	    "Prometheus text format, or OpenMetrics when the Accept header asks for it.\n",
	    MX_PATH, MX_DEFAULT_LISTEN, PB_CONTAINERD_ROOT);
}

int cmd_metrics(int argc, char **argv) {
	static metrics_args a;
	a = (metrics_args){.listen = MX_DEFAULT_LISTEN, .containerd_root = PB_CONTAINERD_ROOT};
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (cli_global_option(argc, argv, &i))
			continue;
		if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
			metrics_usage(stdout);
			return 0;
		}
		bool known = !strcmp(opt, "--listen") || !strcmp(opt, "--containerd-root");
		if (!known || !val) {
			fprintf(stderr, "moonshim metrics: %s \"%s\"\n",
			        known ? "a value is needed after" : "unknown option", opt);
			metrics_usage(stderr);
			return 2;
		}
		*(opt[2] == 'l' ? &a.listen : &a.containerd_root) = val;
		i++;
	}
	if (!(a.m = mx_new(g_cli.root, a.containerd_root, stderr)))
		return 1;
	cli_block_stop_signals();
	signal(SIGPIPE, SIG_IGN);
	rt_config cfg = {.procs = 2};
	int rc = rt_main(&cfg, metrics_main, &a);
	mx_free(a.m);
	return rc;
}
