-- POST `{ viewer { id email } }` with bearer tokens read from a file (one per line), in turn.
-- An answer without the viewer's email counts as a failure. The second argument is how the
-- document is named (bench/measure.py measure_documents): "query" (the text, the default),
-- "adhoc" (a new text every request: a comment with a counter), "apq" (Apollo's hash alone;
-- the third argument is the hash, registered beforehand) or "trusted" (documentId; the hash).
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
  kind = args[2] or "query"
  local hash = args[3] or ""
  if kind == "apq" then
    wrk.body = '{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"' .. hash .. '"}}}'
  elseif kind == "trusted" then
    wrk.body = '{"documentId":"sha256:' .. hash .. '"}'
  else
    wrk.body = '{"query":"{ viewer { id email } }"}'
  end
  wrk.headers["Content-Type"] = "application/json"
  counter = 0
end

function request()
  local token = tokens[next_token]
  next_token = next_token % #tokens + 1
  wrk.headers["Authorization"] = "Bearer " .. token
  if kind == "adhoc" then
    counter = counter + 1
    local body = '{"query":"{ viewer { id email } } # ' .. counter .. '"}'
    return wrk.format(nil, nil, nil, body)
  end
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
