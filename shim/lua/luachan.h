/*
 * luachan.h — channels for a world's scripts (prefix lc_):
 *
 *   local ch = chan(8)                 -- capacity 8; chan() is unbuffered
 *   go(function() for i = 1, 3 do ch:send(i) end ch:close() end)
 *   while true do
 *     local v, ok = ch:recv(5)         -- timeout in seconds, optional
 *     if not ok then break end         -- closed and drained (or "timeout")
 *   end
 *
 * send(v [, timeout]) → true, or false at the timeout (0: only if it can
 * go at once); recv([timeout]) → v, true | nil, false | nil, false,
 * "timeout"; close(); len(). Values stay Lua values (tables are shared,
 * not copied): channels connect the tasks of one world.
 */
#ifndef MOONSHIM_LUACHAN_H
#define MOONSHIM_LUACHAN_H

#include "luaworld.h"

/* Give w's scripts chan() (before loading them). */
void lc_open(lw_world *w);

#endif
