"""One predict per minute: the engine scores every bar that closed a minute in one batched call, and
the signals and feature rows are exactly those of processing the bars one at a time."""

from __future__ import annotations

from typing import Any

from live_models import frame_bars, small_step

from tickwise.bench.features import synthetic_candles
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.pipelines.live.engine import LiveEngine, SignalStep


def _step(calc: FeatureCalculator) -> SignalStep:
    return small_step(calc, seed=5, rounds=60, version="m-many")


_bars = frame_bars


def _engine(calc: FeatureCalculator, step: SignalStep, out: dict[str, list[Any]]) -> LiveEngine:
    return LiveEngine(
        calc, step, lambda table, rows: out.setdefault(table, []).extend(rows), wall=lambda: 0.0
    )


def test_scoring_a_minute_in_one_call_equals_scoring_each_bar_alone_over_many_instruments() -> None:
    calc = FeatureCalculator()
    step = _step(calc)
    hist, live = 600, 12
    frames = {t: synthetic_candles(hist + live, seed=t) for t in range(101, 109)}
    one: dict[str, list[Any]] = {}
    many: dict[str, list[Any]] = {}
    e1, e2 = _engine(calc, step, one), _engine(calc, step, many)
    for t, f in frames.items():
        e1.open_instrument(t, f.iloc[:hist])
        e2.open_instrument(t, f.iloc[:hist])
    bars = {t: _bars(t, f.iloc[hist:]) for t, f in frames.items()}
    for minute in range(live):
        # Interleaved closes: a different subset of instruments closes each minute, in varying order.
        closing = [t for t in frames if (t + minute) % 3 != 0][:: 1 if minute % 2 else -1]
        minute_bars = [bars[t][minute] for t in closing]
        singles = [e1.process(b, 0.0) for b in minute_bars]
        batched = e2.process_many(minute_bars, 0.0)
        assert singles == batched
    assert len(e2.bank) == len(frames)  # every instrument's features came from the one bank step
    assert e1.signals == e2.signals > 20
    assert [s.signal for s in one["signals"]] == [s.signal for s in many["signals"]]
    assert {s.signal.direction for s in many["signals"]} >= {1, -1}
    rows1 = [(r.instrument_token, r.time, r.values.tobytes()) for r in one["features"]]
    rows2 = [(r.instrument_token, r.time, r.values.tobytes()) for r in many["features"]]
    assert rows1 == rows2


def test_a_duplicate_bar_in_a_minute_is_ignored_and_the_rest_are_scored() -> None:
    calc = FeatureCalculator()
    step = _step(calc)
    out: dict[str, list[Any]] = {}
    engine = _engine(calc, step, out)
    f = synthetic_candles(610, seed=3)
    engine.open_instrument(7, f.iloc[:600])
    b = _bars(7, f.iloc[600:602])
    result = engine.process_many([b[0], b[0]], 0.0)
    assert result[1] is None and engine.bars == 1
