-- HTTP/1.1 pipelining for wrk: each write carries DEPTH requests (default 16) for the URL's path.
--   wrk -t1 -c16 -d5s -s pipeline.lua http://127.0.0.1:PORT/hello -- 16
-- wrk counts every response, so req/s is requests answered, not writes.

local depth = 16
local batch = nil

function init(args)
  depth = tonumber(args[1]) or depth
  local reqs = {}
  for i = 1, depth do
    -- nil method/path/headers/body: wrk.method, wrk.path and wrk.headers (Host) are used.
    reqs[i] = wrk.format(nil, nil)
  end
  batch = table.concat(reqs)
end

function request()
  return batch
end
