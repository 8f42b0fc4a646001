/* cgtest.c — what the cgroup tests that make real process trees share:
 * the host, a janitor process that cleans up after a case however it
 * dies, and opening/removing the case's cgroups (see cgtest.h). */
#define _GNU_SOURCE
#include "cgtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define MS 1000000LL

cg_host cgt_host;
static pid_t janitor;

int64_t mono_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void detect(void) {
	cg_err e = {0};
	CHECKF(cg_host_detect(&cgt_host, "/proc/self/mounts", &e) == 0, "%s", e.msg);
}

const char *top_rel(void) {
	static char rel[64];
	snprintf(rel, sizeof rel, "moonshim-test-%d", getpid());
	return rel;
}

/* Kill every process below dir (pass 0), or remove dir depth-first (pass 1). */
static void nuke(const char *dir, int pass) {
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		char sub[PATH_MAX];
		snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
		nuke(sub, pass);
	}
	closedir(d);
	if (pass == 0) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof path, "%s/cgroup.procs", dir);
		FILE *f = fopen(path, "r");
		int pid;
		while (f && fscanf(f, "%d", &pid) == 1)
			kill(pid, SIGKILL);
		if (f)
			fclose(f);
	} else {
		rmdir(dir);
	}
}

/* Remove moonshim-test-<pid> (and whatever is below it) everywhere. */
void clean_all(pid_t owner) {
	/* every hierarchy cg_open joins: the four, then the other v1 ones */
	const char *roots[4 + CG_V1_MORE] = {cgt_host.unified, cgt_host.v1_memory, cgt_host.v1_cpu,
	                                     cgt_host.v1_pids};
	for (int i = 0; i < CG_V1_MORE; i++)
		roots[4 + i] = cgt_host.v1_more[i];
	int64_t deadline = mono_ns() + 10000 * MS;
	for (;;) {
		bool left = false;
		for (int i = 0; i < 4 + CG_V1_MORE; i++) {
			if (!roots[i][0])
				continue;
			char dir[PATH_MAX + 64], path[PATH_MAX + 96];
			snprintf(dir, sizeof dir, "%s/moonshim-test-%d", roots[i], (int)owner);
			if (access(dir, F_OK) != 0)
				continue;
			snprintf(path, sizeof path, "%s/cgroup.kill", dir);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				if (write(fd, "1", 1) != 1) {
				}
				close(fd);
			}
			nuke(dir, 0);
			nuke(dir, 1);
			left = left || access(dir, F_OK) == 0;
		}
		if (!left || mono_ns() > deadline)
			return;
		usleep(10000);
	}
}

/* A process that cleans up after this case when it dies, however it dies. */
void start_janitor(void) {
	pid_t owner = getpid();
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	fflush(NULL);
	janitor = fork();
	CHECK(janitor >= 0);
	if (janitor == 0) {
		/* hold no pipe of the runner's open (it would wait for our EOF) */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		prctl(PR_SET_PDEATHSIG, SIGUSR1);
		if (getppid() == owner) {
			int sig;
			sigwait(&s, &sig);
		}
		clean_all(owner);
		_exit(0);
	}
	sigprocmask(SIG_UNBLOCK, &s, NULL);
}

void stop_janitor(void) {
	kill(janitor, SIGKILL);
	waitpid(janitor, NULL, 0);
}

cg *open_cg(const char *name, bool create) {
	cg_err e = {0};
	char rel[128];
	snprintf(rel, sizeof rel, "%s%s%s", top_rel(), name[0] ? "/" : "", name);
	cg *c = cg_open(&cgt_host, rel, create, &e);
	CHECKF(c, "%s", e.msg);
	return c;
}

/* cg_remove, waiting out a short EBUSY (the last exits being accounted). */
void remove_cg(cg *c) {
	cg_err e = {0};
	int rc;
	for (int i = 0; i < 200 && (rc = cg_remove(c, &e)) == -EBUSY; i++)
		usleep(10000);
	CHECKF(rc == 0, "%s", e.msg);
	cg_close(c);
}

void remove_top(void) {
	remove_cg(open_cg("", false));
}
