"""KiteRestClient against an in-process httpx transport: envelopes, retries, chunking, parsing."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from fakes import FakeClock
from tickwise.adapters.kite.backoff import Backoff
from tickwise.adapters.kite.errors import (
    KiteDataError,
    KiteInputError,
    KiteNetworkError,
    KiteRateLimitError,
    KiteTokenError,
)
from tickwise.adapters.kite.mapping import CandleRow, parse_instruments_csv, to_kite_wall_clock
from tickwise.adapters.kite.rate_limit import RateLimiter
from tickwise.adapters.kite.rest import KiteRestClient, checksum, historical_chunks, merge_candle_rows
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

CSV_HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    "instrument_type,segment,exchange\n"
)
CSV_ROWS = (
    "3813889,14898,CENTRALBK-BE,CENTRAL BANK OF INDIA,0.0,,0.0,0.05,1,EQ,NSE,NSE\n"
    "12073986,47164,BANKNIFTY18JAN23500CE,,2528.4,2018-01-25,23500.0,0.05,40,CE,NFO-OPT,NFO\n"
    "256265,1001,NIFTY 50,NIFTY 50,0,,0,0.0,0,EQ,INDICES,NSE\n"
)


def _ok(data: object) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data})


def _err(status: int, error_type: str, message: str = "nope") -> httpx.Response:
    return httpx.Response(
        status, json={"status": "error", "message": message, "error_type": error_type, "data": None}
    )


def _client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> KiteRestClient:
    clock = FakeClock()
    return KiteRestClient(
        "key",
        "tok",
        root="http://kite.test",
        transport=httpx.MockTransport(handler),
        clock=clock,
        rate_limiter=RateLimiter(clock=clock),
        backoff=Backoff(base=0.1, cap=1.0, jitter=0.0),
        **kwargs,  # type: ignore[arg-type]
    )


def test_checksum_matches_the_documented_vector() -> None:
    assert (
        checksum("kite_api_key", "req_token_123", "api_secret_xyz")
        == "4c4f822eb1e862cff7288dd8145690adc6a8788430ab452d2ac666dcd00d94ef"
    )


async def test_every_request_carries_version_and_authorization_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok({"user_id": "AB1234"})

    async with _client(handler) as kite:
        assert (await kite.profile())["user_id"] == "AB1234"
    assert seen[0].headers["X-Kite-Version"] == "3"
    assert seen[0].headers["Authorization"] == "token key:tok"
    assert seen[0].url.path == "/user/profile"


async def test_generate_session_posts_the_checksum_and_adopts_the_token() -> None:
    seen: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/session/token":
            assert "Authorization" not in request.headers
            seen.append(parse_qs(request.content.decode()))
            return _ok({"access_token": "fresh", "user_id": "U1", "login_time": "2026-11-23 08:30:00"})
        assert request.headers["Authorization"] == "token key:fresh"
        return _ok({"user_id": "U1"})

    async with _client(handler) as kite:
        session = await kite.generate_session("req", "secret")
        await kite.profile()
    assert seen[0]["checksum"] == [checksum("key", "req", "secret")]
    assert seen[0]["request_token"] == ["req"]
    assert session.login_time == datetime(2026, 11, 23, 8, 30, tzinfo=IST)
    assert "fresh" not in repr(session)


async def test_rate_limit_and_gateway_errors_are_retried_with_backoff() -> None:
    responses = [
        _err(429, "NetworkException"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        _ok({"x": 1}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return responses.pop(0)

    async with _client(handler) as kite:
        assert await kite.profile() == {"x": 1}
        assert kite.retries == 2
        assert kite.clock.sleeps == [0.2, 0.2]  # type: ignore[attr-defined]


async def test_transport_errors_and_timeouts_are_retried_then_surface_as_network_errors() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused")

    async with _client(handler, max_retries=3) as kite:
        with pytest.raises(KiteNetworkError):
            await kite.profile()
    assert calls == 4


@pytest.mark.parametrize(
    ("status", "kind", "cls"),
    [(400, "InputException", KiteInputError), (403, "TokenException", KiteTokenError)],
)
async def test_bad_input_and_bad_token_are_never_retried(
    status: int, kind: str, cls: type[Exception]
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return _err(status, kind)

    async with _client(handler) as kite:
        with pytest.raises(cls):
            await kite.profile()
    assert calls == 1


async def test_session_expiry_hook_fires_once_on_the_first_token_error() -> None:
    fired: list[KiteTokenError] = []

    async def hook(exc: KiteTokenError) -> None:
        fired.append(exc)

    async with _client(lambda r: _err(403, "TokenException"), on_session_expired=hook) as kite:
        for _ in range(3):
            with pytest.raises(KiteTokenError):
                await kite.profile()
    assert len(fired) == 1 and fired[0].status == 403


async def test_rate_limit_error_surfaces_after_the_last_retry() -> None:
    async with _client(lambda r: _err(429, "NetworkException"), max_retries=2) as kite:
        with pytest.raises(KiteRateLimitError) as info:
            await kite.profile()
    assert info.value.status == 429


async def test_success_status_with_a_non_json_body_is_a_data_error() -> None:
    async with _client(lambda r: httpx.Response(200, text="<html/>"), max_retries=0) as kite:
        with pytest.raises(KiteDataError):
            await kite.profile()


def test_instrument_csv_rows_are_typed() -> None:
    dump = parse_instruments_csv(CSV_HEADER + CSV_ROWS)
    assert dump.rejected == []
    central, option, index = dump.instruments
    assert central.instrument_token == 3813889 and central.name == "CENTRAL BANK OF INDIA"
    assert central.expiry is None and central.tick_size == 0.05 and central.lot_size == 1
    assert option.expiry == date(2018, 1, 25) and option.strike == 23500.0 and option.name == ""
    assert option.instrument_type == "CE" and option.segment == "NFO-OPT" and option.exchange == "NFO"
    assert not index.tradable and index.segment == "INDICES"


def test_malformed_instrument_rows_are_rejected_with_a_reason_not_a_crash() -> None:
    dump = parse_instruments_csv(CSV_HEADER + CSV_ROWS + "notanumber,1,X,,0,,0,0.05,1,EQ,NSE,NSE\n")
    assert len(dump.instruments) == 3
    assert len(dump.rejected) == 1 and dump.rejected[0].startswith("line 5")


def test_instrument_csv_without_the_expected_header_is_an_error() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        parse_instruments_csv("a,b\n1,2\n")


async def test_gzipped_instrument_dump_is_decompressed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/instruments/NSE"
        return httpx.Response(
            200, content=gzip.compress((CSV_HEADER + CSV_ROWS).encode()), headers={"Content-Type": "text/csv"}
        )

    async with _client(handler) as kite:
        instruments = await kite.instruments("NSE")
    assert [i.instrument_token for i in instruments] == [3813889, 12073986, 256265]


def test_tz_aware_bounds_are_sent_as_ist_wall_clock() -> None:
    assert to_kite_wall_clock(datetime(2024, 1, 1, 3, 45, tzinfo=UTC)) == "2024-01-01 09:15:00"
    assert to_kite_wall_clock(date(2024, 1, 1), end_of_day=True) == "2024-01-01 23:59:59"
    with pytest.raises(ValueError, match="naive"):
        to_kite_wall_clock(datetime(2024, 1, 1, 9, 15))


@pytest.mark.parametrize(
    ("interval", "days"),
    [("minute", 59), ("5minute", 99), ("15minute", 199), ("60minute", 399), ("day", 1999)],
)
def test_chunks_span_at_most_n_minus_one_days_and_tile_the_range(interval: str, days: int) -> None:
    start = datetime(2020, 1, 1, 9, 15, tzinfo=IST)
    end = start + timedelta(days=days * 3 + 7, hours=5)
    chunks = historical_chunks(start, end, interval)
    assert chunks[0][0] == start and chunks[-1][1] == end
    assert len(chunks) == 4
    for (a, b), (c, _) in itertools.pairwise(chunks):
        assert b - a == timedelta(days=days)
        assert c - b == timedelta(seconds=1)


def test_a_range_within_one_span_is_one_chunk_and_a_point_range_too() -> None:
    t = datetime(2024, 1, 1, 9, 15, tzinfo=IST)
    assert historical_chunks(t, t + timedelta(days=59), "minute") == [(t, t + timedelta(days=59))]
    assert historical_chunks(t, t, "minute") == [(t, t)]
    with pytest.raises(ValueError):
        historical_chunks(t, t - timedelta(seconds=1), "minute")
    with pytest.raises(ValueError):
        historical_chunks(t, t, "2minute")


def test_merge_dedupes_overlapping_chunks_and_sorts() -> None:
    t = datetime(2024, 1, 1, 9, 15, tzinfo=IST)
    row = lambda m, c: CandleRow(t + timedelta(minutes=m), 1, 2, 0.5, c, 10)  # noqa: E731
    merged = merge_candle_rows([[row(2, 1.0), row(0, 1.0), row(1, 1.0)], [row(2, 1.5), row(3, 1.0)]])
    assert [r.time.minute for r in merged] == [15, 16, 17, 18]
    assert merged[2].close == 1.5


async def test_historical_fetches_every_chunk_and_returns_each_candle_once() -> None:
    requests: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        requests.append((params["from"], params["to"]))
        assert request.url.path == "/instruments/historical/408065/minute"
        assert params["continuous"] == "0"
        first = datetime.strptime(params["from"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
        last = datetime.strptime(params["to"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
        assert last - first <= timedelta(days=59)
        # A deliberately sloppy server: one candle at each end of every window, the first repeated.
        day = first.replace(hour=9, minute=15, second=0)
        candles = []
        while day <= last:
            if day >= first:
                stamp = day.strftime("%Y-%m-%dT%H:%M:%S+0530")
                candles.append([stamp, 100, 101, 99, 100.5, 1000, 7])
            day += timedelta(days=1)
        candles += candles[:1]
        return _ok({"candles": candles})

    start = datetime(2024, 1, 1, 3, 45, tzinfo=UTC)  # 09:15 IST
    end = datetime(2024, 6, 30, 18, 29, 59, tzinfo=IST)
    async with _client(handler) as kite:
        candles = await kite.historical(408065, Timeframe.M1, start, end, oi=True)
        frame = await kite.historical_frame(408065, "minute", start, end)
    assert requests[0] == ("2024-01-01 09:15:00", "2024-02-29 09:15:00")
    assert requests[1][0] == "2024-02-29 09:15:01"
    times = [c.time for c in candles]
    assert times == sorted(set(times))
    assert len(times) == (date(2024, 6, 30) - date(2024, 1, 1)).days + 1
    assert all(
        c.time.tzinfo is not None and c.time.utcoffset() == timedelta(hours=5, minutes=30) for c in candles
    )
    assert candles[0].oi == 7 and candles[0].timeframe is Timeframe.M1 and candles[0].source == "historical"
    assert list(frame.columns)[:3] == ["instrument_token", "timeframe", "time"]
    assert len(frame) == len(candles) and str(frame["time"].dt.tz) == "Asia/Kolkata"


async def test_unknown_interval_is_refused_before_any_request() -> None:
    async with _client(lambda r: pytest.fail("no request expected")) as kite:
        with pytest.raises(ValueError, match="unknown historical interval"):
            await kite.historical(1, "2minute", date(2024, 1, 1), date(2024, 1, 2))


async def test_quote_sends_repeated_instrument_keys() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _ok({"NSE:INFY": {"last_price": 1500.0}})

    async with _client(handler) as kite:
        data = await kite.ltp(["NSE:INFY", "NSE:NIFTY 50"])
    assert data["NSE:INFY"]["last_price"] == 1500.0
    assert seen[0].url.params.get_list("i") == ["NSE:INFY", "NSE:NIFTY 50"]
    assert json.loads(seen[0].content or b"null") is None
