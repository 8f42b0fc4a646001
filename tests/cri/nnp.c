/* nnp.c — the CRI tests' "nonewprivs" image's entrypoint, installed
 * setuid root: it prints "Effective uid: N". Run as a non-root user, N is
 * 0 when the setuid bit took effect and the user's uid when
 * no_new_privs kept it from taking effect (critest's NoNewPrivs cases).
 * What must stay true: one line, exactly that format. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
	printf("Effective uid: %u\n", (unsigned)geteuid());
	return 0;
}
