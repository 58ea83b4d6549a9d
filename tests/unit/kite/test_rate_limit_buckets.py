"""Request pacing: per-class sliding-window buckets plus a shared 10/s bucket, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from fakes import FakeClock
from tickwise.adapters.kite.rate_limit import EndpointClass, RateLimiter, TokenBucket, endpoint_class


def _max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


@pytest.mark.parametrize(
    ("path", "cls"),
    [
        ("/instruments/historical/408065/minute", EndpointClass.HISTORICAL),
        ("/quote", EndpointClass.QUOTE),
        ("/quote/ltp", EndpointClass.QUOTE),
        ("/quote/ohlc", EndpointClass.QUOTE),
        ("/instruments", EndpointClass.OTHER),
        ("/instruments/NSE", EndpointClass.OTHER),
        ("/user/profile", EndpointClass.OTHER),
        ("/quotes-are-not-quote", EndpointClass.OTHER),
    ],
)
def test_paths_are_classified_for_rate_limiting(path: str, cls: EndpointClass) -> None:
    assert endpoint_class(path) == cls


async def test_historical_requests_never_exceed_three_in_any_sliding_second() -> None:
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=clock, margin=0.05)
    sent: list[float] = []
    for _ in range(20):
        await limiter.acquire(EndpointClass.HISTORICAL)
        sent.append(clock.monotonic())
    assert _max_in_window(sent, 1.0) == 3
    # The first three go out at once (a burst), then three per 1.05 s.
    assert sent[:3] == [1000.0] * 3
    assert sent[-1] - sent[0] == pytest.approx(6 * 1.05)


async def test_quote_requests_are_spaced_by_a_second() -> None:
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=clock, margin=0.0)
    sent = []
    for _ in range(4):
        await limiter.acquire(EndpointClass.QUOTE)
        sent.append(clock.monotonic())
    assert [b - a for a, b in itertools.pairwise(sent)] == [1.0, 1.0, 1.0]


async def test_shared_bucket_caps_the_sum_of_all_classes_at_ten_per_second() -> None:
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=clock, margin=0.0)
    sent = []
    for i in range(30):
        await limiter.acquire(EndpointClass.HISTORICAL if i % 4 == 0 else EndpointClass.OTHER)
        sent.append(clock.monotonic())
    assert _max_in_window(sent, 1.0) <= 10


async def test_concurrent_callers_get_distinct_ordered_slots() -> None:
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=clock, margin=0.0)
    delays = [limiter.reserve(EndpointClass.HISTORICAL) for _ in range(7)]
    assert delays == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]


async def test_an_idle_limiter_lets_a_request_through_at_once() -> None:
    clock = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=clock)
    for _ in range(3):
        await limiter.acquire(EndpointClass.HISTORICAL)
    clock.advance(5)
    await limiter.acquire(EndpointClass.HISTORICAL)
    assert clock.sleeps == []


def test_bucket_rejects_nonsense_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(3, period=0)


async def test_real_clock_limiter_paces_a_burst() -> None:
    limiter = RateLimiter({EndpointClass.QUOTE: 1}, period=0.05, margin=0.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        await limiter.acquire(EndpointClass.QUOTE)
    assert loop.time() - start >= 0.095
