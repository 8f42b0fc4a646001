/*
 * task.h — containerd's task service (containerd.task.v2.Task) on a ttrpc
 * server (prefix task_): the containers of one shim, their processes (init
 * and execs), stdio, exits, cgroups and events.
 */
#ifndef MOONSHIM_TASK_H
#define MOONSHIM_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "ttrpc.h"

typedef struct task_service task_service;

/* publish(topic, type_url, encoded event) sends an event to containerd. */
typedef void (*task_publish_fn)(void *arg, const char *topic, const char *type_url,
                                const uint8_t *ev, size_t len);

typedef struct task_opts {
	const char *ns; /* containerd namespace */
	bool debug;
	task_publish_fn publish;
	void *publish_arg;
	/* Shutdown with no task left: the owner stops the server and exits. */
	void (*shutdown)(void *arg);
	void *shutdown_arg;
	/* the runtime options (rtopts.h): the policy and checks files for a
	 * container without the annotation (NULL: /etc/moonshim/...), and
	 * whether io.moonshim.go.* annotations are honoured */
	const char *default_policy, *default_checks;
	bool no_go_watch;
	/* containers' state is published under <publish_root>/<ns>/<id> (publish.h) */
	const char *publish_root;
} task_opts;

/* Register every Task method on s. Call in a goroutine, before tt_serve. */
task_service *task_service_new(tt_server *s, const task_opts *o);

#endif
