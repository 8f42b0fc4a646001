-- The demo's policy: the graduated response (policies/ladder.lua), acting,
-- tuned to the demo's sizes so its steps show within seconds. The driver
-- holds 200 MiB of the 256 MiB memory.max (78%, above level 0.7) for a few
-- seconds: the ladder notifies, tries to reclaim (anonymous memory without
-- swap: nothing to take), lowers memory.high; the driver frees the memory,
-- the ladder judges the throttle "held", and after a calm period puts
-- memory.high back. Push it further (curl .../alloc?mb=200 twice) and it
-- freezes, then kills the service before the OOM killer would.
ladder { dry_run = false, level = 0.7, cooldown = 2, watch = 6, calm = 5,
         pre_kill = function(state)
           log("about to kill the service: memory.current " .. state.current)
         end }
