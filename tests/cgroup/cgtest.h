/* cgtest.h — helpers shared by the cgroup tests that build real process
 * trees (actions_test.c, errors_test.c). Every case's cgroups live under
 * moonshim-test-<pid>; a janitor process removes them, and kills what is
 * left in them, when the case ends however it ends. */
#ifndef MOONSHIM_CGTEST_H
#define MOONSHIM_CGTEST_H

#include "harness.h"

#include "cgroup.h"

extern cg_host cgt_host; /* filled by detect() */

int64_t mono_ns(void);
void detect(void);
const char *top_rel(void);   /* "moonshim-test-<pid>" */
void clean_all(pid_t owner); /* kill and remove moonshim-test-<owner> everywhere */
void start_janitor(void);
void stop_janitor(void);
cg *open_cg(const char *name, bool create); /* top_rel()/name ("" for the top) */
void remove_cg(cg *c);                      /* cg_remove (waiting out EBUSY), cg_close */
void remove_top(void);

#endif
