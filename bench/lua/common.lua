-- Shared by the benchmark's wrk scripts: done() appends one JSON object describing the
-- run to the file named by BENCH_OUT: request count, duration, errors, and the latency
-- distribution as a grid of percentiles (wrk gives no raw histogram cheaply), which the
-- driver merges across runs.
local M = {}

local grid = {}
for p = 1, 99 do grid[#grid + 1] = p end
for _, p in ipairs({0.1, 0.5, 99.1, 99.2, 99.3, 99.4, 99.5, 99.6, 99.7, 99.8, 99.9,
                    99.95, 99.99}) do grid[#grid + 1] = p end
table.sort(grid)

function M.done(summary, latency, requests)
  local path = os.getenv("BENCH_OUT")
  if not path then return end
  local parts = {}
  for _, p in ipairs(grid) do
    parts[#parts + 1] = string.format("[%g,%d]", p, latency:percentile(p))
  end
  local e = summary.errors
  local doc = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency":{"min":%d,"max":%d,"mean":%f,"pct":[%s]}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, table.concat(parts, ","))
  local f = assert(io.open(path, "a"))
  f:write(doc)
  f:close()
end

return M
