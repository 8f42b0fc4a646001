/* commands.h — the command line's subcommands (the cli/ folder's one public
 * header): each takes (argc, argv) with argv[0] its own name and returns
 * the exit status. cli/ and containerd/ never include each other. */
#ifndef MOONSHIM_COMMANDS_H
#define MOONSHIM_COMMANDS_H

#include <stdbool.h>

/* Options every command takes, before or after its name (as runc's). */
typedef struct cli_global {
	const char *root; /* --root: the state directory, default /run/moonshim */
	bool debug;       /* --debug: trace what moonshim does on stderr */
} cli_global;
extern cli_global g_cli;

/* If argv[*i] is a global option, take it (and its value) and return true. */
bool cli_global_option(int argc, char **argv, int *i);

/* The signals that end a long-running command (watch, metrics): SIGINT and
 * SIGTERM. cli_block_stop_signals blocks them in the calling thread, before
 * rt_main (every thread inherits the mask), so they arrive only on the
 * non-blocking, close-on-exec signalfd cli_stop_signalfd returns (-1 and
 * errno when it cannot be had). */
void cli_block_stop_signals(void);
int cli_stop_signalfd(void);

int cmd_watch(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_state(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_top(int argc, char **argv);
/* moonshim [--root DIR] [--debug] COMMAND [ARGS]: the global options, then
 * the command named; usage and 2 on an unknown one. */
int cli_main(int argc, char **argv);

#endif
