"""The simulated market: determinism, the candle rule, and the statistical properties it promises."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from tickwise.adapters.kite.simulator.market import MINUTES, SPIKE_THRESHOLD, Market
from tickwise.adapters.kite.simulator.universe import NIFTY_50_TOKEN, Universe
from tickwise.domain.calendar import NSE
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST

DAY = date(2026, 11, 20)
INFY = 408065


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(Universe(10, today=DAY), seed=42)


def rebuild_minute_candles(
    ticks: list[Tick], day: date
) -> list[tuple[datetime, float, float, float, float, int]]:
    """The candle rule of market.py, written independently: spike filter, then per-minute OHLCV."""
    open_at = datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=15)
    ref: float | None = None
    buckets: dict[int, list[Tick]] = {}
    for t in ticks:
        if ref is not None and abs(t.last_price / ref - 1) > SPIKE_THRESHOLD:
            continue  # a bad tick
        ref = t.last_price
        assert t.exchange_timestamp is not None
        minute = int((t.exchange_timestamp - open_at).total_seconds() // 60)
        if 0 <= minute < MINUTES:
            buckets.setdefault(minute, []).append(t)
    out = []
    prev_volume = 0
    for minute in sorted(buckets):
        b = buckets[minute]
        prices = [t.last_price for t in b]
        volume = b[-1].volume_traded or 0
        out.append(
            (
                open_at + timedelta(minutes=minute),
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                volume - prev_volume,
            )
        )
        prev_volume = volume
    return out


def test_market_is_deterministic_for_a_seed_and_independent_of_query_order() -> None:
    a = Market(Universe(3, today=DAY), seed=7)
    b = Market(Universe(3, today=DAY), seed=7)
    b.minute_candles(INFY, date(2030, 6, 3))  # touching a far day first changes nothing
    ca, cb = a.minute_candles(INFY, DAY), b.minute_candles(INFY, DAY)
    assert np.array_equal(ca.close, cb.close) and np.array_equal(ca.volume, cb.volume)
    c = Market(Universe(3, today=DAY), seed=8).minute_candles(INFY, DAY)
    assert not np.array_equal(ca.close, c.close)


def test_every_session_has_375_consistent_tick_rounded_minute_candles(market: Market) -> None:
    for token in market.universe.tokens:
        c = market.minute_candles(token, DAY)
        assert len(c.open) == MINUTES
        assert np.all(c.low <= np.minimum(c.open, c.close)) and np.all(np.maximum(c.open, c.close) <= c.high)
        assert np.all(c.low > 0) and np.all(c.volume >= 0)
        tick = market.universe.get(token).tick_size  # type: ignore[union-attr]
        assert np.allclose(np.round(c.close / tick) * tick, c.close, atol=1e-9)
    assert market.minute_candles(NIFTY_50_TOKEN, DAY).volume.sum() == 0


def test_day_opens_at_the_pre_open_price_and_gaps_overnight(market: Market) -> None:
    path = market.day_path(INFY, DAY)
    assert path.second[0] == -420  # 09:08:00 equilibrium trade
    assert path.price[0] == path.level.open == market.minute_candles(INFY, DAY).open[0]
    prev = NSE.previous_trading_day(DAY)
    assert path.level.prev_close == market.minute_candles(INFY, prev).close[-1]
    gaps = [
        market.day_level(INFY, d).open / market.day_level(INFY, d).prev_close - 1
        for d in NSE.trading_days(date(2026, 6, 1), date(2026, 11, 20))
    ]
    assert max(abs(g) for g in gaps) > 0.001


def test_rest_candles_equal_candles_rebuilt_from_the_emitted_snapshots(market: Market) -> None:
    day_start = datetime.combine(DAY, datetime.min.time(), tzinfo=IST)
    for token in (INFY, market.universe.tokens[-1], NIFTY_50_TOKEN):
        ticks = market.snapshots_between(token, day_start, day_start + timedelta(days=1), spikes=True)
        rebuilt = rebuild_minute_candles(ticks, DAY)
        served = market.candles(
            token, 1, day_start, day_start + timedelta(days=1), now=day_start + timedelta(days=1)
        )
        assert rebuilt == served


def test_spikes_reach_the_websocket_stream_but_never_the_candles(market: Market) -> None:
    days = NSE.trading_days(date(2026, 9, 1), DAY)
    spiky = next(
        (t, d) for d in days for t in market.universe.tokens if len(market.day_path(t, d).spike_after)
    )
    token, day = spiky
    path = market.day_path(token, day)
    i = int(path.spike_after[0])
    at = datetime.fromtimestamp(int(path.session_open.timestamp()) + int(path.second[i]), IST)
    ticks = market.snapshots_between(token, at - timedelta(seconds=1), at)
    assert len(ticks) == 2 and abs(ticks[1].last_price / ticks[0].last_price - 1) > SPIKE_THRESHOLD
    candles = market.minute_candles(token, day)
    assert ticks[1].last_price not in set(candles.high) | set(candles.low)


def test_higher_intervals_aggregate_the_minute_candles_aligned_to_0915(market: Market) -> None:
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=IST)
    end = start + timedelta(days=1)
    m1 = market.candles(INFY, 1, start, end, end)
    m60 = market.candles(INFY, 60, start, end, end)
    assert [c[0].strftime("%H:%M") for c in m60] == [
        "09:15",
        "10:15",
        "11:15",
        "12:15",
        "13:15",
        "14:15",
        "15:15",
    ]
    last = m1[360:]  # 15:15 .. 15:29: the short last hour
    assert m60[-1][1:] == (
        last[0][1],
        max(c[2] for c in last),
        min(c[3] for c in last),
        last[-1][4],
        sum(c[5] for c in last),
    )
    (d1,) = market.candles(INFY, None, start, end, end)
    assert d1[0] == start and d1[5] == sum(c[5] for c in m1)


def test_only_candles_whose_interval_has_ended_are_served(market: Market) -> None:
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=IST)
    now = start.replace(hour=10, minute=0, second=30)
    m1 = market.candles(INFY, 1, start, start + timedelta(days=1), now)
    assert m1[-1][0] == start.replace(hour=9, minute=59)
    assert market.candles(INFY, None, start, start + timedelta(days=1), now) == []
    m15 = market.candles(INFY, 15, start, start + timedelta(days=1), now)
    assert m15[-1][0] == start.replace(hour=9, minute=45)  # 09:45-10:00 ended at 10:00


def test_sixty_days_of_ten_instruments_are_full_sessions_regenerated_identically() -> None:
    # Generation speed is measured by `tickwise bench historical` (its backfill stage), not timed here.
    days = NSE.trading_days(date(2026, 8, 1), DAY)[-60:]
    first = Market(Universe(10, today=DAY), seed=3)
    again = Market(Universe(10, today=DAY), seed=3)
    for token in first.universe.tokens[:10]:
        for d in days:
            c = first.minute_candles(token, d)
            assert len(c.close) == MINUTES
            assert np.array_equal(c.close, again.minute_candles(token, d).close)


def test_book_imbalance_weakly_predicts_the_next_minutes_returns(market: Market) -> None:
    """The latent imbalance leads returns: corr(obi at a minute's last snapshot, next 5-minute return) > 0."""
    xs, ys = [], []
    for d in NSE.trading_days(date(2026, 10, 1), DAY)[-15:]:
        for token in market.universe.tokens[:10]:
            path = market.day_path(token, d)
            c = market.minute_candles(token, d)
            session = path.second >= 0
            minute = path.second[session] // 60
            last_idx = np.searchsorted(minute, np.arange(MINUTES), side="right") - 1
            obi = path.imbalance[session][last_idx]
            fwd = np.log(c.close[5:] / c.close[:-5])
            xs.append(obi[:-5])
            ys.append(fwd)
    corr = float(np.corrcoef(np.concatenate(xs), np.concatenate(ys))[0, 1])
    assert 0.03 < corr < 0.4, corr


def test_last_snapshot_is_available_on_holidays_and_before_the_open(market: Market) -> None:
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=IST)
    lvc = market.last_snapshot(INFY, sunday)
    assert lvc.exchange_timestamp == datetime(2026, 11, 20, 15, 29, 59, tzinfo=IST)
    early = market.last_snapshot(INFY, datetime(2026, 11, 20, 9, 10, tzinfo=IST))
    assert early.exchange_timestamp == datetime(2026, 11, 20, 9, 8, tzinfo=IST)
    assert early.depth is not None and len(early.depth.buy) == 5


# sha256 of the 1m candles below, computed with the generator before REST candles stopped caching day
# paths (a regression of the generated data changes it).
CANDLES_DIGEST = "f387d5dc570769ab55d2f3250d6a384b489b9b84fe8a858acea3b0b76cfaf4f3"


def _candles_digest(market: Market) -> str:
    digest = hashlib.sha256()
    for token in market.universe.tokens[:12]:
        for d in NSE.trading_days(date(2026, 10, 1), DAY)[-5:]:
            c = market.minute_candles(token, d)
            for column in (c.open, c.high, c.low, c.close, c.volume):
                digest.update(np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()


def test_rest_candles_are_the_generator_output_of_before_without_filling_the_path_cache() -> None:
    fresh = Market(Universe(10, today=DAY), seed=42, bad_prints=0.01)
    assert _candles_digest(fresh) == CANDLES_DIGEST
    # A backfill reads each day's path once: the paths (MBs each) are not kept, only the candles.
    assert len(fresh._paths) == 0


def test_rest_candles_are_the_same_whether_the_day_path_was_cached_by_the_stream_or_not() -> None:
    streamed = Market(Universe(10, today=DAY), seed=42, bad_prints=0.01)
    for token in streamed.universe.tokens[:12]:
        for d in NSE.trading_days(date(2026, 10, 1), DAY)[-5:]:
            streamed.day_path(token, d)  # what the WebSocket side does first
    assert len(streamed._paths) == 60
    assert _candles_digest(streamed) == CANDLES_DIGEST
