/*
 * ttrpc.h — containerd's ttrpc (prefix tt_): unary calls over a unix socket,
 * the server containerd talks to and the client the shim forwards events
 * with. Everything runs on the runtime's netpoller: a reader goroutine per
 * connection, a goroutine per request, replies in any order.
 *
 * Wire format (containerd/ttrpc v1.1): a 10-byte header — u32 BE length of
 * the data (at most TT_MAX_FRAME), u32 BE stream id (odd, client-chosen),
 * u8 type (1 request, 2 response), u8 flags (0) — then a protobuf Request
 * or Response (shim/proto/ttrpc.proto). Success is a Response without a
 * status; errors are gRPC codes (tt_code) with a message.
 */
#ifndef MOONSHIM_TTRPC_H
#define MOONSHIM_TTRPC_H

#include "base.h"
#include "rt.h"

#include <stddef.h>
#include <stdint.h>

#define TT_MAX_FRAME     (4u << 20) /* ttrpc's messageLengthMax */
#define TT_NAMESPACE_KEY "containerd-namespace-ttrpc"

/* gRPC status codes, as containerd's errdefs maps them back. */
enum tt_code {
	TT_OK = 0,
	TT_CANCELED = 1,
	TT_UNKNOWN = 2,
	TT_INVALID_ARGUMENT = 3,
	TT_DEADLINE_EXCEEDED = 4,
	TT_NOT_FOUND = 5,
	TT_ALREADY_EXISTS = 6,
	TT_PERMISSION_DENIED = 7,
	TT_RESOURCE_EXHAUSTED = 8,
	TT_FAILED_PRECONDITION = 9,
	TT_ABORTED = 10,
	TT_OUT_OF_RANGE = 11,
	TT_UNIMPLEMENTED = 12,
	TT_INTERNAL = 13,
	TT_UNAVAILABLE = 14,
	TT_DATA_LOSS = 15,
	TT_UNAUTHENTICATED = 16,
};

/* ─── Server ───────────────────────────────────────────────────────────── */

typedef struct tt_server tt_server;

/* One request as its handler sees it; valid until the handler returns. */
typedef struct tt_call {
	const char *service, *method;
	const uint8_t *payload; /* the encoded request message */
	size_t len;
	int64_t deadline;       /* rt_now()-based, from timeout_nano; RT_FOREVER if none */
	const char *namespace_; /* metadata TT_NAMESPACE_KEY, NULL if absent */
	uint32_t stream;
	/* Closed when the connection ends or the server stops: a handler that
	 * waits (Wait for an exit) selects on it and gives up, as a Go handler
	 * watches ctx.Done(). Only receive from it. */
	rt_chan *done;
} tt_call;

/* A handler runs in its own goroutine per request, so it may block (Wait
 * can take hours) while other calls on the connection proceed. It returns a
 * status (TT_OK or a tt_code; anything else is sent as TT_UNKNOWN) and sets
 * either *out, *out_len to a malloc'd encoded reply (NULL/0 for Empty) or
 * *msg to a malloc'd error message (tt_fail does it). The server frees
 * both; a reply payload that comes with an error is dropped. */
typedef int (*tt_handler)(tt_call *c, void *arg, uint8_t **out, size_t *out_len, char **msg);

/* In a handler: `return tt_fail(msg, TT_NOT_FOUND, "container %s not created", id);`
 * The message is cut to TT_MSG_MAX bytes (ending "..."): a request field
 * quoted in it (a 3 MB id) must not come back as a 3 MB reply. */
#define TT_MSG_MAX 1024
int tt_fail(char **msg, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Told when a connection the server accepted ends: reason 0 the peer closed
 * it, -ECANCELED tt_server_stop, another -errno a read error. containerd
 * treats its connection closing as shim death, so the shim may want to
 * know. Runs on the connection's reader goroutine: do not block in it. */
typedef void (*tt_closed_fn)(void *arg, int reason);

tt_server *tt_server_new(void); /* NULL on ENOMEM */
/* Route service/method (fully qualified, e.g. "containerd.task.v2.Task",
 * "Create") to h. 0, -EEXIST or -ENOMEM. Register before tt_serve. */
int tt_register(tt_server *s, const char *service, const char *method, tt_handler h, void *arg);
void tt_server_on_close(tt_server *s, tt_closed_fn fn, void *arg);

/* Serve listen_fd (a listening unix stream socket, made non-blocking here,
 * still the caller's to close) until tt_server_stop; blocks the calling
 * goroutine. A peer whose SO_PEERCRED uid/gid differ from our euid/egid is
 * closed at once. Each connection gets a reader goroutine; replies are
 * written whole under a per-connection lock, in completion order; one
 * that cannot be written within 30 s ends the connection.
 *
 * Protocol errors answered on their stream, the connection kept: an even
 * stream id (InvalidArgument "StreamID must be odd"), a frame over
 * TT_MAX_FRAME (its bytes discarded, ResourceExhausted), data that is no
 * Request (InvalidArgument), an unknown service or method (Unimplemented
 * "service X" / "method X"). Frames of other types are ignored.
 *
 * Returns 0 once stopped, or a -errno the listener failed with (err says
 * which). */
int tt_serve(tt_server *s, int listen_fd, ms_err *err);

/* Stop accepting, end every connection — its read side is shut, its done
 * channel closes — and wait until tt_serve, the readers and every handler
 * have returned; replies of handlers still running go out before each
 * socket closes (so a Shutdown reply is delivered). Handlers must return
 * in bounded time once done is closed. Not from a handler (it would wait
 * for itself): a Shutdown handler tells the owner instead. */
void tt_server_stop(tt_server *s);
void tt_server_free(tt_server *s); /* after tt_server_stop, or if never served */

/* ─── Client ───────────────────────────────────────────────────────────── */

typedef struct tt_client tt_client;

/* Connect to a unix socket path (no unix:// prefix). NULL with err set. */
tt_client *tt_dial(const char *path, ms_err *err);

/* One call; any number may run at once from different goroutines (stream
 * ids 1, 3, 5, ..., a reader goroutine hands each response to its caller).
 * metadata: NULL or NULL-terminated key, value pairs (at most 16, else
 * -EINVAL). timeout_ns > 0 is sent as timeout_nano and bounds the wait
 * (plus a short grace, so the server's own DeadlineExceeded can arrive
 * first); 0 waits forever.
 * Returns the status (TT_OK or a tt_code) or -errno for transport errors
 * (-ETIMEDOUT, -EPIPE when the connection is gone, -EMSGSIZE, -EPROTO). A
 * request that cannot be written in time ends the connection (a torn
 * frame); after -EPIPE close the client and dial again.
 * The reply payload is malloc'd into *out (NULL/0 when empty or on error);
 * the status message, or a description of a transport error, goes into msg
 * (out and msg may be NULL). */
int tt_call_sync(tt_client *c, const char *service, const char *method, const uint8_t *req,
                 size_t len, const char *const *metadata, int64_t timeout_ns, uint8_t **out,
                 size_t *out_len, char *msg, size_t msglen);

/* Fail calls still waiting with -EPIPE, wait for them and the reader to
 * return, close the socket and free c. No call may start afterwards. */
void tt_client_close(tt_client *c);

#endif
