-- POST /transition_raw/{id}, rotating over the ids given as script arguments. The anchor toggles
-- the status itself, so every request is legal; responses are counted like the service's.

local requests_ = {}
local counter = 0

function init(args)
  for i, id in ipairs(args) do
    requests_[i] = wrk.format("POST", "/transition_raw/" .. id)
  end
  counter = thread_index * 13
end

function request()
  counter = counter + 1
  return requests_[(counter % #requests_) + 1]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    count_2xx = count_2xx + 1
  elseif status == 409 then
    count_409 = count_409 + 1
  else
    count_other = count_other + 1
  end
end
