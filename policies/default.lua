-- default.lua — the policy moonshim runs when none is given (it is compiled
-- into the binary). It acts on nothing by default: every step of the
-- graduated response is reported as what it *would* do ("dry_run": true),
-- so an operator sees the story before opting in with a policy of their
-- own. The ladder, one step per cooldown while memory stays short:
--   notify -> reclaim -> lower memory.high -> freeze -> (pre-kill hook) -> kill
-- and after a throttle it watches the outcome: memory.high can stall a
-- workload indefinitely, so a throttle with no progress moves on.
local dry_run = true
local cooldown = 5            -- seconds between steps
local ladder = { "notify", "reclaim", "lower-memory.high", "freeze", "kill" }
local step, last = 0, -math.huge

local function act(action, ev, extra)
  local f = extra or {}
  f.action, f.step, f.dry_run, f.trigger = action, step, dry_run, ev.type
  emit("policy.action", f)
  last = now()
end

local function escalate(ev)
  if now() - last < cooldown then return end
  step = math.min(step + 1, #ladder)
  local action = ladder[step]
  local m = cgroup.memory()
  local f = { current = m.current, high = m.high ~= math.huge and m.high or nil,
              max = m.max ~= math.huge and m.max or nil }
  if not dry_run then
    if action == "reclaim" then cgroup.reclaim(64 * 1024 * 1024)
    elseif action == "lower-memory.high" and m.high ~= math.huge then
      cgroup.set { memory_high = math.floor(m.high * 0.9) }
    elseif action == "freeze" then cgroup.freeze()
    elseif action == "kill" then cgroup.kill("KILL") end
  end
  act(action, ev, f)
end

on("memory.high", escalate)
on("memory.max", escalate)
on("oom_kill", function(ev) act("notify", ev, { oom_kill = ev.total and ev.total.oom_kill }) end)
on("health", function(ev)
  if ev.subject == "health" and ev.to == "unhealthy" then act("notify", ev, { reason = ev.reason }) end
end)
