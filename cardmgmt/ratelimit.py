"""A token bucket kept in Redis, so the contracted TPS of an SMSC link holds across every
process that submits on it (ota.md section 4)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

# Atomic refill-and-take, on the Redis server's clock. Returns 0 when a token was taken,
# else the milliseconds until one will be there.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return wait
"""


class RedisTokenBucket:
    """`rate` messages per second for everything sharing `key`, bursts up to `burst`."""

    def __init__(self, url: str, key: str, rate: float, burst: float | None = None) -> None:
        # A small pool that makes callers wait for a connection: a window of submits asks
        # for tokens all at once, and must not open (or be refused) one connection each.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=4, timeout=10)
        self.client = aioredis.Redis(connection_pool=pool)
        self.key = key
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate / 10))
        self._take = self.client.register_script(_TAKE)

    async def acquire(self) -> None:
        while True:
            wait_ms = int(await self._take(keys=[self.key], args=[self.rate, self.burst]))
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)

    async def close(self) -> None:
        await self.client.aclose()
