/*
 * oci.h — OCI container creation, the one header other folders include:
 * the bundle's spec (spec.h, prefix spec_), making the container and its
 * processes (container.h, ct_: namespaces, rootfs, devices, seccomp,
 * loopback), its cgroups (ctcg.h) and their device rules (devices.h), the
 * seccomp filter (seccomp.h), the spec's OCI hooks (hooks.h, oh_). ct_internal.h stays inside this
 * folder. oci uses base/ and cgroup/ only, never the runtime directly: its calls are made
 * single-threaded (spawn/ runs them from goroutines).
 */
#ifndef MOONSHIM_OCI_H
#define MOONSHIM_OCI_H

#include "container.h"
#include "ctcg.h"
#include "devices.h"
#include "features.h"
#include "hooks.h"
#include "seccomp.h"
#include "spec.h"

#endif
