/*
 * version.h — what build this is (prefix ms_): the release the Makefile
 * names (VERSION) and the git commit it was built from, compiled into one
 * generated object ($(B)/gen/version.c) so a new commit relinks without
 * recompiling anything else.
 */
#ifndef MOONSHIM_VERSION_H
#define MOONSHIM_VERSION_H

extern const char ms_version[]; /* "0.13.0" */
extern const char ms_commit[];  /* "327ce48" ("-dirty" if the tree had changes), or "unknown" */

/* The OCI runtime spec version moonshim reads config.json as. */
#define MS_OCI_SPEC_VERSION "1.2.0"

#endif
