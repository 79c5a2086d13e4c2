-- wrk script: PUT /kv/{key} with a fixed-size value, every key distinct.
--   wrk -t T -s bench/put.lua URL -- [VALUE_BYTES [RATE T]]
-- VALUE_BYTES: value size (default 100).
-- RATE: total requests per second to aim at, over T threads (pass wrk's
-- -t); without it, as fast as the server answers.
--
-- Keys are b<thread>-<n>: setup() numbers the threads, and each thread's
-- Lua state counts its own requests (a thread serves all its connections),
-- so no two requests of a run share a key and every PUT creates a key.
--
-- Throttling: wrk 4 has no rate flag, but asks delay() how many ms to wait
-- before each request. Each thread keeps a schedule, request k due at
-- start + k / (RATE / T) seconds, and delay() returns the time left until
-- the next slot (0 when behind: a late server gets the missed requests as
-- soon as it answers, so the offered rate stays RATE on average, as with
-- wrk2). The clock is clock_gettime through LuaJIT's ffi, which wrk has.

local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

local prefix, value, n = "/kv/b0-", "", 0

function init(args)
   local size = tonumber(args[1]) or 100
   local rate = tonumber(args[2]) or 0
   local nthreads = tonumber(args[3]) or 1
   value = string.rep("v", size)
   prefix = "/kv/b" .. tostring(tid or 0) .. "-"
   -- wrk looks for delay() after init: define it only when throttling,
   -- so the full-speed run has no timer per request.
   if rate > 0 then
      local ffi = require("ffi")
      ffi.cdef [[
         typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
         int clock_gettime(int clk, bench_timespec *ts);
      ]]
      local ts = ffi.new("bench_timespec")
      local function now_ms()
         ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
         return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
      end
      local interval = 1000 * nthreads / rate
      local start, k = nil, 0
      function delay()
         local now = now_ms()
         if start == nil then
            start = now
         end
         local left = start + k * interval - now
         k = k + 1
         if left <= 0 then
            return 0
         end
         return math.floor(left + 0.5)
      end
   end
end

function request()
   n = n + 1
   return wrk.format("PUT", prefix .. n, nil, value)
end
