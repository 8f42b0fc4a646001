-- http-check.lua — the service answers on /healthz (Docker's
-- `HEALTHCHECK CMD curl -f http://localhost:8080/healthz`, without a process
-- per probe). Runs inside the container's network namespace, so localhost
-- is the container's own.
--   moonshim run --check scripts/http-check.lua ID
local url = "http://127.0.0.1:8080/healthz"

check {
  name = "http",
  role = "liveness",
  interval = 2,        -- seconds between probes once started
  timeout = 1,         -- a probe slower than this fails
  retries = 3,         -- consecutive failures before unhealthy
  start_period = 10,   -- failures while the service boots do not count
  start_interval = 0.5,
  run = function()
    -- keepalive: the next probe reuses this connection if the server allows
    local r, err = http.get(url, { timeout = 1, keepalive = true })
    if not r then return false, err end
    return r.status >= 200 and r.status < 400, r.status .. " " .. r.reason
  end,
}
