/*
 * lwtest.h — what the Lua engine's tests share: a task's outcome as
 * lw_go's done callback reports it, and a channel that says it arrived.
 */
#ifndef MOONSHIM_TESTS_LWTEST_H
#define MOONSHIM_TESTS_LWTEST_H

#include "rt.h"

#include <stdio.h>

typedef struct {
	int rc;
	char msg[1024];
	rt_chan *done; /* an int is sent when the task has ended */
} result;

/* lw_go's done callback: fills the result (arg) and signals r->done. */
static inline void done_cb(void *arg, int rc, const char *msg) {
	result *r = arg;
	r->rc = rc;
	snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
	int one = 1;
	rt_chan_send(r->done, &one);
}

#endif
