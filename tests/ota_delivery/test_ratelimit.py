"""The SMSC link's token bucket kept in Redis: one rate for every process sharing the link."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from django.conf import settings

from cardmgmt.ratelimit import RedisTokenBucket

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis"),
    reason="needs Redis as the broker (make test uses redis://127.0.0.1:6379)",
)


def test_two_processes_share_one_rate():
    key = f"test-bucket-{uuid.uuid4().hex}"

    async def run() -> float:
        # Two buckets on one key stand for two link processes on one SMSC account.
        first = RedisTokenBucket(settings.CELERY_BROKER_URL, key, rate=500, burst=50)
        second = RedisTokenBucket(settings.CELERY_BROKER_URL, key, rate=500, burst=50)
        start = time.perf_counter()
        await asyncio.gather(*(b.acquire() for b in (first, second) for _ in range(200)))
        elapsed = time.perf_counter() - start
        await first.close()
        await second.close()
        return elapsed

    elapsed = asyncio.run(run())
    # 400 tokens at 500/s with a burst of 50: at least (400 - 50) / 500 = 0.7 s.
    assert elapsed >= 0.65, elapsed
    assert elapsed < 5, elapsed


def test_a_whole_window_waiting_at_once_is_served():
    key = f"test-bucket-{uuid.uuid4().hex}"

    async def run() -> None:
        bucket = RedisTokenBucket(settings.CELERY_BROKER_URL, key, rate=5000, burst=100)
        await asyncio.wait_for(asyncio.gather(*(bucket.acquire() for _ in range(256))), 10)
        await bucket.close()

    asyncio.run(run())


def test_waiters_at_the_same_time_share_one_round_trip():
    key = f"test-bucket-{uuid.uuid4().hex}"

    async def run() -> int:
        bucket = RedisTokenBucket(settings.CELERY_BROKER_URL, key, rate=100_000, burst=1000)
        await asyncio.wait_for(asyncio.gather(*(bucket.acquire() for _ in range(256))), 10)
        trips = bucket.round_trips
        await bucket.close()
        return trips

    # One script call took the 256 tokens (the burst holds them), not one call per token.
    assert asyncio.run(run()) == 1


def test_a_cancelled_waiter_does_not_hold_up_the_others():
    key = f"test-bucket-{uuid.uuid4().hex}"

    async def run() -> None:
        bucket = RedisTokenBucket(settings.CELERY_BROKER_URL, key, rate=100, burst=1)
        await bucket.acquire()  # the bucket is empty now: the next token is 10 ms away
        doomed = asyncio.ensure_future(bucket.acquire())
        others = [asyncio.ensure_future(bucket.acquire()) for _ in range(3)]
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.wait_for(asyncio.gather(*others), 5)
        await bucket.close()

    asyncio.run(run())
