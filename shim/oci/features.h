/*
 * features.h — what moonshim really implements of the OCI runtime spec, as
 * the runtime-spec "features" document (prefix oci_features_): the one
 * table `containerd-shim-moon-v2 -info` reports (containerd 2.0+ reads it:
 * the CRI offers user namespaces only when it lists the user namespace and
 * mountExtensions.idmap; task creation refuses idmap mounts it does not
 * list). Must stay true: every entry is something spec.c accepts and
 * container.c does; a feature that lands flips its one line in features.c.
 */
#ifndef MOONSHIM_OCI_FEATURES_H
#define MOONSHIM_OCI_FEATURES_H

#include <jansson.h>
#include <stdbool.h>

/* The features document (runtime-spec specs-go/features.Features as JSON),
 * a new reference; NULL on ENOMEM. */
json_t *oci_features(void);

#endif
