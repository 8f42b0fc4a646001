/* cg_internal.h — what the cgroup module's files share. */
#ifndef MOONSHIM_CG_INTERNAL_H
#define MOONSHIM_CG_INTERNAL_H

#include "cgroup.h"

#include <pthread.h>

/* The hierarchies a cgroup lives in. On v2 only CG_TREE_UNIFIED is set;
 * on hybrid hosts the v1 ones follow, the cg_v1_hier ones from
 * CG_TREE_MORE on (co-mounted ones share a directory). */
enum { CG_TREE_UNIFIED = 0, CG_TREE_MEMORY, CG_TREE_CPU, CG_TREE_PIDS, CG_TREE_MORE };
#define CG_NTREES       (CG_TREE_MORE + CG_V1_MORE)
#define CG_TREE_CPUSET  (CG_TREE_MORE + CG_V1_CPUSET)
#define CG_TREE_CPUACCT (CG_TREE_MORE + CG_V1_CPUACCT)
#define CG_TREE_BLKIO   (CG_TREE_MORE + CG_V1_BLKIO)
#define CG_TREE_HUGETLB (CG_TREE_MORE + CG_V1_HUGETLB)

#define CG_MAX_FILES 48

typedef struct {
	char name[64];
	int tree, fd;
} cg_file;

struct cg {
	cg_layout layout;
	char dirs[CG_NTREES][PATH_MAX]; /* "" where the cgroup has no directory */
	char unified_root[PATH_MAX];
	pthread_mutex_t lock; /* guards files[]: reads come from any goroutine */
	cg_file files[CG_MAX_FILES];
	int nfiles;
	bool killed;     /* cgroup.kill was written through this handle */
	bool hugetlb_v2; /* the v2 root offers hugetlb (hybrid: used when v1 lacks it) */
};

void cg__err(cg_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Is `word` one of the `sep`-separated items of `list`? */
bool cg__has_word(const char *list, char sep, const char *word);

/* pread the whole kept-open file into buf (NUL-ended); length or -errno. */
ssize_t cg__read(cg *c, int tree, const char *file, char *buf, size_t n, cg_err *err);
/* One integer file ("max" reads as CG_NOLIMIT). */
int cg__read_int(cg *c, int tree, const char *file, int64_t *v, cg_err *err);
/* Open, write, close; the error names the file and the value. */
int cg__write(cg *c, int tree, const char *file, const char *val, cg_err *err);
/* Is the cgroup's unified directory gone? */
bool cg__removed(const cg *c);
/* The tree that holds a controller's files on this cgroup's host. */
int cg__tree_for(const cg *c, unsigned controller);
/* An fd of our own (not the shared cache), for a watcher or a trigger. */
int cg__open(cg *c, int tree, const char *file, int flags, cg_err *err);

/* ─── The watcher's shared parts (watch.c), used by the PSI loop (psi.c) */

#define CG_WATCH_MAX_PSI 16
#define CG_WATCH_MAX_PDS (CG_WATCH_MAX_PSI + 4)

struct cg_watch {
	cg *c;
	rt_chan *out;
	rt_chan *done; /* closed by cg_watch_stop: every wait below selects on it */
	void *tag;
	bool local;
	rt_waitgroup wg;
	rt_mutex mu; /* guards stopping and pds */
	bool stopping;
	rt_pollfd *pds[CG_WATCH_MAX_PDS];
	int npds;
	/* cgroup.events as cg_watch_start read it (-1: absent): events_loop's
	 * baseline, so a change after cg_watch_start returns is reported even
	 * if that goroutine first reads the file later */
	int64_t populated0, frozen0;
};

/* Register a goroutine's pd so cg_watch_stop can evict it; false when the
 * watcher is stopping (the goroutine should end). */
bool cg__watch_track(cg_watch *w, rt_pollfd *pd);
/* Forget and close pd and its fd (the owning goroutine, on its way out). */
void cg__watch_close(cg_watch *w, rt_pollfd *pd);
/* Send ev (stamped with the tag); false when the watcher is stopping. */
bool cg__watch_emit(cg_watch *w, cg_event *ev);
/* Sleep until deadline; false when the watcher is stopping. */
bool cg__watch_sleep_until(cg_watch *w, int64_t deadline);
/* An ERROR / NOTICE / GONE event with a message. */
bool cg__watch_say(cg_watch *w, cg_event_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct {
	cg_watch *w;
	cg_psi_spec spec;
} cg__psi_arg;
void cg__psi_loop(void *arg); /* a goroutine; frees arg */

#endif
