"""A token bucket kept in Redis, so the contracted TPS of an SMSC link holds across every
process that submits on it (ota.md section 4)."""

from __future__ import annotations

import asyncio
import collections

import redis.asyncio as aioredis

# Atomic refill-and-take of up to ARGV[3] tokens, on the Redis server's clock. Returns
# {tokens taken, milliseconds until the next token will be there (0 if all were taken)}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local taken = math.min(wanted, math.floor(tokens))
tokens = tokens - taken
local wait = 0
if taken < wanted then wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return {taken, wait}
"""


class RedisTokenBucket:
    """`rate` messages per second for everything sharing `key`, bursts up to `burst`.

    The callers of one process that wait at the same time share one Redis round trip: a
    window of submits released by one read of submit_sm_resp asks for all its tokens in one
    script call, and each token taken goes straight to a waiting caller (none is held back
    for later, so the bucket's rate and burst hold across processes exactly as with one call
    per token). Waiters are served in arrival order."""

    def __init__(self, url: str, key: str, rate: float, burst: float | None = None) -> None:
        # One script call at a time per bucket (see _serve_waiters), so one connection kept
        # for it: no pool to take it from and check it out of per call (a fifth of a call's
        # CPU). It reconnects by itself after a loss.
        self.client = aioredis.Redis.from_url(url, single_connection_client=True)
        self.key = key
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate / 10))
        self._take = self.client.register_script(_TAKE)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._taker: asyncio.Task[None] | None = None
        self.round_trips = 0  # script calls so far (the tests count them)

    async def acquire(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        if self._taker is None:
            self._taker = asyncio.create_task(self._serve_waiters())
        await future

    async def _serve_waiters(self) -> None:
        waiters = self._waiters
        try:
            while waiters:
                while waiters and waiters[0].done():  # cancelled while waiting
                    waiters.popleft()
                if not waiters:
                    break
                wanted = len(waiters)
                try:
                    self.round_trips += 1
                    taken, wait_ms = await self._take(
                        keys=[self.key], args=[self.rate, self.burst, wanted]
                    )
                except Exception as exc:
                    # Each waiter of this call gets the error, as its own call would have.
                    for _ in range(min(wanted, len(waiters))):
                        waiter = waiters.popleft()
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                for _ in range(int(taken)):
                    # A waiter cancelled during the call wastes its token: safe, never above
                    # the rate.
                    waiter = waiters.popleft()
                    if not waiter.done():
                        waiter.set_result(None)
                if int(wait_ms) > 0:
                    await asyncio.sleep(int(wait_ms) / 1000)
        finally:
            self._taker = None

    async def close(self) -> None:
        if self._taker is not None:
            self._taker.cancel()
            self._taker = None
        while self._waiters:
            self._waiters.popleft().cancel()
        await self.client.aclose()
