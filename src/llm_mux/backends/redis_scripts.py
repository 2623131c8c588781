"""The two server-side scripts behind shared limits (SPEC §8), in Lua for Redis ≥ 5.

Both read the clock with Redis ``TIME``, so the hosts' clocks never matter, and both touch
only the two keys of one group, ``{namespace:group}:rate`` (a hash: ``tat``, ``ttat``,
``pause``) and ``{namespace:group}:slots`` (a sorted set: token → lease expiry). The hash
tag keeps both in one Redis Cluster slot. Times are milliseconds, stored with µs precision
as ``%.3f`` strings (a Lua number printed plainly loses digits past 14). The arithmetic is
:class:`llm_mux.backends.pacing.Pacer`'s.
"""

from __future__ import annotations

# KEYS: rate, slots.
# ARGV: interval_ms, tolerance_ms, ms_per_token (0: no tpm), max_concurrent (0: none),
#       token, lease_ms.
# Returns {status, ms}: status 1 = admitted, start after ms; 0 = token budget spent, ask
# again after ms; -1 = every slot taken, ask again when one frees (ms: earliest expiry).
# A token that already holds a slot (a request that woke too late for its start time and
# asks for a new one) keeps it without counting twice.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_token, limit, lease = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local state = redis.call('HMGET', KEYS[1], 'tat', 'ttat', 'pause')
local tat = tonumber(state[1]) or 0
local ttat = tonumber(state[2]) or 0
local pause = tonumber(state[3]) or 0
if per_token > 0 and ttat - now > 60000 then
  return {0, string.format('%.3f', ttat - 60000 - now)}
end
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.3f', now))
  local holds = redis.call('ZSCORE', KEYS[2], ARGV[5])
  if not holds and redis.call('ZCARD', KEYS[2]) >= limit then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {-1, string.format('%.3f', tonumber(first[2]) - now)}
  end
  redis.call('ZADD', KEYS[2], string.format('%.3f', now + lease), ARGV[5])
  redis.call('PEXPIRE', KEYS[2], math.ceil(lease * 2))
end
local start = math.max(now, pause)
if interval > 0 then
  local base = math.max(tat, start)
  start = math.max(start, base - tolerance)
  tat = base + interval
  redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat))
end
local horizon = math.max(tat, ttat, pause) - now + tolerance + 60000
redis.call('PEXPIRE', KEYS[1], math.ceil(horizon))
return {1, string.format('%.3f', start - now)}
"""

# KEYS: rate, slots.
# ARGV: token ('' for none), renew_ms (> 0: extend the token's lease; 0: release it),
#       tokens used, ms_per_token, pause_ms.
# Returns 1 if the token was held, else 0.
UPDATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local token, renew = ARGV[1], tonumber(ARGV[2])
local used, per_token, pause = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local held = 0
local function keep_for(ms)
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], math.ceil(ms)) end
end
if token ~= '' then
  if renew > 0 then
    held = redis.call('ZADD', KEYS[2], 'XX', 'CH', string.format('%.3f', now + renew), token)
    redis.call('PEXPIRE', KEYS[2], math.ceil(renew * 2))
  else
    held = redis.call('ZREM', KEYS[2], token)
  end
end
if used > 0 and per_token > 0 then
  local ttat = tonumber(redis.call('HGET', KEYS[1], 'ttat')) or 0
  ttat = math.max(ttat, now) + used * per_token
  redis.call('HSET', KEYS[1], 'ttat', string.format('%.3f', ttat))
  keep_for(ttat - now + 60000)
end
if pause > 0 then
  local until_ = math.max(tonumber(redis.call('HGET', KEYS[1], 'pause')) or 0, now + pause)
  redis.call('HSET', KEYS[1], 'pause', string.format('%.3f', until_))
  keep_for(pause + 60000)
end
return held
"""
