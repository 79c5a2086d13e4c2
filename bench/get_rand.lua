-- wrk script: GET /kv/k<i> for a random i in [0, COUNT), the keys that
-- `bench/load put ADDR COUNT ...` wrote, so that the whole hash table, not
-- one hot key, is read.
--   wrk -t T -s bench/get_rand.lua URL -- COUNT
-- Building each request costs wrk some CPU: compare runs of this script
-- with each other, not with the one-key GET of scenario get.

local count = 1

function init(args)
   count = tonumber(args[1]) or 1
   math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
   return wrk.format("GET", "/kv/k" .. math.random(0, count - 1))
end
