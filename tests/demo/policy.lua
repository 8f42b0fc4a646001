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

-- The Go watcher's findings: a goroutine leak names its site; the policy
-- tells, once per site (a real one might page someone, or restart the
-- service with container.restart()).
local told = {}
on("go.goroutine_leak", function(ev)
  if ev.subject ~= "workload" or told[ev.site or ev.kind] then return end
  told[ev.site or ev.kind] = true
  emit("policy.action", { action = "notify", reason = "goroutine leak", site = ev.site,
                          wait = ev.wait, count = ev.count, slope_per_min = ev.slope_per_min })
end)
