-- wrk script of tests/bench/api.sh: GET BENCH_PATH (a format with one %s) for an id picked
-- at random from the lines of BENCH_IDS, with the bearer token BENCH_TOKEN; at the end one
-- line "BENCH rps=... p50_ms=... p90_ms=... p99_ms=... max_ms=... requests=... errors=..."
-- (errors: non-2xx/3xx answers plus connect, read, write and timeout errors).
local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PATH")
local ids = {}

for line in io.lines(os.getenv("BENCH_IDS")) do
	if line ~= "" then
		ids[#ids + 1] = line
	end
end
wrk.headers["Authorization"] = "Bearer " .. token
local counter = 0

function setup(thread)
	counter = counter + 1
	thread:set("tid", counter)
end

function init(args)
	math.randomseed(os.time() * 100 + (tid or 0))
end

if #ids == 1 then
	-- one id: wrk sends the same pre-built request, no Lua per request
	wrk.path = string.format(path, ids[1])
else
	function request()
		return wrk.format("GET", string.format(path, ids[math.random(#ids)]))
	end
end

-- BENCH_DELAY_MS > 0: each connection waits about that long (uniformly 0.5x-1.5x, so the
-- connections do not fall into step) before each request: an offered rate of roughly
-- connections * 1000 / (delay + latency) per second instead of a saturated closed loop.
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pace > 0 then
	function delay()
		return pace * (0.5 + math.random())
	end
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("BENCH rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
	    "requests=%d errors=%d\n", summary.requests / (summary.duration / 1e6),
	    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
	    latency:percentile(99) / 1000, latency.max / 1000, summary.requests,
	    e.status + e.connect + e.read + e.write + e.timeout))
end
