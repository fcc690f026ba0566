-- join_pow.lua: POST /api/v1/sales/{sale}/queue with a pre-solved
-- proof-of-work body per request, every request a new visitor. The bodies
-- come from $FG_BODIES (one JSON object per line, written by
-- `fgdrive solve`); wrk threads take disjoint slices, and a
-- thread that runs out starts its slice again (those joins answer 409
-- challenge_reused and show as non-2xx: make the file larger than the runs).
--   FG_BODIES=bodies.txt wrk -t2 -c64 -d10s -s loadtest/wrk/join_pow.lua \
--       http://127.0.0.1:18080/api/v1/sales/SALE/queue
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local bodies, i, nthreads
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  bodies = read_tokens(os.getenv("FG_BODIES"))
  nthreads = tonumber(os.getenv("FG_WRK_THREADS") or "2")
  i = tid or 0
end

function request()
  local body = bodies[(i % #bodies) + 1]
  i = i + nthreads
  return wrk.format("POST", nil, headers, body)
end
