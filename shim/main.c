/*
 * main.c — the moonshim program: one binary, two faces picked by argv[0].
 * Run as containerd-shim-moon-v2 it is containerd's shim v2
 * (containerd/); under any other name it is the runc-like command line
 * (cli/). The only file that includes both folders' headers.
 */
#include "base.h"
#include "commands.h"
#include "containerd.h"

#include <string.h>

/* containerd runs the runtime io.containerd.moon.v2 as this name */
#define SHIM_NAME "containerd-shim-moon-v2"

int main(int argc, char **argv) {
	mem_init();
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (!strcmp(base, SHIM_NAME))
		return cmd_shim(argc, argv);
	return cli_main(argc, argv);
}
