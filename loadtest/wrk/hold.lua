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
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local tokens, n, nthreads, slice
statuses = {}

function init(args)
  tokens = read_tokens(os.getenv("FG_TOKENS"))
  nthreads = tonumber(os.getenv("FG_WRK_THREADS") or "2")
  -- This thread's tokens: tid, tid + nthreads, tid + 2 * nthreads, ...
  slice = math.max(1, math.floor(#tokens / nthreads))
  n = 0
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
  return wrk.format("POST", nil, headers, '{"quantity":1}')
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
