-- wrk script for `python -m bench` (section "server"): requests with valid session cookies.
--
--   wrk -t1 -c32 -d5s -s bench/wrk/cookies.lua http://127.0.0.1:PORT/api/session -- COOKIES [BODY]
--
-- COOKIES is a file with one `Cookie:` header value per line (`bevgenie_session=Fe26.2*…`), made
-- by the bench from real sessions of the server under test; each request takes the next one, so
-- the load is spread over many visitors (as real traffic is) and no session row is hot.
-- BODY, when given, is a file whose content is POSTed as application/json (POST /api/chat).
-- Cookies the server sends back are ignored: every cookie stays valid (nothing revokes it).
-- With more cookies than the server's read cache holds, the rotation is that cache's worst case:
-- each cookie is evicted before it comes round again (the bench's 20,000-visitor row).
--
-- At the end it prints ONE line of JSON (the bench parses it): requests, duration, errors
-- (non-2xx answers count in `status`) and latency percentiles in microseconds.

local cookies = {}
local body = nil
local counter = 0

function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then cookies[#cookies + 1] = line end
   end
   if args[2] then
      local f = assert(io.open(args[2], "rb"))
      body = f:read("*a")
      f:close()
   end
   -- threads start at different cookies; WRK_COOKIE_START=N starts at the (N+1)-th instead, so
   -- a run can carry on the rotation where the one before it stopped (N = its requests)
   local start = tonumber(os.getenv("WRK_COOKIE_START") or "")
   counter = start and start % #cookies or math.random(#cookies)
end

function request()
   counter = counter % #cookies + 1
   if body then
      return wrk.format("POST", nil,
                        {["Cookie"] = cookies[counter], ["Content-Type"] = "application/json"}, body)
   end
   return wrk.format("GET", nil, {["Cookie"] = cookies[counter]})
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
