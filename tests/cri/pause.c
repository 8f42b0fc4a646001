/* pause.c — the CRI tests' pod sandbox process (the "pause" image's only
 * binary, built static): it holds the pod's namespaces by sleeping in
 * sigsuspend() (pause() without its lost-wakeup race), reaps every child that is reparented to it
 * (it is PID 1 of the pod's PID namespace when the pod shares one), and exits 0 on SIGINT or
 * SIGTERM. What must stay true: it never busy-loops, never leaves a zombie,
 * and needs nothing from its rootfs (no libc files, no /etc). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) {
	(void)sig;
	stop = 1;
}

static void on_child(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int handle(int sig, void (*fn)(int)) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = sig == SIGCHLD ? SA_NOCLDSTOP | SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("moonshim-test-pause");
		return 0;
	}
	if (handle(SIGINT, on_stop) || handle(SIGTERM, on_stop) || handle(SIGCHLD, on_child)) {
		perror("pause: sigaction");
		return 1;
	}
	/* the signals stay blocked except inside sigsuspend, so one that
	 * arrives between the test and the wait is not lost */
	sigset_t block, wait_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGCHLD);
	while (!stop)
		sigsuspend(&wait_mask);
	return 0;
}
