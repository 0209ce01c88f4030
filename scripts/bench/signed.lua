-- Sends pre-signed requests (scripts/bench/sign.py), each nonce once. Arguments: the files'
-- path, a margin of requests left unsent, the round and the number of rounds (each round sends
-- from its own part of each file). Thread n reads its own
-- file, `<path>.<n>`, of whole requests of one length: each request is one buffered read, and
-- setting up takes no time (wrk starts each thread's load before it sets up the next thread,
-- and would count those requests in a run whose clock starts after the last set-up). A thread
-- stops a little before its requests run out, so no request is ever a replay of another. No
-- `response` callback: with one, wrk copies every answer into Lua, which on these shared cores
-- takes time from the server.
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local path, margin = args[1], tonumber(args[2])
  local round, rounds = tonumber(args[3] or 1), tonumber(args[4] or 1)
  file = assert(io.open(path .. "." .. id, "rb"))
  file:setvbuf("full", 1048576)
  size = tonumber(file:read("*l"))
  local start = file:seek()
  local part = math.floor(math.floor((file:seek("end") - start) / size) / rounds)
  limit = part - margin
  file:seek("set", start + (round - 1) * part * size)
  index = 0
end

function request()
  index = index + 1
  if index >= limit then
    wrk.thread:stop()
  end
  return file:read(size)
end

-- The same figures as every other scenario (wrk runs from the repository root).
dofile("scripts/bench/report.lua")
