-- wrk script for `bin/bench`: POST one fixed body over and over; done() writes a JSON
-- summary. Environment (set by louter/bench/wrk.py):
--   LOUTER_BENCH_BODY  file holding the request body (required)
--   LOUTER_BENCH_PATH  request path (default /v1/chat/completions)
--   LOUTER_BENCH_OUT   file done() writes the summary to (default: stdout)
-- The request bytes are built once per thread in init(); there is no response()
-- callback, so wrk never hands response bodies to Lua (it stays as fast as it can be).

local body_file = assert(os.getenv("LOUTER_BENCH_BODY"), "LOUTER_BENCH_BODY is not set")
local path = os.getenv("LOUTER_BENCH_PATH") or "/v1/chat/completions"

local handle = assert(io.open(body_file, "rb"))
local body = handle:read("*a")
handle:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-client"

local prepared

function init(args)
  prepared = wrk.format("POST", path)
end

function request()
  return prepared
end

function done(summary, latency, requests)
  local errors = summary.errors
  local text = string.format(
    '{"requests":%d,"bytes":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}}',
    summary.requests, summary.bytes, summary.duration,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99))
  local target = os.getenv("LOUTER_BENCH_OUT")
  if target and target ~= "" then
    local out = assert(io.open(target, "w"))
    out:write(text, "\n")
    out:close()
  else
    io.write(text, "\n")
  end
end
