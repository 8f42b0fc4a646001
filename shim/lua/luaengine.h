/*
 * luaengine.h — the Lua engine, the one header other folders include
 * (named so, not lua.h, which is Lua's own): a world per container on the
 * runtime (luaworld.h, prefix lw_), the libraries scripts get (luaapi.h,
 * la_; channels luachan.h), health checks (checks.h, health.h) and
 * policies (policy.h). lua uses base/, oci/, io/, spawn/ and go/; the
 * supervisors above wire it to a container.
 */
#ifndef MOONSHIM_LUAENGINE_H
#define MOONSHIM_LUAENGINE_H

#include "checks.h"
#include "health.h"
#include "luaapi.h"
#include "luachan.h"
#include "luaworld.h"
#include "policy.h"

#endif
