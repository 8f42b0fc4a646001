/* cg_internal.h — helpers shared by the cgroup module's files. */
#ifndef MOONSHIM_CG_INTERNAL_H
#define MOONSHIM_CG_INTERNAL_H

#include "cgroup.h"

void cg__err(cg_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Is `word` one of the `sep`-separated items of `list`? */
bool cg__has_word(const char *list, char sep, const char *word);

#endif
