-- wrk script: GET /health every INTERVAL ms on each connection (default
-- 10), as a probe would, but often enough to give a p99 and a max.
--   wrk -t1 -c1 -d600s --latency -s bench/health.lua URL -- [INTERVAL]
-- wrk's latency is from sending a request to its answer; the wait between
-- requests is not in it.

local interval = 10

function init(args)
   interval = tonumber(args[1]) or 10
end

function delay()
   return interval
end

function request()
   return wrk.format("GET", "/health")
end
