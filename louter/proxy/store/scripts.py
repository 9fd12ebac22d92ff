"""The Lua scripts behind RedisStore: each one atomic, each reading Redis server TIME
(never the client's clock), each touching only the keys it is given (so hash-tagged keys
keep it valid on Redis Cluster). Buckets are hashes {t: tokens, at: seconds}; leases are
sorted sets {lease: expiry in ms}. Every key expires once it would be back at its
default (a full bucket, no lease), so Redis holds only what is live."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

_REFILL = """
local function refill(key, cap, rate)
  local state = redis.call('HMGET', key, 't', 'at')
  if not state[1] then return cap end
  return math.min(cap, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local function store(key, cap, rate, tokens)
  redis.call('HSET', key, 't', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
  redis.call('PEXPIRE', key, math.ceil(math.max(0, cap - tokens) / rate * 1000) + 1000)
end
"""

# KEYS: buckets; ARGV: capacity, window seconds, cost per key.
# -> {allowed, retry_after_ms, remaining_1, reset_ms_1, remaining_2, reset_ms_2, ...}
RESERVE = (
    _NOW
    + _REFILL
    + """
local have, wait = {}, 0
for i = 1, #KEYS do
  local cap, cost = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i])
  local rate = cap / tonumber(ARGV[3 * i - 1])
  have[i] = refill(KEYS[i], cap, rate)
  if cost > have[i] then wait = math.max(wait, (cost - have[i]) / rate) end
end
local out = {1, 0}
if wait > 0 then out = {0, math.ceil(wait * 1000)} end
for i = 1, #KEYS do
  local cap = tonumber(ARGV[3 * i - 2])
  local rate = cap / tonumber(ARGV[3 * i - 1])
  local tokens = have[i]
  if wait <= 0 then
    tokens = tokens - tonumber(ARGV[3 * i])
    store(KEYS[i], cap, rate, tokens)
  end
  out[#out + 1] = math.max(0, math.floor(tokens))
  out[#out + 1] = math.ceil(math.max(0, cap - tokens) / rate * 1000)
end
return out
"""
)

# KEYS: buckets, then lease sets; ARGV: number of buckets, lease ms, lease id, then
# capacity, window seconds, cost per bucket, then the cap of each lease set.
# -> {1, 0, 0, remaining_1, reset_ms_1, ...} admitted (the slot taken), {0, retry_ms, 0,
# ...} a bucket short, {0, 0, 1} a lease set full (nothing read or charged)
ADMIT = (
    _NOW
    + _REFILL
    + """
local nb, ms, id = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local at = math.floor(now * 1000)
for i = nb + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', at)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + 2 * nb + i]) then return {0, 0, 1} end
end
local have, wait = {}, 0
for i = 1, nb do
  local cap, cost = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 3])
  local rate = cap / tonumber(ARGV[3 * i + 2])
  have[i] = refill(KEYS[i], cap, rate)
  if cost > have[i] then wait = math.max(wait, (cost - have[i]) / rate) end
end
local out = {1, 0, 0}
if wait > 0 then out = {0, math.ceil(wait * 1000), 0} end
for i = 1, nb do
  local cap = tonumber(ARGV[3 * i + 1])
  local rate = cap / tonumber(ARGV[3 * i + 2])
  local tokens = have[i]
  if wait <= 0 then
    tokens = tokens - tonumber(ARGV[3 * i + 3])
    store(KEYS[i], cap, rate, tokens)
  end
  out[#out + 1] = math.max(0, math.floor(tokens))
  out[#out + 1] = math.ceil(math.max(0, cap - tokens) / rate * 1000)
end
if wait <= 0 then
  for i = nb + 1, #KEYS do
    redis.call('ZADD', KEYS[i], at + ms, id)
    if redis.call('PTTL', KEYS[i]) < ms then redis.call('PEXPIRE', KEYS[i], ms) end
  end
end
return out
"""
)

# KEYS[1]: bucket; ARGV: capacity, window seconds, delta (tokens to charge; < 0 refunds)
SETTLE = (
    _NOW
    + _REFILL
    + """
local cap = tonumber(ARGV[1])
local rate = cap / tonumber(ARGV[2])
store(KEYS[1], cap, rate, refill(KEYS[1], cap, rate) - tonumber(ARGV[3]))
return 1
"""
)

_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
"""

# KEYS: lease sets; ARGV: lease ms, lease id, cap per key. -> 1 taken, 0 full
ACQUIRE = (
    _NOW_MS
    + """
local ms = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[i + 2]) then return 0 end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + ms, ARGV[2])
  extend(KEYS[i], ms)
end
return 1
"""
)

# KEYS: lease sets; ARGV: lease ms, lease id
RENEW = (
    _NOW_MS
    + """
local ms = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + ms, ARGV[2]) == 1 then extend(KEYS[i], ms) end
end
return 1
"""
)

# KEYS[1]: counter; ARGV: amount, ttl ms (0: none) -> the new count
INCR = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return count
"""

# KEYS[1]: hash; ARGV: ttl ms (0: none), then field, amount pairs
HINCR = """
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
"""

# KEYS[1]: spend counter; ARGV: limit, amount, ttl ms (0: none) -> {allowed, total}
SPEND = """
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
if total >= tonumber(ARGV[1]) then return {0, total} end
total = redis.call('INCRBY', KEYS[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, total}
"""


@dataclass(frozen=True, slots=True)
class Script:
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324 - Redis names scripts by SHA-1
