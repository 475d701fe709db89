-- wrk script for ops/bench.py and ops/bench_queue.py: POST a JSON body, rotating through many users.
-- Environment: BENCH_TOKENS (a file, one bearer token per line), BENCH_BODY (the JSON body),
-- BENCH_PATH (default /api/v1/bookings/reserve).
-- Prints "status <code> <count>" lines at the end so the benchmark can check the share of successes.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    tokens[#tokens + 1] = line
  end
  body = os.getenv("BENCH_BODY")
  path = os.getenv("BENCH_PATH") or "/api/v1/bookings/reserve"
  counter = math.random(#tokens)
  statuses = {}
end

function request()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  return wrk.format("POST", path,
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      total[code] = (total[code] or 0) + count
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("status %d %d\n", code, count))
  end
end
