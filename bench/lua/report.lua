-- Shared by every scenario (the harness prepends it): numbers each thread and, when the run
-- ends, prints one line the harness parses: "BENCH_JSON {...}".

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  threads[#threads + 1] = thread
end

-- Per-thread counters; scenarios that define response() update them.
count_2xx = 0
count_409 = 0
count_other = 0
count_starved = 0

local function sum(name)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get(name) or 0)
  end
  return total
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"count_2xx":%d,"count_409":%d,"count_other":%d,"count_starved":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean,
    sum("count_2xx"), sum("count_409"), sum("count_other"), sum("count_starved")))
end
