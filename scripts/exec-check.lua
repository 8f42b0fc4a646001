-- exec-check.lua — Docker's `HEALTHCHECK CMD pidof httpd` as a Lua check:
-- the command runs as a second process of the container (its namespaces,
-- cgroup, user, capabilities and seccomp profile, with the container's
-- environment), like `docker exec`; exit status 0 is a pass. Use it when
-- the test needs the container's own tools; an http or tcp check costs far
-- less (no process per probe).
--   moonshim run --check scripts/exec-check.lua ID
local cmd = { "sh", "-c", "pidof httpd" }

check {
  name = "exec",
  role = "liveness",
  interval = 5,
  timeout = 2,       -- the command is killed at the timeout: a failure
  retries = 3,
  start_period = 10,
  run = function()
    local r, err = exec.container(cmd, { timeout = 2 })
    if not r then return false, err end          -- it could not start
    if r.timed_out then return false, "timed out" end
    local out = (r.stdout .. r.stderr):sub(1, 200)
    return r.status == 0, "exit " .. r.status .. ": " .. out
  end,
}
