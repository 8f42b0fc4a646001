-- ladder.lua — the graduated response to a memory shortage, as a library
-- for policies (compiled into moonshim and loaded before them):
--
--   ladder { dry_run = false, level = 0.9, cooldown = 5 }
--
-- One step at a time, a cooldown after each, while the container stays
-- short of memory:
--   notify -> reclaim -> lower memory.high -> freeze -> pre-kill hook -> kill
-- "Short" is memory.current at or above `level` of its limit (memory.max;
-- without one, the memory.high it had before the ladder lowered it), or
-- memory pressure ("some") of `pressure` percent lasting `duration` seconds.
--
-- The ladder watches what its throttles do. memory.high never kills: it
-- makes the workload reclaim, and a workload that cannot shrink stalls
-- there indefinitely. So `watch` seconds after lowering memory.high or
-- freezing, it looks again: all tasks stalled on memory ("full" pressure
-- avg10 at or above `stall`) or still short -> the next step; memory back
-- under the level -> the throttle held (and a freeze is thawed). After
-- `calm` seconds without a shortage, memory.high goes back to what it was
-- and the ladder starts from the bottom again.
--
-- Every step is an event "policy.action" {action, step, dry_run, reason,
-- current, limit}; every look after a throttle an event "policy.outcome"
-- {after, result = "held"|"no progress"|"stalled", ...}. With dry_run
-- (the default) it only reports what it would do.
--
-- pre_kill: a Lua function(state) or a command { "cmd", "arg", ... } (run
-- on the host with the state as JSON on stdin) called before the kill.

local STEPS = { "notify", "reclaim", "lower-memory.high", "freeze", "pre-kill", "kill" }

function ladder(o)
  o = o or {}
  local cfg = {
    dry_run = o.dry_run ~= false,
    level = o.level or 0.9,
    pressure = o.pressure or 20,
    duration = o.duration or 5,
    cooldown = o.cooldown or 5,
    watch = o.watch or o.cooldown or 5,
    stall = o.stall or 60,
    calm = o.calm or 30,
    reclaim = o.reclaim or 64 * 1024 * 1024,
    high_share = o.high_share or 0.9, -- lower memory.high to this share of usage
    pre_kill = o.pre_kill,
  }
  local step, last = 0, -math.huge
  local saved_high, frozen = nil, false -- what to undo
  local pressured_at, calm_since = -math.huge, nil
  local watching = nil                  -- the throttle being watched: {action, at}

  local function finite(v) return v ~= nil and v ~= math.huge and v or nil end

  -- the hard limit; memory.high (as it was before the ladder lowered it)
  -- only when there is none: going past memory.high is throttling, which
  -- the ladder judges by its outcome, not a shortage in itself
  local function limit_of(m)
    return finite(m.max) or finite(saved_high) or finite(m.high)
  end

  local function short(m)
    local l = limit_of(m)
    if l and m.current >= cfg.level * l then
      return true, string.format("memory.current %d is %.0f%% of %d", m.current, 100 * m.current / l, l)
    end
    if now() - pressured_at < 2 * cfg.duration then
      return true, string.format("memory pressure above %g%% for %gs", cfg.pressure, cfg.duration)
    end
    return false
  end

  local function report(kind, fields)
    fields.dry_run = cfg.dry_run
    emit(kind, fields)
  end

  local function pre_kill(state)
    if type(cfg.pre_kill) == "function" then
      local ok, err = pcall(cfg.pre_kill, state)
      if not ok then log("ladder: pre_kill failed:", err) end
    elseif type(cfg.pre_kill) == "table" then
      local r, err = exec.host(cfg.pre_kill, { stdin = json.encode(state), timeout = 10 })
      state.hook_status = r and r.status or err
    end
  end

  -- one step up the ladder, acted on unless dry_run
  local function climb(m, reason)
    step = math.min(step + 1, #STEPS)
    local action = STEPS[step]
    local f = { action = action, step = step, reason = reason, current = m.current, limit = limit_of(m) }
    if not cfg.dry_run then
      if action == "reclaim" then
        f.reclaimed = cgroup.reclaim(cfg.reclaim)
      elseif action == "lower-memory.high" then
        saved_high = saved_high or finite(m.high) or math.huge
        local new_high = math.max(math.floor(m.current * cfg.high_share), 4 * 1024 * 1024)
        cgroup.set { memory_high = new_high }
        f.memory_high = new_high
      elseif action == "freeze" then
        cgroup.freeze()
        frozen = true
      elseif action == "kill" then
        if frozen then cgroup.thaw(); frozen = false end -- a frozen task cannot die
        cgroup.kill("KILL")
      end
    end
    if action == "lower-memory.high" or action == "freeze" then
      watching = { action = action, at = now() }
    end
    last = now()
    report("policy.action", f)
    if action == "pre-kill" and not cfg.dry_run then pre_kill(f) end -- after its line: the hook may take a while
  end

  -- undo the throttles once the shortage is over for good
  local function relax(m)
    if frozen then cgroup.thaw(); frozen = false end
    if saved_high and not cfg.dry_run then
      cgroup.set { memory_high = saved_high == math.huge and "max" or saved_high }
    end
    report("policy.action", { action = "relax", step = 0, current = m.current,
                              memory_high = saved_high })
    saved_high, step, watching = nil, 0, nil
  end

  -- a throttle's outcome, `watch` seconds after it
  local function judge(m)
    local p = cgroup.pressure("memory")
    local full = p.full and p.full.avg10 or 0
    local is_short = short(m)
    local result = full >= cfg.stall and "stalled" or is_short and "no progress" or "held"
    report("policy.outcome", { after = watching.action, result = result, current = m.current,
                               full_avg10 = full })
    watching = nil
    if result ~= "held" then
      climb(m, result .. " after " .. STEPS[step])
    elseif frozen then
      cgroup.thaw()
      frozen = false
    end
  end

  local wake = chan(16)
  local function poke(ev) wake:send(ev.type, 0) end
  on("memory.high", poke)
  on("memory.max", poke)
  on("pressure", { resource = "memory", threshold = cfg.pressure, duration = cfg.duration }, function(ev)
    pressured_at = now()
    poke(ev)
  end)
  on("oom_kill", function(ev)
    report("policy.action", { action = "notify", step = step, reason = "the kernel OOM-killed a process" })
  end)

  go(function()
    while true do
      wake:recv(math.min(cfg.watch, cfg.cooldown))
      local m = cgroup.memory()
      local is_short, reason = short(m)
      if watching and now() - watching.at >= cfg.watch then
        judge(m)
      elseif is_short then
        calm_since = nil
        if not watching and now() - last >= cfg.cooldown and step < #STEPS then climb(m, reason) end
      else
        calm_since = calm_since or now()
        if step > 0 and not watching and now() - calm_since >= cfg.calm then relax(m) end
      end
    end
  end)
end
