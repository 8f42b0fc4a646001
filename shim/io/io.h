/*
 * io.h — the shim's I/O plumbing on the runtime, the one header other
 * folders include: terminals (tty.h), log files (logfile.h), the event
 * stream (events.h), what a supervisor publishes (publish.h), the stderr tap and its line finder
 * (tap.h, linefind.h), outgoing TCP and HTTP (netconn.h, http.h), host commands (hostexec.h). io
 * uses base/, cgroup/ and runtime/; it knows nothing of containers (oci/) or of Lua.
 */
#ifndef MOONSHIM_IO_H
#define MOONSHIM_IO_H

#include "events.h"
#include "hostexec.h"
#include "http.h"
#include "linefind.h"
#include "logfile.h"
#include "netconn.h"
#include "publish.h"
#include "tap.h"
#include "tty.h"

#endif
