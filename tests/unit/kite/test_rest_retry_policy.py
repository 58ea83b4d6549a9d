"""Issue #13, finding 8: REST retries honour ``Retry-After`` and never repeat a non-JSON 4xx."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tickwise.adapters.kite.errors import KiteDataError
from tickwise.adapters.kite.rate_limit import RateLimiter
from tickwise.adapters.kite.rest import KiteRestClient
from tickwise.domain.backoff import Backoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[KiteRestClient, FakeClock]:
    clock = FakeClock()
    client = KiteRestClient(
        "key",
        "tok",
        root="http://kite.test",
        transport=httpx.MockTransport(handler),
        clock=clock,
        rate_limiter=RateLimiter(clock=clock, margin=0.0),
        backoff=Backoff(base=0.1, cap=1.0, jitter=0.0),
        max_retries=3,
    )
    return client, clock


def _ok() -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": {"x": 1}})


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413])
async def test_a_non_json_4xx_is_not_retried(status: int) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            status, text="<html>blocked by proxy</html>", headers={"content-type": "text/html"}
        )

    client, clock = _client(handler)
    async with client as kite:
        with pytest.raises(KiteDataError, match="non-JSON"):
            await kite.profile()
    assert calls == 1 and clock.sleeps == []


async def test_a_non_json_429_and_5xx_are_still_retried() -> None:
    responses = [httpx.Response(429, text="slow down"), httpx.Response(503, text="<html>"), _ok()]

    client, _ = _client(lambda request: responses.pop(0))
    async with client as kite:
        assert await kite.profile() == {"x": 1}
        assert kite.retries == 2


async def test_retry_after_in_seconds_is_waited_for_rather_than_the_shorter_backoff() -> None:
    responses = [
        httpx.Response(
            429,
            headers={"Retry-After": "3"},
            json={"status": "error", "error_type": "NetworkException", "message": "too many"},
        ),
        _ok(),
    ]
    client, clock = _client(lambda request: responses.pop(0))
    async with client as kite:
        assert await kite.profile() == {"x": 1}
    assert clock.sleeps and max(clock.sleeps) == pytest.approx(3.0)


async def test_retry_after_as_an_http_date_is_honoured_and_capped() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    far = format_datetime(datetime.now(UTC) + timedelta(hours=5), usegmt=True)
    responses = [
        httpx.Response(503, headers={"Retry-After": soon}, text="maintenance"),
        httpx.Response(503, headers={"Retry-After": far}, text="maintenance"),
        httpx.Response(503, headers={"Retry-After": "not a date"}, text="maintenance"),
        _ok(),
    ]
    client, clock = _client(lambda request: responses.pop(0))
    async with client as kite:
        assert await kite.profile() == {"x": 1}
    waits = [s for s in clock.sleeps if s >= 0.1]
    assert 3.5 < waits[0] <= 5.0
    assert waits[1] == 60.0
    assert waits[2] == pytest.approx(0.4)  # a malformed header falls back to the backoff
