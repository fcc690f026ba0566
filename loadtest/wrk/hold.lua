-- hold.lua: POST /api/v1/sales/{sale}/holds {"quantity": 1} with a Bearer
-- admission token from $FG_TOKENS (written by `fgdrive join --token admission`
-- on a sale without waiting room) and a fresh Idempotency-Key. Requests cycle
-- through all of the thread's tokens before a token is used again, so
-- requests in flight at the same time are different buyers (one buyer's
-- concurrent holds serialise on their purchase count, by design, I3); with
-- the sale's per-user limit of 4 each token makes up to 4 holds, after which
-- the answer is 409 limit_exceeded. Counts answers by status.
--   FG_TOKENS=admission.txt wrk -t2 -c64 -d20s -s loadtest/wrk/hold.lua \
--       http://127.0.0.1:18080/api/v1/sales/SALE/holds
-- With FG_SESSIONS=N (a sale with N sessions) each hold names a random one.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local tokens, n, nthreads, slice, sessions
statuses = {}

function init(args)
  tokens = read_tokens(os.getenv("FG_TOKENS"))
  nthreads = tonumber(os.getenv("FG_WRK_THREADS") or "2")
  -- This thread's tokens: tid, tid + nthreads, tid + 2 * nthreads, ...
  slice = math.max(1, math.floor(#tokens / nthreads))
  n = 0
  sessions = tonumber(os.getenv("FG_SESSIONS") or "0")
  math.randomseed(os.time() + (tid or 0) * 7919)
end

function request()
  local idx = ((tid or 0) + (n % slice) * nthreads) % #tokens + 1
  n = n + 1
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[idx],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("wrk-%d-%d-%d", tid or 0, n, math.random(1, 1000000000)),
  }
  local body = '{"quantity":1}'
  if sessions > 0 then
    body = string.format('{"quantity":1,"session":"%d"}', math.random(1, sessions))
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
