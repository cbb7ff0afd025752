-- One kind of client of the mixed-load phase (bench.measure.measure_mix), by its first argument:
--   login EMAILS_FILE PASSWORD THINK_MS  log in as the accounts in turn; AuthPayload is served,
--                                        RateLimited refused (counted apart), anything else fails
--   refresh TOKENS_FILE THINK_MS         rotate refresh tokens from a pool: each is sent once and
--                                        the one it returns goes back in (no reuse, ever)
--   viewer TOKENS_FILE THINK_MS          { viewer { id email } } with access tokens in turn
-- Every connection waits THINK_MS after each answer, as a client does between calls. At the end
-- it prints the failures, the login outcomes and the 95th percentile (wrk prints 50/75/90/99).
local threads = {}
local mode = ""
local items = {}
local next_item = 1
local password = ""
local think = 0
failures = 0
served = 0
refused = 0

local LOGIN = "mutation L($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
  .. "{ __typename ... on RateLimited { retryAfter } } }"
local REFRESH = "mutation R($t: String) { refreshToken(refreshToken: $t) "
  .. "{ __typename ... on AuthPayload { refreshToken } } }"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  for line in io.lines(args[2]) do
    if #line > 0 then table.insert(items, line) end
  end
  if mode == "login" then
    password = args[3]
    think = tonumber(args[4])
  else
    think = tonumber(args[3])
  end
  wrk.method = "POST"
  wrk.path = "/graphql"
  wrk.headers["Content-Type"] = "application/json"
end

function delay()
  return think
end

function request()
  if mode == "login" then
    local email = items[next_item]
    next_item = next_item % #items + 1
    local body = string.format('{"query":"%s","variables":{"e":"%s","p":"%s"}}', LOGIN, email, password)
    return wrk.format(nil, nil, nil, body)
  elseif mode == "refresh" then
    -- An empty pool sends a token that cannot work: counted as a failure, never a reuse.
    local token = table.remove(items, 1) or "pool-empty"
    local body = string.format('{"query":"%s","variables":{"t":"%s"}}', REFRESH, token)
    return wrk.format(nil, nil, nil, body)
  else
    local token = items[next_item]
    next_item = next_item % #items + 1
    wrk.headers["Authorization"] = "Bearer " .. token
    return wrk.format(nil, nil, nil, '{"query":"{ viewer { id email } }"}')
  end
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  elseif mode == "login" then
    if string.find(body, '"AuthPayload"', 1, true) then
      served = served + 1
    elseif string.find(body, '"RateLimited"', 1, true) then
      refused = refused + 1
    else
      failures = failures + 1
    end
  elseif mode == "refresh" then
    local token = string.match(body, '"refreshToken":"([^"]+)"')
    if token then
      table.insert(items, token)
      served = served + 1
    else
      failures = failures + 1
    end
  elseif string.find(body, '"email"', 1, true) then
    served = served + 1
  else
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total, ok, limited = 0, 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("failures")
    ok = ok + thread:get("served")
    limited = limited + thread:get("refused")
  end
  io.write(string.format("script failures: %d\n", total))
  io.write(string.format("outcomes: served %d rate_limited %d\n", ok, limited))
  io.write(string.format("p95 us: %d\n", latency:percentile(95)))
end
