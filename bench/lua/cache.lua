-- cache and hot-spot workloads: each request picks a site by Zipf-like popularity and
-- asks for BENCH_K objects of it: GET /c/ID_ID_... with Host: s<site>.example.
--   BENCH_SEED     base seed (each wrk thread adds its index)
--   BENCH_SITES    number of sites; rank r (1-based) has weight 1 / r^BENCH_ZIPF
--   BENCH_PERM     comma-separated site ids by rank (the popularity ranking); default
--                  identity (site r-1 has rank r)
--   BENCH_K        objects per request, each uniform in [0, BENCH_OBJECTS)
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end

local nsites, k, objects, cdf, hosts

function init(args)
  nsites = tonumber(os.getenv("BENCH_SITES"))
  k = tonumber(os.getenv("BENCH_K"))
  objects = tonumber(os.getenv("BENCH_OBJECTS"))
  local s = tonumber(os.getenv("BENCH_ZIPF"))
  local perm = {}
  local p = os.getenv("BENCH_PERM")
  if p and p ~= "" then
    for id in string.gmatch(p, "[^,]+") do perm[#perm + 1] = tonumber(id) end
  else
    for r = 1, nsites do perm[r] = r - 1 end
  end
  local total = 0
  for r = 1, nsites do total = total + 1 / r ^ s end
  cdf, hosts = {}, {}
  local acc = 0
  for r = 1, nsites do
    acc = acc + (1 / r ^ s) / total
    cdf[r] = acc
    hosts[r] = "s" .. perm[r] .. ".example"
  end
  cdf[nsites] = 1.0
  math.randomseed(tonumber(os.getenv("BENCH_SEED")) * 1000 + (tid or 0))
end

local floor, random, concat = math.floor, math.random, table.concat
local ids = {}

function request()
  local u = random()
  local lo, hi = 1, nsites
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if cdf[mid] >= u then hi = mid else lo = mid + 1 end
  end
  for i = 1, k do ids[i] = random(0, objects - 1) end
  return wrk.format("GET", "/c/" .. concat(ids, "_"), {Host = hosts[lo]})
end

done = common.done
