/*
 * bootstrap.h — what containerd writes on `start`'s stdin (prefix bs_):
 * containerd 2.3+ a protobuf BootstrapParams (instance id, namespace,
 * addresses, socket dir, and the runtime options as an extension); 1.6 to
 * 2.2 a protobuf google.protobuf.Any of the runtime options, or nothing.
 * The runtime options are a runtimeoptions.v1.Options whose TOML
 * (rtopts.h) becomes p->opts. Bounded: at most BS_STDIN_MAX bytes, a
 * config_path file at most RO_BODY_MAX.
 */
#ifndef MOONSHIM_BOOTSTRAP_H
#define MOONSHIM_BOOTSTRAP_H

#include "rtopts.h"

#include <stdint.h>

#define BS_STDIN_MAX (1024 * 1024)
#define BS_FIELD_MAX 256

typedef struct bs_params {
	bool bootstrap; /* BootstrapParams came (containerd 2.3+) */
	bool options;   /* runtime options came (opts is theirs) */
	char id[BS_FIELD_MAX], ns[BS_FIELD_MAX], containerd_version[BS_FIELD_MAX];
	char ttrpc_address[PATH_MAX], grpc_address[PATH_MAX], socket_dir[PATH_MAX];
	ro_options opts;
} bs_params;

/* Read fd to EOF into a new buffer (*out, *len; free it); -E2BIG past
 * BS_STDIN_MAX. An fd that is closed or a terminal reads as empty. */
int bs_read(int fd, uint8_t **out, size_t *len, ms_err *err);
/* Decode start's stdin. cli_id/cli_ns (the flags, may be NULL) tell a
 * BootstrapParams (whose id and namespace match them) from an Any. Bytes
 * that are neither are -EINVAL, "start: stdin (N bytes) is neither ...";
 * options that do not parse are ro_parse's error. p is set up either way. */
int bs_parse(const uint8_t *in, size_t len, const char *cli_id, const char *cli_ns, bs_params *p,
             ms_err *err);

#endif
