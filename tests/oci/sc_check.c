/*
 * sc_check.c — runs a command under a linux.seccomp profile compiled by
 * shim/oci/seccomp.c, the way the container's first process gets it: compiled in
 * the parent, installed in a forked child with no allocation, then exec.
 *
 *   sc_check PROFILE.json COMMAND [ARGS...]
 *
 * PROFILE.json is either a linux.seccomp object or a whole config.json (its
 * linux.seccomp is used). Exit status: 2 when the profile does not compile
 * (the message on stderr names the JSON path), 3 when seccomp(2) refuses
 * it, otherwise the command's status (128+N when killed by signal N).
 *
 * Build (from the repository root):
 *   make build/tests/sc_check
 */
#include "../../shim/oci/seccomp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* A message from the child, which may only use async-signal-safe calls
 * (strerror is not one): "PREFIX: errno N". */
static void child_say(const char *prefix, int code) {
	char num[16];
	int i = sizeof num;
	num[--i] = '\n';
	do
		num[--i] = (char)('0' + code % 10);
	while ((code /= 10) && i > 0);
	if (write(2, prefix, strlen(prefix)) < 0 || write(2, ": errno ", 8) < 0 ||
	    write(2, num + i, sizeof num - (size_t)i) < 0)
		return;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: sc_check PROFILE.json COMMAND [ARGS...]\n");
		return 2;
	}
	json_error_t jerr;
	json_t *root = json_load_file(argv[1], 0, &jerr);
	if (!root) {
		fprintf(stderr, "sc_check: %s:%d: %s\n", argv[1], jerr.line, jerr.text);
		return 2;
	}
	json_t *obj = root;
	const char *jpath = "seccomp";
	if (json_object_get(root, "linux")) {
		obj = json_object_get(json_object_get(root, "linux"), "seccomp");
		jpath = "linux.seccomp";
	}
	sc_program prog;
	ms_err err = {0};
	if (sc_compile(obj, jpath, &prog, &err)) {
		fprintf(stderr, "sc_check: %s: %s\n", argv[1], err.msg);
		json_decref(root);
		return 2;
	}
	json_decref(root);

	pid_t pid = fork();
	if (pid < 0) {
		perror("sc_check: fork");
		return 1;
	}
	if (pid == 0) {
		/* Unprivileged callers need no_new_privs for seccomp(2). */
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		int rc = sc_install(&prog);
		if (rc) {
			child_say("sc_check: seccomp(SECCOMP_SET_MODE_FILTER)", -rc);
			_exit(3);
		}
		execvp(argv[2], argv + 2);
		child_say("sc_check: exec failed", errno);
		_exit(127);
	}
	sc_free(&prog);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("sc_check: waitpid");
			return 1;
		}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
