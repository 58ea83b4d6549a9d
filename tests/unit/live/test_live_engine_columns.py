"""A minute handed to the engine as columns (:class:`ClosedBars`, the candle builder's feed close) gives
exactly what the same bars as objects give: the same signals, the same rows in the same order per
table, the same state after; and no :class:`Bar` object is built before the minute's signals."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_models import frame_bars, small_step

from tickwise.bench.features import synthetic_candles
from tickwise.core.candles import ClosedBars
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import FeatureRow, LiveEngine, PendingSignal, SignalStep

HIST, LIVE = 600, 12
TOKENS = tuple(range(201, 209))


@pytest.fixture(scope="module")
def calc() -> FeatureCalculator:
    return FeatureCalculator()


@pytest.fixture(scope="module")
def step(calc: FeatureCalculator) -> SignalStep:
    return small_step(calc, seed=11, rounds=40, version="m-cols")


@pytest.fixture(scope="module")
def frames() -> dict[int, pd.DataFrame]:
    return {t: synthetic_candles(HIST + LIVE, seed=t) for t in TOKENS}


_bars = frame_bars


def _engine(
    calc: FeatureCalculator, step: SignalStep, frames: dict[int, pd.DataFrame], out: list[tuple[str, Any]]
) -> LiveEngine:
    engine = LiveEngine(
        calc, step, lambda table, rows: out.extend((table, r) for r in rows), wall=lambda: 0.0
    )
    for t, f in frames.items():
        engine.open_instrument(t, f.iloc[:HIST])
    return engine


def _row(table: str, row: object) -> tuple[object, ...]:
    """A queued row as comparable values (feature rows by their bytes)."""
    if isinstance(row, FeatureRow):
        return (table, row.instrument_token, row.time, row.values.tobytes())
    if isinstance(row, PendingSignal):
        return (table, row.signal, row.closed_at)
    assert isinstance(row, Bar)
    return (table, row.candle, math.isnan(row.obi_5) or row.obi_5)


def _same_run(
    calc: FeatureCalculator,
    step: SignalStep,
    frames: dict[int, pd.DataFrame],
    minutes: list[list[Bar]],
) -> tuple[LiveEngine, LiveEngine]:
    objects: list[tuple[str, Any]] = []
    columns: list[tuple[str, Any]] = []
    e1, e2 = _engine(calc, step, frames, objects), _engine(calc, step, frames, columns)
    for bars in minutes:
        got1 = e1.process_many(bars, 0.0, defer=True)
        block = ClosedBars.of(bars)
        got2 = e2.process_many(block, 0.0, defer=True)
        assert got1 == got2
        e1.settle()
        e2.settle()
    assert [_row(*r) for r in objects] == [_row(*r) for r in columns]
    assert (e1.bars, e1.signals, e1.errors) == (e2.bars, e2.signals, e2.errors)
    for t in frames:
        assert e1.last_time(t) == e2.last_time(t)
        assert e1.session_bars(t) == e2.session_bars(t)
    return e1, e2


def test_minutes_from_columns_equal_the_same_minutes_from_bar_objects(
    calc: FeatureCalculator, step: SignalStep, frames: dict[int, pd.DataFrame]
) -> None:
    bars = {t: _bars(t, f.iloc[HIST:]) for t, f in frames.items()}
    minutes = [[bars[t][m] for t in TOKENS[:: 1 if m % 2 else -1]] for m in range(LIVE)]
    _, e2 = _same_run(calc, step, frames, minutes)
    assert e2.signals == len(TOKENS) * LIVE  # every bar scored (and roll-ups closed on the way)


def test_a_refused_bar_a_duplicate_and_a_new_instrument_take_the_per_bar_rules(
    calc: FeatureCalculator, step: SignalStep, frames: dict[int, pd.DataFrame]
) -> None:
    bars = {t: _bars(t, f.iloc[HIST:]) for t, f in frames.items()}
    nan_bar = Bar(replace(bars[TOKENS[2]][1].candle, close=math.nan), 0.1)
    new = _bars(999, frames[TOKENS[0]].iloc[HIST + 2 : HIST + 3])[0]
    minutes = [
        [bars[t][0] for t in TOKENS],
        [nan_bar if t == TOKENS[2] else bars[t][1] for t in TOKENS],  # the bank refuses one bar
        [bars[t][1 if t == TOKENS[3] else 2] for t in TOKENS],  # one bar is not newer: a duplicate
        [*(bars[t][3] for t in TOKENS), new],  # an instrument the engine has not opened
    ]
    e1, _ = _same_run(calc, step, frames, minutes)
    assert e1.errors == 1


def test_no_bar_object_is_built_before_the_minutes_signals_are_queued(
    calc: FeatureCalculator, step: SignalStep, frames: dict[int, pd.DataFrame]
) -> None:
    out: list[tuple[str, Any]] = []
    engine = _engine(calc, step, frames, out)
    block = ClosedBars.of([_bars(t, f.iloc[HIST : HIST + 1])[0] for t, f in frames.items()])
    signals = engine.process_many(block, 0.0, defer=True)
    assert not block.materialized
    assert [table for table, _ in out] == ["signals"] * len(TOKENS)
    assert [r.signal for _, r in out] == signals
    assert engine.last_time(TOKENS[0]) == block.times[0]  # a reader settles the minute first
    assert block.materialized
    assert {table for table, _ in out} == {"signals", "candles", "features"}


def test_closed_bars_refuse_two_bars_of_one_instrument_or_mixed_sources() -> None:
    t = pd.Timestamp("2026-01-05 09:15", tz="Asia/Kolkata").to_pydatetime()
    a = Bar(Candle(1, Timeframe.M1, t, 1.0, 1.0, 1.0, 1.0, 1, None, "live"))
    b = Bar(Candle(2, Timeframe.M1, t, 1.0, 1.0, 1.0, 1.0, 1, None, "historical"))
    with pytest.raises(ValueError, match="one bar per instrument"):
        ClosedBars.of([a, a])
    with pytest.raises(ValueError, match="one timeframe and source"):
        ClosedBars.of([a, b])
    with pytest.raises(ValueError, match="at least one bar"):
        ClosedBars.of([])


def test_a_batch_with_unready_rows_and_two_open_instants_scores_as_each_row_alone(
    calc: FeatureCalculator, step: SignalStep, frames: dict[int, pd.DataFrame]
) -> None:
    rows = calc.compute(frames[TOKENS[0]].iloc[: HIST + 6])[calc.names].to_numpy()[-6:].copy()
    rows[1, :] = np.nan  # not ready: no signal
    rows[4, calc.names.index("rsi_14")] = np.nan  # a model feature
    t0 = pd.Timestamp(frames[TOKENS[0]]["time"].iloc[HIST]).to_pydatetime()
    times = [t0, t0, t0 + Timeframe.M1.delta, t0, t0 + Timeframe.M1.delta, t0]
    tokens = [5, 6, 7, 8, 9, 10]
    batched = step.many(tokens, times, rows)
    alone = [step(t, bt, r) for t, bt, r in zip(tokens, times, rows, strict=True)]
    assert batched == alone
    assert sum(s is None for s in batched) == 2
    ready = [s for s in batched if s is not None]
    assert [s.available_at - s.time for s in ready] == [Timeframe.M1.delta] * 4


def test_minutes_of_mixed_instants_and_minutes_that_close_roll_ups_queue_the_object_paths_rows(
    calc: FeatureCalculator, step: SignalStep, frames: dict[int, pd.DataFrame]
) -> None:
    # Odd instruments run a minute ahead: those blocks share no instant (the settle's general rows);
    # the even ones' minutes cross 5m and 15m boundaries (roll-ups closed) and minutes between them
    # (the candles and feature rows straight from the columns).
    bars = {t: _bars(t, f.iloc[HIST:]) for t, f in frames.items()}
    mixed = [[bars[t][m + t % 2] for t in TOKENS] for m in range(LIVE - 1)]
    e1, _ = _same_run(calc, step, frames, mixed)
    same = [[bars[t][m] for t in TOKENS[::2]] for m in range(LIVE)]
    e3, _ = _same_run(calc, step, {t: frames[t] for t in TOKENS[::2]}, same)
    times = [bars[TOKENS[0]][m].time for m in range(LIVE)]
    assert any(t.minute % 5 == 4 for t in times) and any(t.minute % 5 != 4 for t in times)
    assert e1.bars == len(TOKENS) * (LIVE - 1) and e3.bars == len(TOKENS[::2]) * LIVE
