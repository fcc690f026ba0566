-- get.lua: plain GET of the URL (e.g. the public availability
-- /api/v1/sales/{sale}), with the WRK_RESULT summary line.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")
