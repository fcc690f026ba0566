-- common.lua: shared by the floodgate wrk scripts (loaded with dofile).
--
-- Each wrk thread has its own Lua state; setup() numbers the threads so they
-- take disjoint slices of a token file, and done() prints one machine-readable
-- line that loadtest/bench.sh parses:
--   WRK_RESULT {"requests":..,"duration_s":..,"rps":..,"p50_ms":..,"p95_ms":..,
--               "p99_ms":..,"max_ms":..,"non2xx":..,"socket_errors":..,"statuses":{..}}
-- Status counts per code are only collected by scripts that define
-- response() (hold.lua); elsewhere "statuses" is empty and non2xx counts
-- every non-2xx/3xx answer.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function read_tokens(path)
  local list = {}
  if path == nil or path == "" then
    return list
  end
  local f = io.open(path, "r")
  if f == nil then
    error("cannot open token file " .. path)
  end
  for line in f:lines() do
    if #line > 0 then
      table.insert(list, line)
    end
  end
  f:close()
  return list
end

function done(summary, latency, requests)
  local statuses = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s ~= nil then
      for code, n in pairs(s) do
        statuses[code] = (statuses[code] or 0) + n
      end
    end
  end
  local parts = {}
  for code, n in pairs(statuses) do
    table.insert(parts, string.format('"%s":%d', tostring(code), n))
  end
  local errors = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"non2xx":%d,"socket_errors":%d,"statuses":{%s}}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    table.concat(parts, ",")))
end
