-- hello workload: GET /hello on keep-alive connections (wrk's static request path).
-- BENCH_DIRECT="host:port,host:port,...": spread wrk's threads over these addresses
-- instead of the URL's (the direct, no-load-balancer ceiling; use -t = address count).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.path = "/hello"

local addrs = nil
local n = 0
function setup(thread)
  local direct = os.getenv("BENCH_DIRECT")
  if not direct or direct == "" then return end
  if not addrs then
    addrs = {}
    for hp in string.gmatch(direct, "[^,]+") do
      local host, port = string.match(hp, "^(.*):(%d+)$")
      addrs[#addrs + 1] = wrk.lookup(host, port)[1]
    end
  end
  thread.addr = addrs[(n % #addrs) + 1]
  n = n + 1
end

done = common.done
