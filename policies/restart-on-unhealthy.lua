-- restart-on-unhealthy.lua — podman's --health-on-failure=kill: when the
-- container's health turns unhealthy, stop it (TERM, then KILL after a
-- grace period) so the supervisor above (systemd, Kubernetes, a restart
-- loop) starts a fresh one. Opt-in: the default policy only reports.
--   moonshim run --check scripts/http-check.lua --policy policies/restart-on-unhealthy.lua ID
local grace = 10 -- seconds between TERM and KILL

on("health", function(ev)
  if ev.subject ~= "health" or ev.to ~= "unhealthy" then return end
  emit("policy.action", { action = "stop", reason = ev.reason, grace = grace })
  container.signal("TERM")
  sleep(grace)
  cgroup.kill("KILL") -- nothing if it already left
end)
