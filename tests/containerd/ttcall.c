/*
 * ttcall.c — a tiny containerd-side Task client: one method sent straight
 * to a running shim's ttrpc socket, as containerd sends it, for what ctr
 * cannot send (ctr has no task update) and for timing the shim's side of a
 * call. Works against any shim of the Task v2 API (moon and runc's).
 *   ttcall SOCKET update ID RESOURCES-JSON   UpdateTask with LinuxResources
 *   ttcall SOCKET stats ID [N]               N Stats calls (default 1)
 *   ttcall SOCKET state ID                   State
 * The namespace sent is $CONTAINERD_NAMESPACE, else "default".
 * Prints "METHOD: status CODE: MESSAGE" (the last call's); exits 0 when
 * every call answered OK, 1 otherwise, 2 on bad usage.
 */
#include "rt.h"

#include "../../shim/containerd/ttrpc.h"
#include "containerd/task.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_SVC      "containerd.task.v2.Task" /* TTCALL_SERVICE overrides it (2.x runc shim: v3) */
#define TIMEOUT_NS    (10 * 1000000000LL)
#define RESOURCES_URL "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
#define MAX_CALLS     10000000L
#define NS_ENV        "CONTAINERD_NAMESPACE" /* as ctr takes it */
#define NS_DEFAULT    "default"

typedef struct {
	const char *sock, *verb, *id, *arg;
} args;

static const char *metadata[] = {TT_NAMESPACE_KEY, NS_DEFAULT, NULL};

/* One call; the reply's size in *out_len; the status returned, msg filled. */
static int call(tt_client *c, const char *method, const ProtobufCMessage *m, size_t *out_len,
                char *msg, size_t msglen) {
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	protobuf_c_message_pack(m, buf);
	uint8_t *out = NULL;
	*out_len = 0;
	msg[0] = 0;
	const char *svc = getenv("TTCALL_SERVICE");
	int rc =
	    tt_call_sync(c, svc && *svc ? svc : TASK_SVC, method, buf, n,
	                 (const char *const *)metadata, TIMEOUT_NS, &out, out_len, msg, msglen);
	free(buf);
	free(out);
	return rc;
}

static int do_update(tt_client *c, const args *a) {
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = RESOURCES_URL;
	any.value.data = (uint8_t *)a->arg;
	any.value.len = strlen(a->arg);
	Containerd__Task__V2__UpdateTaskRequest r = CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
	r.id = (char *)a->id;
	r.resources = &any;
	char msg[TT_MSG_MAX + 1];
	size_t n;
	int rc = call(c, "Update", &r.base, &n, msg, sizeof msg);
	printf("Update: status %d: %s\n", rc, msg);
	return rc != TT_OK;
}

static int do_stats(tt_client *c, const args *a) {
	long calls = a->arg ? strtol(a->arg, NULL, 10) : 1;
	if (calls < 1 || calls > MAX_CALLS) {
		fprintf(stderr, "ttcall: stats N: N must be 1..%ld, not %s\n", MAX_CALLS, a->arg);
		return 2;
	}
	Containerd__Task__V2__StatsRequest r = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
	r.id = (char *)a->id;
	char msg[TT_MSG_MAX + 1];
	size_t n = 0;
	int rc = TT_OK;
	int64_t t0 = rt_now();
	for (long i = 0; i < calls && rc == TT_OK; i++)
		rc = call(c, "Stats", &r.base, &n, msg, sizeof msg);
	printf("Stats: status %d: %s (%ld calls, %zu bytes each, %.1f us per call)\n", rc, msg,
	       calls, n, (double)(rt_now() - t0) / 1000.0 / (double)calls);
	return rc != TT_OK;
}

static int do_state(tt_client *c, const args *a) {
	Containerd__Task__V2__StateRequest r = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
	r.id = (char *)a->id;
	char msg[TT_MSG_MAX + 1];
	size_t n;
	int rc = call(c, "State", &r.base, &n, msg, sizeof msg);
	printf("State: status %d: %s\n", rc, msg);
	return rc != TT_OK;
}

static int ttcall_main(void *p) {
	const args *a = p;
	ms_err err = {0};
	tt_client *c = tt_dial(a->sock, &err);
	if (!c) {
		fprintf(stderr, "ttcall: %s\n", err.msg);
		return 1;
	}
	int rc = !strcmp(a->verb, "update")  ? do_update(c, a)
	         : !strcmp(a->verb, "stats") ? do_stats(c, a)
	                                     : do_state(c, a);
	tt_client_close(c);
	return rc;
}

int main(int argc, char **argv) {
	bool ok = argc >= 4 && ((!strcmp(argv[2], "update") && argc == 5) ||
	                        (!strcmp(argv[2], "stats") && argc <= 5) ||
	                        (!strcmp(argv[2], "state") && argc == 4));
	if (!ok) {
		fprintf(stderr, "usage: ttcall SOCKET update ID RESOURCES-JSON | stats ID [N] | "
		                "state ID\n");
		return 2;
	}
	if (getenv(NS_ENV))
		metadata[1] = getenv(NS_ENV);
	args a = {argv[1], argv[2], argv[3], argc == 5 ? argv[4] : NULL};
	return rt_main(&(rt_config){.quiet_leaks = true}, ttcall_main, &a);
}
