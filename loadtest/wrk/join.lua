-- join.lua: POST /api/v1/sales/{sale}/queue, no body: every request is a new
-- anonymous visitor. The URL given to wrk carries the path.
--   wrk -t2 -c64 -d20s -s loadtest/wrk/join.lua http://127.0.0.1:18080/api/v1/sales/SALE/queue
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = ""
