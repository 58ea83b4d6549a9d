"""Candles rebuilt from the simulator's WebSocket ticks equal the simulator's REST candles exactly.

In-process: the simulator's market model (``adapters/kite/simulator/market.py``) produces the tick
stream the WebSocket server sends (``snapshots_between(..., spikes=True)``: genuine snapshots plus the
bad "spike" packets) and the REST candles (``Market.candles``, what ``/instruments/historical`` serves).
The ticks go through the real binary codec (encode -> decode, as on the wire) with WebSocket faults
(duplicated frames, extra negative-price LTP packets), then the TickValidator and the CandleBuilder,
driven by a simulated clock so bars close both on the next minute's tick and on the grace timer.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

import pytest

from tickwise.adapters.kite.codec import decode_frame, encode_frame
from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.universe import NIFTY_50_TOKEN, Universe
from tickwise.core.aggregation import RollupBuilder, aggregate_candles
from tickwise.core.candles import CandleBuilder
from tickwise.core.tick_validator import TickValidator
from tickwise.domain.candle import Candle
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.frames import candles_to_frame

DAY = date(2025, 1, 7)  # a day whose seed-42 paths carry spike packets for every equity
SEED = 42

Row = tuple[datetime, float, float, float, float, int]


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(Universe(n_equities=5, today=DAY), seed=SEED)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(DAY, time(hh, mm, ss), tzinfo=IST)


def wire_frames(
    market: Market, tokens: Iterable[int], after: datetime, until: datetime
) -> list[tuple[datetime, bytes]]:
    """One binary frame per exchange second (all tokens' packets of that second), with faults."""
    streams = [market.snapshots_between(token, after, until, spikes=True) for token in tokens]
    merged = heapq.merge(*streams, key=lambda t: t.exchange_timestamp)  # stable: per-token order kept
    by_second: dict[datetime, list[Tick]] = {}
    for tick in merged:
        assert tick.exchange_timestamp is not None
        by_second.setdefault(tick.exchange_timestamp, []).append(tick)
    frames = []
    for i, (second, ticks) in enumerate(by_second.items()):
        if i % 97 == 5:
            # 'negative' fault: an extra LTP packet with a negative price (and no timestamp).
            ticks = [*ticks, Tick(ticks[0].instrument_token, "ltp", True, -12.5)]
        frame = encode_frame(ticks)
        frames.append((second, frame))
        if i % 53 == 7:
            frames.append((second, frame))  # 'duplicate' fault: the whole frame again
    return frames


def replay(
    frames: list[tuple[datetime, bytes]], validator: TickValidator, builder: CandleBuilder
) -> dict[int, list[Candle]]:
    built: dict[int, list[Candle]] = {}
    for second, frame in frames:
        # The frame of exchange second s arrives a little later; the clock closes bars after the grace.
        for closed in builder.on_clock(second + timedelta(milliseconds=300)):
            built.setdefault(closed.candle.instrument_token, []).append(closed.candle)
        for tick in decode_frame(frame):
            if validator.check(tick) is None:
                for closed in builder.on_tick(tick):
                    built.setdefault(closed.candle.instrument_token, []).append(closed.candle)
    for closed in builder.flush():
        built.setdefault(closed.candle.instrument_token, []).append(closed.candle)
    return built


def frame_rows(frame: object) -> list[Row]:
    cols = frame[["time", "open", "high", "low", "close", "volume"]]  # type: ignore[index]
    return [(t.to_pydatetime(), o, h, lo, c, int(v)) for t, o, h, lo, c, v in cols.itertuples(index=False)]


def rows(candles: list[Candle]) -> list[Row]:
    return [(c.time, c.open, c.high, c.low, c.close, c.volume) for c in candles]


def test_session_open_candles_rebuilt_from_ws_ticks_equal_rest_candles(market: Market) -> None:
    tokens = market.universe.tokens  # 5 equities, NIFTY 50 (no volume), USDINR future (CDS divisor)
    frames = wire_frames(market, tokens, at(9, 0), at(9, 24, 59))
    validator, builder = TickValidator(session_day=DAY), CandleBuilder()
    built = replay(frames, validator, builder)

    for token in tokens:
        rest = market.candles(token, 1, at(9, 15), at(9, 24), now=at(16, 0))
        assert len(rest) == 10
        assert rows(built[token]) == rest, f"token {token}"
    assert validator.rejections["spike"] == 1  # INFY's 09:15:33 spike packet
    assert validator.rejections["duplicate"] > 0
    assert validator.rejections["non_positive_price"] > 0
    assert validator.rejections["outside_market_hours"] == len(tokens)  # the 09:08 pre-open trades
    assert builder.late_ticks == 0
    assert built[NIFTY_50_TOKEN][0].volume == 0


def test_candles_around_mid_session_spikes_equal_rest_candles(market: Market) -> None:
    spikes_seen = 0
    for token in [m.token for m in market.universe.equities]:
        path = market.day_path(token, DAY)
        minutes = [int(path.second[i]) // 60 for i in path.spike_after if path.second[i] >= 120]
        if not minutes:
            continue
        minute = minutes[0]
        start = at(9, 15) + timedelta(minutes=minute - 2)
        end = start + timedelta(minutes=4)
        validator, builder = TickValidator(session_day=DAY), CandleBuilder()
        # The last snapshot before the window seeds the volume baseline and the spike reference.
        seed = market.last_snapshot(token, start - timedelta(seconds=1))
        assert validator.check(seed) is None
        builder.on_tick(seed)
        built = replay(
            wire_frames(market, [token], start - timedelta(seconds=1), end - timedelta(seconds=1)),
            validator,
            builder,
        )
        got = [c for c in built[token] if c.time >= start]
        rest = market.candles(token, 1, start, end - timedelta(minutes=1), now=at(16, 0))
        assert rows(got) == rest, f"token {token} around minute {minute}"
        spikes_seen += validator.rejections["spike"]
    assert spikes_seen >= 4


@pytest.mark.slow
def test_a_whole_day_of_ws_ticks_rebuilds_rest_candles_and_rollups(market: Market) -> None:
    tokens = [market.universe.equities[0].token, market.universe.equities[4].token, NIFTY_50_TOKEN]
    frames = wire_frames(market, tokens, at(9, 0), at(15, 30))
    validator, builder = TickValidator(session_day=DAY), CandleBuilder()
    rollup = RollupBuilder()
    built = replay(frames, validator, builder)
    for token in tokens:
        rest = market.candles(token, 1, at(9, 15), at(15, 29), now=at(16, 0))
        assert len(rest) == 375
        assert rows(built[token]) == rest
        live_rollups = [r for c in built[token] for r in rollup.on_candle(c)]
        frame = candles_to_frame(built[token])
        for tf, minutes in (
            (Timeframe.M5, 5),
            (Timeframe.M15, 15),
            (Timeframe.M60, 60),
            (Timeframe.D1, None),
        ):
            start = at(0, 0) if tf is Timeframe.D1 else at(9, 15)
            rest_tf = market.candles(token, minutes, start, at(15, 29), now=at(16, 0))
            live_tf = [c for c in live_rollups if c.timeframe is tf]
            assert rows(live_tf) == rest_tf, f"{token} {tf}"
            batch = aggregate_candles(frame, tf)
            assert frame_rows(batch) == rest_tf, f"{token} {tf} batch"
    assert validator.rejections["spike"] == 5  # INFY 1 + ICICIBANK 4
