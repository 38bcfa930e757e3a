-- 16 KiB POST body for the echo scenario (plus the report line of report.lua).
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
