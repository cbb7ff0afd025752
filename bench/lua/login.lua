-- POST the `login` mutation for accounts read from a file (one email per line), in turn,
-- all with the password given as the second argument. Anything but an AuthPayload fails.
local threads = {}
local emails = {}
local password = ""
local next_email = 1
failures = 0

local QUERY = "mutation L($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
  .. "{ __typename ... on AuthPayload { accessToken } } }"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(emails, line) end
  end
  password = args[2]
  wrk.method = "POST"
  wrk.path = "/graphql"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local email = emails[next_email]
  next_email = next_email % #emails + 1
  local body = string.format('{"query":"%s","variables":{"e":"%s","p":"%s"}}', QUERY, email, password)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, "AuthPayload", 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("failures") end
  io.write(string.format("script failures: %d\n", total))
end
