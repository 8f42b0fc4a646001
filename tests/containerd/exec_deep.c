/*
 * exec_deep.c — a containerd client's Exec whose process spec nests 800
 * arrays, sent straight to a running shim over ttrpc (ctr builds the spec
 * itself and cannot send one): the shim must answer InvalidArgument naming
 * the depth (its JSON parser recursed per level on a goroutine stack and
 * the shim died, the task lost) and go on answering State for the task.
 *   exec_deep SOCKET TASK-ID
 * Prints what it saw; exits 0 when both held.
 */
#include "rt.h"

#include "../../shim/containerd/ttrpc.h"
#include "containerd/task.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_SVC    "containerd.task.v2.Task"
#define DEPTH       800
#define TIMEOUT_NS  (5 * 1000000000LL)
#define PROCESS_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"

typedef struct {
	const char *sock, *id;
} args;

static int call(tt_client *c, const char *method, const ProtobufCMessage *m, char *msg,
                size_t msglen) {
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	protobuf_c_message_pack(m, buf);
	uint8_t *out = NULL;
	size_t out_len = 0;
	int rc = tt_call_sync(c, TASK_SVC, method, buf, n, NULL, TIMEOUT_NS, &out, &out_len, msg,
	                      msglen);
	free(buf);
	free(out);
	return rc;
}

static int deep_main(void *p) {
	args *a = p;
	ms_err err = {0};
	tt_client *c = tt_dial(a->sock, &err);
	if (!c) {
		fprintf(stderr, "exec_deep: %s\n", err.msg);
		return 1;
	}
	char *spec = malloc(2 * DEPTH + 64);
	int n = sprintf(spec, "{\"args\": [\"true\"], \"cwd\": \"/\", \"x\": ");
	memset(spec + n, '[', DEPTH);
	memset(spec + n + DEPTH, ']', DEPTH);
	strcpy(spec + n + 2 * DEPTH, "}");
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = PROCESS_URL;
	any.value.data = (uint8_t *)spec;
	any.value.len = strlen(spec);
	Containerd__Task__V2__ExecProcessRequest ex =
	    CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
	ex.id = (char *)a->id;
	ex.exec_id = "deep";
	ex.spec = &any;
	char msg[1024] = "";
	int rc = call(c, "Exec", &ex.base, msg, sizeof msg);
	printf("Exec: status %d: %s\n", rc, msg);
	int bad = !(rc == TT_INVALID_ARGUMENT && strstr(msg, "JSON nested deeper than 64 levels"));
	free(spec);
	Containerd__Task__V2__StateRequest st = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
	st.id = (char *)a->id;
	msg[0] = 0;
	rc = call(c, "State", &st.base, msg, sizeof msg);
	printf("State after it: status %d %s\n", rc, msg);
	bad |= rc != TT_OK;
	tt_client_close(c);
	return bad;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: exec_deep SOCKET TASK-ID\n");
		return 2;
	}
	args a = {argv[1], argv[2]};
	return rt_main(&(rt_config){.quiet_leaks = true}, deep_main, &a);
}
