/*
 * ttrpc_fuzz.c — the protobuf messages a containerd shim takes from its
 * peer: ttrpc's envelope (Request, which shim/containerd/ttrpc.c's dispatch unpacks
 * from every request frame, and Response, which its client unpacks) and
 * every message of containerd's task API (shim/containerd/proto, unpacked by
 * shim/containerd/shimv2.c's handlers), through the protobuf-c code protoc-c
 * generates from shim/containerd/proto. The first byte picks the message; the rest is
 * its encoding. Must hold: no crash, leak or undefined behaviour; a
 * message that unpacks passes protobuf_c_message_check, packs to
 * get_packed_size bytes, and that packing unpacks again and packs to the
 * same bytes (a round trip is stable).
 *
 * Except for one thing protobuf-c itself does: it keeps an unknown field
 * whose tag was written as a padded varint ("82 00": field 0) and packs it
 * back as a plain "02", which it then refuses (field number 0). A message
 * carrying unknown fields is only checked to pack and to be freed.
 *
 * Not covered here: the 10-byte frame header, the frame reader (ttrpc.c's
 * read_frame, fill, discard) and the server's per-connection loop and
 * dispatch, which read a socket on the netpoller: ttframe_fuzz.c feeds
 * them raw bytes on a live connection of the real server.
 */
#include "fuzz.h"

#include "containerd/task.pb-c.h"
#include "ttrpc.pb-c.h"

static const ProtobufCMessageDescriptor *const messages[] = {
    &ttrpc__request__descriptor,
    &ttrpc__response__descriptor,
    &containerd__task__v2__create_task_request__descriptor,
    &containerd__task__v2__create_task_response__descriptor,
    &containerd__task__v2__delete_request__descriptor,
    &containerd__task__v2__delete_response__descriptor,
    &containerd__task__v2__exec_process_request__descriptor,
    &containerd__task__v2__resize_pty_request__descriptor,
    &containerd__task__v2__state_request__descriptor,
    &containerd__task__v2__state_response__descriptor,
    &containerd__task__v2__kill_request__descriptor,
    &containerd__task__v2__close_iorequest__descriptor,
    &containerd__task__v2__pids_request__descriptor,
    &containerd__task__v2__pids_response__descriptor,
    &containerd__task__v2__checkpoint_task_request__descriptor,
    &containerd__task__v2__update_task_request__descriptor,
    &containerd__task__v2__start_request__descriptor,
    &containerd__task__v2__start_response__descriptor,
    &containerd__task__v2__wait_request__descriptor,
    &containerd__task__v2__wait_response__descriptor,
    &containerd__task__v2__stats_request__descriptor,
    &containerd__task__v2__stats_response__descriptor,
    &containerd__task__v2__connect_request__descriptor,
    &containerd__task__v2__connect_response__descriptor,
    &containerd__task__v2__shutdown_request__descriptor,
    &containerd__task__v2__pause_request__descriptor,
    &containerd__task__v2__resume_request__descriptor,
};
#define NMESSAGES (sizeof messages / sizeof *messages)

static uint8_t *pack(const ProtobufCMessage *m, size_t *n) {
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(*n ? *n : 1);
	if (!b)
		abort();
	FUZZ_CHECK(protobuf_c_message_pack(m, b) == *n);
	return b;
}

/* Any unknown field in m or in the messages it holds? */
static int has_unknown(const ProtobufCMessage *m) {
	if (m->n_unknown_fields)
		return 1;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *at = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;
			for (size_t k = 0; k < n; k++)
				if (has_unknown(v[k]))
					return 1;
		} else {
			const ProtobufCMessage *v = *(const ProtobufCMessage *const *)at;
			if (v && has_unknown(v))
				return 1;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (!size)
		return 0;
	const ProtobufCMessageDescriptor *d = messages[data[0] % NMESSAGES];
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
	if (!m)
		return 0;
	FUZZ_CHECK(protobuf_c_message_check(m));
	if (d == &ttrpc__request__descriptor) { /* what dispatch reads */
		const Ttrpc__Request *r = (const Ttrpc__Request *)m;
		FUZZ_CHECK(r->service && r->method);
		for (size_t i = 0; i < r->n_metadata; i++)
			FUZZ_CHECK(r->metadata[i] && r->metadata[i]->key && r->metadata[i]->value);
	}
	size_t n1, n2;
	uint8_t *b1 = pack(m, &n1);
	if (has_unknown(m)) {
		free(b1);
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, n1, b1);
	FUZZ_CHECK(m2 != NULL);
	uint8_t *b2 = pack(m2, &n2);
	FUZZ_CHECK(n1 == n2 && !memcmp(b1, b2, n1));
	free(b1);
	free(b2);
	protobuf_c_message_free_unpacked(m2, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
