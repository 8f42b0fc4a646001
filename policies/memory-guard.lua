-- memory-guard.lua — the graduated response to a memory shortage, acting:
-- notify -> reclaim -> lower memory.high -> freeze -> pre-kill hook -> kill,
-- one step per cooldown while memory.current stays above 90% of its limit
-- (or memory pressure lasts), each throttle judged `watch` seconds later
-- (policies/ladder.lua says how). Steps and outcomes go to the event stream
-- as "policy.action" and "policy.outcome".
--   moonshim run --policy policies/memory-guard.lua ID
ladder {
  dry_run = false,
  level = 0.9,     -- short: memory.current at 90% of the limit
  pressure = 20,   -- ... or 20% of the time stalled on memory
  duration = 5,    -- ... for 5 s
  cooldown = 2,    -- seconds between steps
  watch = 4,       -- seconds before a throttle's outcome is judged
  -- before the kill: tell someone (the state arrives as JSON on stdin)
  pre_kill = { "logger", "-t", "moonshim", "memory-guard: killing the container" },
}
