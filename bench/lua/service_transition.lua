-- POST /api/v1/programs/{code}/transitions so that every request is legal under concurrency.
--
-- Script arguments: the API key, a state file ("code status" per line, written by the harness
-- from the API just before the run) and the number of wrk threads. Each thread owns a disjoint
-- set of programmes (line number modulo the thread count). A programme is taken out of the
-- thread's idle queue when a request for it is sent, and put back, with the opposite target,
-- only when its 2xx answer arrives: no two requests for one programme are ever in flight, and
-- each asks for the one legal move (draft -> coordinated, coordinated -> draft). A programme
-- whose request fails is not used again in this run (its state is unknown); the next run reads
-- the states afresh. If a thread's queue runs dry it sends GET /healthz and counts it as
-- "starved" (never expected: each thread owns many more programmes than it has connections).

local queue = {}
local head, tail = 1, 0
local target = {}
local prepared = {}
local fallback

local function enqueue(code)
  tail = tail + 1
  queue[tail] = code
end

function init(args)
  local key, state_file, thread_count = args[1], args[2], tonumber(args[3])
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  local line_number = 0
  for line in io.lines(state_file) do
    local code, status = line:match("^(%S+) (%S+)$")
    if code then
      if line_number % thread_count == thread_index then
        local path = "/api/v1/programs/" .. code .. "/transitions"
        prepared[code] = {
          coordinated = wrk.format("POST", path, headers, '{"to_status":"coordinated","source_url":"https://example.org/bench"}'),
          draft = wrk.format("POST", path, headers, '{"to_status":"draft","source_url":"https://example.org/bench"}'),
        }
        if status == "draft" then
          target[code] = "coordinated"
          enqueue(code)
        elseif status == "coordinated" then
          target[code] = "draft"
          enqueue(code)
        end
      end
      line_number = line_number + 1
    end
  end
  fallback = wrk.format("GET", "/healthz")
end

function request()
  if head > tail then
    count_starved = count_starved + 1
    return fallback
  end
  local code = queue[head]
  queue[head] = nil
  head = head + 1
  return prepared[code][target[code]]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    local code = body:match('"code":"([^"]+)"')
    if code and prepared[code] then
      count_2xx = count_2xx + 1
      target[code] = (target[code] == "coordinated") and "draft" or "coordinated"
      enqueue(code)
    end
    -- a 2xx without a programme is the /healthz fallback, already counted as starved
  elseif status == 409 then
    count_409 = count_409 + 1
  else
    count_other = count_other + 1
  end
end
