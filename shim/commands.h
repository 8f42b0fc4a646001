/* commands.h — the program's subcommands: each takes (argc, argv) with
 * argv[0] its own name and returns the exit status. */
#ifndef MOONSHIM_COMMANDS_H
#define MOONSHIM_COMMANDS_H

int cmd_watch(int argc, char **argv);

#endif
