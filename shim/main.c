/*
 * main.c — the moonshim program: one binary, subcommands.
 *   moonshim watch --cgroup PATH ...   (watch.c)
 * Later: run (an OCI bundle), and containerd-shim-moon-v2.
 */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
	fprintf(f, "usage: moonshim COMMAND [ARGS]\n"
	           "commands:\n"
	           "  watch   print a cgroup's events and samples as JSON lines\n"
	           "          (moonshim watch --help)\n");
}

int main(int argc, char **argv) {
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "watch"))
		return cmd_watch(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "moonshim: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
