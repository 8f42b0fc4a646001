/* sha256.h — SHA-256 (FIPS 180-4) of a byte string, as hex (prefix sha256_):
 * containerd names a shim's socket by the hash of its address, namespace
 * and id, and a shim that names its socket the same way can be found by
 * `ctr shim` and by its sibling containers. */
#ifndef MOONSHIM_SHA256_H
#define MOONSHIM_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64

/* hex gets SHA256_HEX_LEN characters and a NUL. */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

#endif
