-- alert-webhook.lua — tell someone: post OOM kills and health changes to a
-- webhook as JSON, and run a local command on OOM kills. Set the URL for
-- your receiver (Slack/Alertmanager bridges take JSON like this).
--   moonshim run --policy policies/alert-webhook.lua ID
local url = "http://127.0.0.1:9093/moonshim"

local function post(ev)
  local r, err = http.post(url, json.encode(ev), {
    timeout = 2, headers = { ["Content-Type"] = "application/json" } })
  if not r then log("webhook failed:", err) end
end

on("oom_kill", post)
on("health", function(ev) if ev.subject == "health" then post(ev) end end)

-- a command as a hook: the event arrives as JSON on its stdin
hook("oom_kill", { "logger", "-t", "moonshim", "container OOM kill" }, { timeout = 5 })
