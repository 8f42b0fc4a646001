/* sv_test.c — the supervisor as an object on a runtime (supervise.h), the
 * way the containerd task uses it: several sv's started from goroutines of
 * one runtime, each sv_wait giving its own process's status (128+N for a
 * signal), each exit reaching its event stream with the sv's name and a
 * policy given as Lua text (containerd's annotation) seeing it. */
#define _GNU_SOURCE
#include "harness.h"

#include "../../shim/supervise/supervise.h"
#include "rt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NPROCS 3

/* A child running `sh -c script`, with its pidfd. */
static ct_proc spawn(const char *script) {
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	CHECK(pidfd >= 0);
	return (ct_proc){.pid = pid, .pidfd = pidfd, .pty_master = -1};
}

static sv_opts opts_for(ct_proc *p, const char *name, ev_log *events) {
	return (sv_opts){.proc = p,
	                 .events = events,
	                 .out_fd = -1,
	                 .err_fd = -1,
	                 .go_err_fd = -1,
	                 .go_sink_fd = -1,
	                 .start_fd = -1,
	                 .name = name};
}

typedef struct {
	const char *script;
	int want;
	int got;
	rt_waitgroup *wg;
} one;

static void supervise_one(void *arg) {
	one *o = arg;
	ct_proc p = spawn(o->script);
	sv *s;
	ms_err err = {0};
	sv_opts so = opts_for(&p, "one", NULL);
	CHECKF(sv_start(&so, &s, &err) == 0, "sv_start: %s", err.msg);
	if (o->want == 128 + SIGKILL)
		syscall(SYS_pidfd_send_signal, p.pidfd, SIGKILL, NULL, 0);
	o->got = sv_wait(s);
	sv_free(s);
	close(p.pidfd);
	rt_wg_done(o->wg);
}

static int many_main(void *arg) {
	rt_waitgroup wg = RT_WAITGROUP_INIT;
	one ones[NPROCS] = {{.script = "sleep 0.3; exit 3", .want = 3},
	                    {.script = "exit 5", .want = 5},
	                    {.script = "sleep 10", .want = 128 + SIGKILL}};
	rt_wg_add(&wg, NPROCS);
	for (int i = 0; i < NPROCS; i++) {
		ones[i].wg = &wg;
		rt_go(supervise_one, &ones[i], "test supervisor");
	}
	rt_wg_wait(&wg);
	for (int i = 0; i < NPROCS; i++)
		CHECKF(ones[i].got == ones[i].want, "%s: status %d, want %d", ones[i].script,
		       ones[i].got, ones[i].want);
	return 0;
}

TEST(sv_several_supervisors_on_one_runtime_each_get_their_status) {
	run_rt(2, many_main, NULL);
}

static int events_main(void *arg) {
	const char *path = arg;
	ms_err err = {0};
	ev_log *ev = ev_open(path, "svtest", &err);
	CHECKF(ev, "ev_open: %s", err.msg);
	ct_proc p = spawn("sleep 0.2; exit 4");
	sv *s;
	sv_opts so = opts_for(&p, "svtest", ev);
	so.policy_name = "io.moonshim.policy";
	so.policy_src = "on('exit', function(ev) emit('policy.action', "
	                "{action = 'saw-exit', status = ev.exit_status}) end)";
	CHECKF(sv_start(&so, &s, &err) == 0, "sv_start: %s", err.msg);
	int status = sv_wait(s);
	sv_free(s);
	close(p.pidfd);
	ev_close(ev);
	CHECKF(status == 4, "status %d, want 4", status);
	return 0;
}

TEST(sv_exit_reaches_the_event_stream_and_an_inline_policy) {
	char path[] = "/tmp/moonshim-svtest.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	run_rt(1, events_main, path);
	FILE *f = fopen(path, "r");
	CHECK(f);
	char line[4096];
	bool exited = false, saw = false;
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, "\"type\":\"exit\"") && strstr(line, "\"exit_status\":4") &&
		    strstr(line, "\"id\":\"svtest\""))
			exited = true;
		if (strstr(line, "\"action\":\"saw-exit\"") && strstr(line, "\"status\":4"))
			saw = true;
	}
	fclose(f);
	unlink(path);
	CHECKF(exited, "no exit event with status 4 and id svtest in %s", path);
	CHECKF(saw, "the inline policy's policy.action for the exit is not in %s", path);
}
