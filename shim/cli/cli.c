/*
 * cli.c — moonshim's command line: runc-like subcommands, picked by name.
 *   run, exec, state, kill, ps, list, delete   containers (run.c, ctl.c)
 *   watch                                      a cgroup's events (watch.c)
 *   metrics                                    the Prometheus exporter (metrics.c)
 *   inspect, events, top                       what supervisors publish
 *                                              (inspect.c, eventscmd.c, top.c)
 * The program's main() (shim/main.c) calls cli_main unless it was started
 * as containerd's shim. Also what the commands share: the global options
 * and the signals that end a long-running one.
 */
#include "base.h"
#include "commands.h"
#include "state.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>

cli_global g_cli = {.root = ST_DEFAULT_ROOT};

static void stop_signals(sigset_t *sigs) {
	sigemptyset(sigs);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGTERM);
}

void cli_block_stop_signals(void) {
	sigset_t sigs;
	stop_signals(&sigs);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
}

int cli_stop_signalfd(void) {
	sigset_t sigs;
	stop_signals(&sigs);
	return signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
}

bool cli_global_option(int argc, char **argv, int *i) {
	if (!strcmp(argv[*i], "--root") && *i + 1 < argc) {
		g_cli.root = argv[++*i];
		return true;
	}
	if (!strncmp(argv[*i], "--root=", 7)) {
		g_cli.root = argv[*i] + 7;
		return true;
	}
	if (!strcmp(argv[*i], "--debug")) {
		g_cli.debug = true;
		return true;
	}
	return false;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
    {"run", cmd_run, "run an OCI bundle as a container (moonshim run --help)"},
    {"exec", cmd_exec, "run a process in a running container"},
    {"state", cmd_state, "print a container's state as JSON"},
    {"kill", cmd_kill, "send a signal to a container's init (--all: every process)"},
    {"ps", cmd_ps, "list a container's processes"},
    {"list", cmd_list, "list the containers under the state root"},
    {"delete", cmd_delete, "remove a stopped container (--force: kill it first)"},
    {"watch", cmd_watch, "print a cgroup's events and samples as JSON lines"},
    {"metrics", cmd_metrics, "serve every container's metrics to Prometheus (/metrics)"},
    {"inspect", cmd_inspect, "what containers' supervisors last published, as JSON"},
    {"events", cmd_events, "the containers' events, merged by time (--follow)"},
    {"top", cmd_top, "a live view of every container (q quits; --once)"},
};

static void usage(FILE *f) {
	fprintf(f, "usage: moonshim [--root DIR] [--debug] COMMAND [ARGS]\n"
	           "       moonshim --version\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].help);
}

int cli_main(int argc, char **argv) {
	int i = 1;
	while (i < argc && cli_global_option(argc, argv, &i))
		i++;
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	for (size_t k = 0; k < sizeof commands / sizeof *commands; k++)
		if (!strcmp(cmd, commands[k].name))
			return commands[k].fn(argc - i, argv + i);
	if (!strcmp(cmd, "-v") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("moonshim version %s\ncommit: %s\nspec: %s\n", ms_version, ms_commit,
		       MS_OCI_SPEC_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "moonshim: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}
