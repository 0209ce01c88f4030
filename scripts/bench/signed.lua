-- Sends pre-signed requests (scripts/bench/sign.py), each nonce once. Each wrk thread takes
-- every n-th line; a thread stops a little before its lines run out, so no request is ever a
-- replay of another.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path, nthreads, margin = args[1], tonumber(args[2]), tonumber(args[3])
  headers_list = {}
  local f = assert(io.open(path, "r"))
  prefix = f:read("*l")
  local n = 0
  for line in f:lines() do
    if n % nthreads == id then
      local nonce, sig = line:match("^(%S+) (%S+)$")
      table.insert(headers_list, prefix .. 'oauth_nonce="' .. nonce .. '", oauth_signature="' .. sig .. '"')
    end
    n = n + 1
  end
  f:close()
  limit = #headers_list - margin
  index = 0
end

function request()
  index = index + 1
  return wrk.format("GET", nil, { Authorization = headers_list[index] })
end

function response(status, headers, body)
  if index >= limit then
    wrk.thread:stop()
  end
end
-- The same figures as every other scenario (wrk runs from the repository root).
dofile("scripts/bench/report.lua")
