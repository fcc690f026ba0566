-- status.lua: GET /api/v1/sales/{sale}/queue/status with a Bearer queue token,
-- cycling through the tokens in $FG_TOKENS (one per line, e.g. written by
-- `fgdrive join --out`); wrk threads take disjoint slices.
--   FG_TOKENS=tokens.txt wrk -t2 -c64 -d20s -s loadtest/wrk/status.lua \
--       http://127.0.0.1:18080/api/v1/sales/SALE/queue/status
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local tokens, i, nthreads

function init(args)
  tokens = read_tokens(os.getenv("FG_TOKENS"))
  nthreads = tonumber(os.getenv("FG_WRK_THREADS") or "2")
  i = tid or 0
end

function request()
  local headers = nil
  if #tokens > 0 then
    headers = { Authorization = "Bearer " .. tokens[(i % #tokens) + 1] }
    i = i + nthreads
  end
  return wrk.format("GET", nil, headers, nil)
end
