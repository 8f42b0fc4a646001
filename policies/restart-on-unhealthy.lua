-- restart-on-unhealthy.lua — Docker's restart-on-failure and a Kubernetes
-- liveness probe in one: when the container's health turns unhealthy,
-- restart it in place with container.restart(grace): TERM, SIGKILL to its
-- cgroup after the grace period, then a new init from the same bundle
-- (same cgroup, same log, a fresh pty) after a backoff that doubles per
-- quick restart (0, 1 s, 2 s, 4 s ... at most 5 min; a process that ran
-- 10 s starts the count over). The checks start over with the new process.
-- Opt-in: the default policy only reports. In containerd mode there is no
-- restart here (the restart call returns nil and a message): the
-- orchestrator above restarts, so this policy stops the container instead.
--   moonshim run --check scripts/http-check.lua --policy policies/restart-on-unhealthy.lua ID
local grace = 10 -- seconds between TERM and KILL

on("health", function(ev)
  if ev.subject ~= "health" or ev.to ~= "unhealthy" then return end
  emit("policy.action", { action = "restart", reason = ev.reason, grace = grace })
  local ok, err = container.restart(grace)
  if ok then return end
  emit("policy.action", { action = "restart-failed", error = err })
  if err and err:find("not offered") then container.stop(grace) end
end)
