-- default.lua — the policy moonshim runs when none is given (it is compiled
-- into the binary, and runs when there is an event stream to tell). It acts
-- on nothing: the graduated response (policies/ladder.lua) runs as a dry
-- run, every step reported as what it *would* do ("dry_run": true), so an
-- operator sees the story before opting in with a policy of their own
-- (policies/memory-guard.lua is the same ladder, acting).
ladder { dry_run = true }

on("health", function(ev)
  if ev.subject == "health" and ev.to == "unhealthy" then
    emit("policy.action", { action = "notify", step = 0, dry_run = true, trigger = "health",
                            reason = ev.reason })
  end
end)

-- A goroutine leak is told in two stages (docs/go-watch.md §2.4):
-- "suspected" as soon as the count or a site grows, "confirmed" once the
-- growth has lasted and not levelled off (a pool warming up or a cache
-- filling never gets there), or at once from the runtime's goroutineleak
-- profile. The default acts only on confirmed ones, and only as a dry run;
-- a policy of its own may act on ev.stage == "suspected" too.
on("go.goroutine_leak", function(ev)
  if ev.subject == "workload" and ev.stage == "confirmed" then
    emit("policy.action", { action = "notify", step = 0, dry_run = true,
                            trigger = "go.goroutine_leak", reason = ev.detail })
  end
end)
