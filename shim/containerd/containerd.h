/*
 * containerd.h — the containerd shim v2 (shimv2.c, task.c over ttrpc.c),
 * the one header other folders include: its entry point. The program's
 * main() (shim/main.c) runs it when called as containerd-shim-moon-v2;
 * containerd/ and cli/ never include each other.
 */
#ifndef MOONSHIM_CONTAINERD_H
#define MOONSHIM_CONTAINERD_H

/* containerd-shim-moon-v2 (the program under that name, argv[0]): the
 * start, delete and serve actions of a shim v2. Returns the exit status. */
int cmd_shim(int argc, char **argv);

#endif
