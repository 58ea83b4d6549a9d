"""The engine's minute as one wave: roll-ups of every instrument in one call, the bank's step loaded at
start-up, and the garbage collector kept out of the minute; none of it changes a row."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from live_models import frame_bars as _bars
from test_live_engine_one_predict import _step

from tickwise.bench.features import synthetic_candles
from tickwise.core.aggregation import RollupBuilder
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import LiveEngine

HIST, LIVE = 600, 40


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Whatever a test froze is handed back to the collector afterwards."""
    yield
    gc.unfreeze()


def _engine(calc: FeatureCalculator, out: dict[str, list[Any]], *, freeze_gc: bool = False) -> LiveEngine:
    return LiveEngine(
        calc,
        _step(calc),
        lambda table, rows: out.setdefault(table, []).extend(rows),
        wall=lambda: 0.0,
        freeze_gc=freeze_gc,
    )


def test_a_minute_folded_as_one_wave_queues_exactly_the_rows_of_folding_bar_by_bar(unfrozen: None) -> None:
    calc = FeatureCalculator()
    frames = {t: synthetic_candles(HIST + LIVE, seed=t) for t in range(201, 207)}
    one: dict[str, list[Any]] = {}
    many: dict[str, list[Any]] = {}
    e1, e2 = _engine(calc, one), _engine(calc, many, freeze_gc=True)
    for t, f in frames.items():
        e1.open_instrument(t, f.iloc[:HIST])
        e2.open_instrument(t, f.iloc[:HIST])
    bars = {t: _bars(t, f.iloc[HIST:]) for t, f in frames.items()}
    for minute in range(LIVE):
        closing = [t for t in frames if (t + minute) % 4 != 0][:: 1 if minute % 2 else -1]
        minute_bars = [bars[t][minute] for t in closing]
        assert [e1.process(b, 0.0) for b in minute_bars] == e2.process_many(minute_bars, 0.0)
    # Candles and their roll-ups (40 minutes cross 5m and 15m closes), per table in the same order.
    rolled = [b for b in many["candles"] if b.candle.timeframe is not Timeframe.M1]
    assert {b.candle.timeframe for b in rolled} >= {Timeframe.M5, Timeframe.M15}
    assert one["candles"] == many["candles"]
    assert [(r.instrument_token, r.time, r.values.tobytes()) for r in one["features"]] == [
        (r.instrument_token, r.time, r.values.tobytes()) for r in many["features"]
    ]
    assert [s.signal for s in one["signals"]] == [s.signal for s in many["signals"]]


def test_the_minute_runs_without_the_collector_and_freezes_what_it_keeps(unfrozen: None) -> None:
    calc = FeatureCalculator()
    f = synthetic_candles(HIST + 2, seed=9)
    for freeze in (False, True):
        gc.unfreeze()
        out: dict[str, list[Any]] = {}
        engine = _engine(calc, out, freeze_gc=freeze)
        engine.open_instrument(9, f.iloc[:HIST])
        seen: list[bool] = []
        engine.put = lambda table, rows, seen=seen: seen.append(gc.isenabled())  # type: ignore[misc]
        engine.process_many([_bars(9, f.iloc[HIST : HIST + 1])[0]], 0.0)
        assert gc.isenabled()  # handed back after the minute either way
        if freeze:
            assert seen and not any(seen)  # the rows were queued while the collector was paused
            assert gc.get_freeze_count() > 0  # the session's objects left the collector's generations
        else:
            assert all(seen) and gc.get_freeze_count() == 0


def test_opening_runs_the_bank_step_once_on_a_copy_and_leaves_the_stream_as_opened() -> None:
    calc = FeatureCalculator()
    f = synthetic_candles(HIST + 1, seed=11)
    out: dict[str, list[Any]] = {}
    engine = _engine(calc, out)
    engine.open_instrument(11, f.iloc[:HIST])
    assert engine._bank_loaded and len(engine.bank) == 1
    bar: Bar = _bars(11, f.iloc[HIST:])[0]
    expected = calc.open_stream(f.iloc[:HIST]).update(bar)
    engine.process_many([bar], 0.0)
    assert np.array_equal(out["features"][0].values, expected, equal_nan=True)


class _FailsFor(RollupBuilder):
    """A roll-up builder that cannot take one instrument's candles (a bug, or a broken calendar)."""

    def __init__(self, token: int) -> None:
        super().__init__((Timeframe.M5,), source="live")
        self.token = token

    def on_candles(self, candles: Sequence[Candle]) -> list[list[Candle]]:
        if any(c.instrument_token == self.token for c in candles):
            raise RuntimeError("roll-up failed")
        return super().on_candles(candles)


def test_a_failing_roll_up_costs_only_its_own_bar_the_roll_up_never_the_features() -> None:
    calc = FeatureCalculator()
    frames = {t: synthetic_candles(HIST + 5, seed=t) for t in (301, 302)}
    out: dict[str, list[Any]] = {}
    engine = _engine(calc, out)
    for t, f in frames.items():
        engine.open_instrument(t, f.iloc[:HIST])
    engine.rollup = _FailsFor(301)
    bars = {t: _bars(t, f.iloc[HIST:]) for t, f in frames.items()}
    for minute in range(5):
        engine.process_many([bars[301][minute], bars[302][minute]], 0.0)
    assert engine.errors == 5  # one per failed bar of 301, retried alone
    assert len(out["features"]) == 10 and engine.bars == 10
    rolled = [b.candle for b in out["candles"] if b.candle.timeframe is Timeframe.M5]
    assert rolled and {c.instrument_token for c in rolled} == {302}
