-- GET each of the paths given as script arguments in turn (threads start at different offsets).

local requests_ = {}
local counter = 0

function init(args)
  for i, path in ipairs(args) do
    requests_[i] = wrk.format("GET", path)
  end
  counter = thread_index * 7
end

function request()
  counter = counter + 1
  return requests_[(counter % #requests_) + 1]
end
