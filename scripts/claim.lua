-- wrk script of Setup A (scripts/setup-a.sh): every request POSTs to the URL's path (a claim
-- path, /v1/rains/{code}/claim) with a random X-User-Id in 1..USERS (env, default 1,000,000).
-- Answers other than 200 are counted by status in a response() hook, which costs wrk some
-- throughput (it parses every answer's headers and body for Lua); STATUS_HOOK=0 leaves the
-- hook out and counts wrk's own status errors (status > 399) instead, which is the same count
-- for these servers (they answer 200 or 4xx/5xx). done() prints one line,
--   setup-a: {"requests":...,"ok":...,"non200":...,"status":{"410":...},"errors":{...},"duration_us":...,"p50_us":...,"p99_us":...}
-- which setup-a.sh reads (wrk's own "Requests/sec" counts every answer, 200 or not).

local users = tonumber(os.getenv("USERS") or "") or 1000000
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() * 1000 + id)
   non200 = 0
   statuses = {}
   wrk.method = "POST"
end

function request()
   return wrk.format("POST", nil, { ["X-User-Id"] = tostring(math.random(1, users)) })
end

if os.getenv("STATUS_HOOK") ~= "0" then
   function response(status, headers, body)
      if status ~= 200 then
         non200 = non200 + 1
         statuses[status] = (statuses[status] or 0) + 1
      end
   end
end

function done(summary, latency, requests)
   local non, by = 0, {}
   for _, t in ipairs(threads) do
      non = non + (t:get("non200") or 0)
      for s, n in pairs(t:get("statuses") or {}) do
         by[s] = (by[s] or 0) + n
      end
   end
   local st = {}
   for s, n in pairs(by) do
      table.insert(st, string.format('"%d":%d', s, n))
   end
   local e = summary.errors
   if os.getenv("STATUS_HOOK") == "0" then
      non = e.status
   end
   io.write(string.format(
      'setup-a: {"requests":%d,"ok":%d,"non200":%d,"status":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
      '"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
      summary.requests, summary.requests - non, non, table.concat(st, ","),
      e.connect, e.read, e.write, e.timeout, e.status,
      summary.duration, latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
