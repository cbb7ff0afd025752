-- POST `{ viewer { id email } }` with bearer tokens read from a file (one per line), in turn.
-- An answer without the viewer's email counts as a failure.
local threads = {}
local tokens = {}
local next_token = 1
failures = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(tokens, line) end
  end
  wrk.method = "POST"
  wrk.path = "/graphql"
  wrk.body = '{"query":"{ viewer { id email } }"}'
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local token = tokens[next_token]
  next_token = next_token % #tokens + 1
  wrk.headers["Authorization"] = "Bearer " .. token
  return wrk.format()
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"email"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("failures") end
  io.write(string.format("script failures: %d\n", total))
end
