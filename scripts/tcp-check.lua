-- tcp-check.lua — the service accepts connections and answers a line
-- (Docker's `HEALTHCHECK CMD redis-cli ping`, or Kubernetes' tcpSocket probe
-- when `send` is nil), without a process per probe. Runs inside the
-- container's network namespace, so 127.0.0.1 is the container's own.
--   moonshim run --check scripts/tcp-check.lua ID
local host, port = "127.0.0.1", 6379
local send = "PING\r\n" -- nil: a connection that opens is enough
local expect = "^%+PONG" -- a Lua pattern the first line of the reply must match

check {
  name = "tcp",
  role = "liveness",
  interval = 2,        -- seconds between probes once started
  timeout = 1,         -- a probe slower than this fails
  retries = 3,         -- consecutive failures before unhealthy
  start_period = 10,   -- failures while the service boots do not count
  start_interval = 0.5,
  run = function()
    -- <close>: the connection is closed however run ends
    local c <close>, err = tcp.connect(host, port, { timeout = 1 })
    if not c then return false, err end -- "tcp connect 127.0.0.1:6379: connecting: ..."
    if not send then return true, "connected" end
    local sent, serr = c:send(send)
    if not sent then return false, serr end
    local line, rerr = c:receive("l") -- a line, without its CR LF; waits up to 1 s
    if not line then return false, rerr end -- "...: receiving a line: timeout" or "closed"
    return line:find(expect) ~= nil, line
  end,
}
