"""Rate limiting hooks for the ESME.

The client calls `await limiter.acquire()` once before every submit_sm. Anything with that
coroutine method will do: the portal plugs in a limiter shared by all workers (for example a
Redis token bucket) so that the contracted TPS per bind holds across processes; `TokenBucket`
is the in-process one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class RateLimiter(Protocol):
    async def acquire(self) -> None:
        """Return when one more message may be sent."""


class TokenBucket:
    """`rate` tokens per second, at most `burst` stored; waiters are served in arrival order."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        if self.burst < 1:
            raise ValueError("burst must allow at least one token")
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def acquire(self) -> None:
        if not self._lock.locked() and self.try_acquire():
            return
        async with self._lock:
            while not self.try_acquire():
                await asyncio.sleep((1 - self._tokens) / self.rate)
