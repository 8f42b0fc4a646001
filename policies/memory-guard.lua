-- memory-guard.lua — graduated response to memory pressure: each time the
-- container crosses memory.high, reclaim; if it stays above 90% of
-- memory.max, lower memory.high a step (throttling it further); a cooldown
-- keeps one action per interval. Actions go to the event stream as
-- "policy.action".
--   moonshim run --policy policies/memory-guard.lua ID
local cooldown = 2          -- seconds between actions
local step = 16 * 1024 * 1024
local last = -math.huge

local function act(action, fields)
  fields = fields or {}
  fields.action = action
  emit("policy.action", fields)
  last = now()
end

on("memory.high", function(ev)
  if now() - last < cooldown then return end
  local m = cgroup.memory()
  local ok = cgroup.reclaim(step)
  if m.max ~= math.huge and m.current > 0.9 * m.max and m.high ~= math.huge then
    local new_high = math.max(m.high - step, step)
    cgroup.set { memory_high = new_high }
    act("lower-memory.high", { from = m.high, to = new_high, current = m.current })
  else
    act("reclaim", { bytes = step, reclaimed = ok, current = m.current })
  end
end)

on("oom_kill", function(ev)
  act("notify", { reason = "the kernel OOM-killed a process", oom_kill = ev.total and ev.total.oom_kill })
end)
