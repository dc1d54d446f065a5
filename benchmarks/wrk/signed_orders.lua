-- wrk script of benchmarks/bench_http.py: cycle through a pool of pre-signed order placements.
--
-- wrk's Lua has no HMAC, so bench_http.py signs the requests in Python just before the run
-- (recvWindow 60000 against the server's wall clock, a unique newClientOrderId each) and
-- writes one request per line: "<api key>\t<form body>". init() reads the file named by the
-- first script argument (wrk ... -s signed_orders.lua <url> -- <pool file>) and pre-formats
-- every request; request() hands them out in order. A pool smaller than the run wraps around,
-- and the repeated client order ids are then refused (counted as non-2xx by wrk).

local pool = {}
local count = 0
local next_index = 0

function init(args)
   local path = args[1]
   if path == nil then
      error("signed_orders.lua: give the pool file after --")
   end
   for line in io.lines(path) do
      local key, body = line:match("^([^\t]+)\t(.+)$")
      if key ~= nil then
         count = count + 1
         pool[count] = wrk.format("POST", "/fapi/v1/order", {
            ["X-MBX-APIKEY"] = key,
            ["Content-Type"] = "application/x-www-form-urlencoded",
         }, body)
      end
   end
   if count == 0 then
      error("signed_orders.lua: no requests in " .. path)
   end
end

function request()
   next_index = next_index % count + 1
   return pool[next_index]
end
