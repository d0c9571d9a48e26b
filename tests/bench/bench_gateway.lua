-- bench_gateway.lua -- wrk script for scripts/bench-gateway.sh: POST /v1/orders
-- with keep-alive, alternating a buy from one account and a sell from another
-- at the same price, so each pair rests and then trades (the full order path:
-- parse, validate, publish, match, answer) and the book stays shallow.
-- The same script drives the nginx baseline, which answers a fixed body.
--
-- Environment: ARB_BENCH_NAME (prefix of the bench: lines), ARB_BENCH_VENUE,
-- ARB_BENCH_SYMBOL, ARB_BENCH_PRICE, ARB_BENCH_QTY, ARB_BENCH_KEY_BUY,
-- ARB_BENCH_KEY_SELL, ARB_BENCH_DELAY_MS (mean pause per connection between
-- a response and the next request, in ms, fractions allowed; 0: as fast as
-- possible).
--
-- The pauses are drawn at random (exponential, mean ARB_BENCH_DELAY_MS), not
-- constant: with one fixed pause the 64 connections stay in step and send
-- their requests in bursts of 64, so the latency measured at a moderate rate
-- would be the time to work through a burst. Random pauses give arrivals
-- spread as independent clients would send them, at the same mean rate.

local name = os.getenv("ARB_BENCH_NAME") or "gateway"
local venue = os.getenv("ARB_BENCH_VENUE") or "XA"
local symbol = os.getenv("ARB_BENCH_SYMBOL") or "BTCUSD"
local price = os.getenv("ARB_BENCH_PRICE") or "100.00"
local qty = os.getenv("ARB_BENCH_QTY") or "0.001"
local key_buy = os.getenv("ARB_BENCH_KEY_BUY") or "bench-buyer-key-0123456789"
local key_sell = os.getenv("ARB_BENCH_KEY_SELL") or "bench-seller-key-0123456789"
local delay_ms = tonumber(os.getenv("ARB_BENCH_DELAY_MS") or "0")
math.randomseed(os.time())

local function order(side, key)
  local body = string.format(
    '{"venue":"%s","symbol":"%s","side":"%s","type":"limit","price":"%s","qty":"%s","tif":"gtc"}',
    venue, symbol, side, price, qty)
  return wrk.format("POST", "/v1/orders",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end

-- Two prebuilt requests: formatting per request would cost the client time.
-- Built in init(), once wrk knows the Host header to put in them.
local buy, sell
local n = 0

function init(args)
  buy = order("buy", key_buy)
  sell = order("sell", key_sell)
end

function request()
  n = n + 1
  if n % 2 == 0 then return buy end
  return sell
end

-- wrk decides at start whether the script has delay(), so define it only
-- when a pause is wanted.
if delay_ms > 0 then
  function delay()
    -- wrk takes whole milliseconds: round up or down at random so the
    -- mean stays delay_ms.
    local d = -delay_ms * math.log(1 - math.random())
    local whole = math.floor(d)
    if math.random() < d - whole then whole = whole + 1 end
    return whole
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("bench: %s_rps %.0f req/s\n", name, summary.requests / secs))
  io.write(string.format("bench: %s_p50 %.3f ms\n", name, latency:percentile(50) / 1000))
  io.write(string.format("bench: %s_p99 %.3f ms\n", name, latency:percentile(99) / 1000))
  io.write(string.format("bench: %s_errors %d count\n", name, errors))
end
