"""A minute's signals first: with ``defer`` the engine queues a minute's 1m signals and leaves the rest
(candles, roll-ups, feature rows, longer timeframes) until it is settled, after the signals' commit. The
rows end up the same, in the same order per table, as finishing each minute at once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest
from live_models import frame_bars as _bars
from test_live_engine_one_predict import _step
from test_tick_consumer import DAY, TOKEN, StepClock, at, history, tick

from tickwise.bench.features import synthetic_candles
from tickwise.core.candles import CandleBuilder
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.tick_validator import TickValidator
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks, RecordingHooks
from tickwise.pipelines.live.consumer import TickConsumer
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.feed_watch import FeedWatch
from tickwise.pipelines.live.repair import RepairQueue

HIST, LIVE = 600, 32
TOKENS = tuple(range(301, 306))


def _recording(calc: FeatureCalculator, log: list[tuple[str, list[Any]]]) -> LiveEngine:
    return LiveEngine(
        calc, _step(calc), lambda table, rows: log.append((table, list(rows))), wall=lambda: 0.0
    )


def _per_table(log: list[tuple[str, list[Any]]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for table, rows in log:
        out.setdefault(table, []).extend(rows)
    return out


def _comparable(tables: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        "candles": tables.get("candles", []),
        "features": [(r.instrument_token, r.time, r.values.tobytes()) for r in tables.get("features", [])],
        "signals": [p.signal for p in tables.get("signals", [])],
    }


def _minutes() -> tuple[dict[int, list[Bar]], Any]:
    frames = {t: synthetic_candles(HIST + LIVE, seed=t) for t in TOKENS}
    return {t: _bars(t, f.iloc[HIST:]) for t, f in frames.items()}, frames


def test_a_deferred_minute_puts_only_its_signals_and_settling_queues_the_same_rows_per_table() -> None:
    calc = FeatureCalculator()
    bars, frames = _minutes()
    at_once: list[tuple[str, list[Any]]] = []
    deferred: list[tuple[str, list[Any]]] = []
    e1, e2 = _recording(calc, at_once), _recording(calc, deferred)
    for t, f in frames.items():
        e1.open_instrument(t, f.iloc[:HIST])
        e2.open_instrument(t, f.iloc[:HIST])
    for minute in range(LIVE):
        closing = [bars[t][minute] for t in TOKENS if (t + minute) % 3 != 0]
        if minute % 7 == 3 and minute + 1 < LIVE:  # an instrument two bars behind: two waves
            closing.append(bars[TOKENS[0]][minute + 1])
        got_at_once = e1.process_many(closing, 0.0)
        before = len(deferred)
        got = e2.process_many(closing, 0.0, defer=True)
        assert got == got_at_once
        assert {table for table, _ in deferred[before:]} <= {"signals"}  # nothing but the signals yet
        assert e2.deferred and e2.bars == e1.bars
        e2.settle()
        assert not e2.deferred
        assert {table for table, _ in deferred[before:]} >= {"candles", "features"}
    a, d = _per_table(at_once), _per_table(deferred)
    assert {b.candle.timeframe for b in d["candles"]} >= {Timeframe.M1, Timeframe.M5, Timeframe.M15}
    assert _comparable(a) == _comparable(d)


@pytest.mark.parametrize("entry", ["process", "process_many", "rewind"])
def test_every_entry_point_settles_a_deferred_minute_before_it_goes_on(entry: str) -> None:
    calc = FeatureCalculator()
    bars, frames = _minutes()
    at_once: list[tuple[str, list[Any]]] = []
    deferred: list[tuple[str, list[Any]]] = []
    e1, e2 = _recording(calc, at_once), _recording(calc, deferred)
    for t, f in frames.items():
        e1.open_instrument(t, f.iloc[:HIST])
        e2.open_instrument(t, f.iloc[:HIST])
    first = [bars[t][0] for t in TOKENS]
    e1.process_many(first, 0.0)
    e2.process_many(first, 0.0, defer=True)
    token = TOKENS[1]
    for engine in (e1, e2):
        if entry == "process":
            engine.process(bars[token][1], 0.0)
        elif entry == "process_many":
            engine.process_many([bars[t][1] for t in TOKENS], 0.0, defer=engine is e2)
            engine.settle()
        else:  # the minute of 0 corrected: its candle and roll-ups are replayed after the deferred ones
            engine.rewind(token, [replace(bars[token][0], obi_5=0.25)], 0.0)
    assert not e2.deferred
    assert _comparable(_per_table(at_once)) == _comparable(_per_table(deferred))


def test_a_failing_part_of_the_rest_lets_the_others_run_and_is_raised() -> None:
    calc = FeatureCalculator()
    bars, frames = _minutes()
    log: list[tuple[str, list[Any]]] = []

    class Failing(LiveEngine):
        def _longer(self, folded: Any, closed_at: float) -> None:
            raise RuntimeError("scorer broke")

    engine = Failing(calc, _step(calc), lambda table, rows: log.append((table, list(rows))), wall=lambda: 0.0)
    for t, f in frames.items():
        engine.open_instrument(t, f.iloc[:HIST])
    engine.process_many([bars[t][0] for t in TOKENS], 0.0, defer=True)
    with pytest.raises(RuntimeError, match="scorer broke"):
        engine.settle()
    assert not engine.deferred
    assert len(_per_table(log)["candles"]) == len(TOKENS)  # the candles' part ran all the same


def _consumer(engine: LiveEngine, after: Any, put: Any) -> tuple[TickConsumer, StepClock, RepairQueue]:
    clock = StepClock(at(9, 15))
    repairs = RepairQueue(NSE)
    consumer = TickConsumer(
        engine=engine,
        validator=TickValidator(NSE, 0.03, session_day=DAY),
        builder=CandleBuilder(calendar=NSE, grace_s=2.0),
        repairs=repairs,
        watch=FeedWatch(silence_s=1.5, started=time.monotonic()),
        put=put,
        clock=clock,
        until=at(15, 30),
        hooks=NullHooks(),
        after_signals=after,
    )
    return consumer, clock, repairs


def test_the_consumer_runs_the_rest_of_a_minute_only_after_its_signals_were_written() -> None:
    calc = FeatureCalculator()
    log: list[tuple[str, list[Any]]] = []
    engine = LiveEngine(calc, _step(calc), lambda table, rows: log.append((table, list(rows))))
    for token in (TOKEN, TOKEN + 1):
        engine.open_instrument(token, history())
    seen_when_written: list[set[str]] = []

    async def written() -> None:
        await asyncio.sleep(0)
        seen_when_written.append({table for table, _ in log})

    consumer, clock, _ = _consumer(engine, written, lambda table, rows: None)
    clock.current = at(9, 16, 1)
    first = [replace(tick(100.0, at(9, 15, 5), 10), instrument_token=t) for t in (TOKEN, TOKEN + 1)]
    closing = [replace(tick(100.1, at(9, 16), 20), instrument_token=t) for t in (TOKEN, TOKEN + 1)]
    consumer.consume_batch(first + closing)
    assert engine.deferred and engine.bars == 2
    asyncio.run(consumer.settle())
    assert len(seen_when_written) == 1  # the rest waited for the writer ...
    assert not seen_when_written[0] & {"candles", "features"}  # ... which had no candle or feature yet
    assert not engine.deferred
    assert {table for table, _ in log} >= {"candles", "features"}
    asyncio.run(consumer.settle())  # nothing deferred: the writer is not waited on again
    assert len(seen_when_written) == 1


def test_a_minute_whose_rest_fails_is_marked_for_repair_and_the_consumer_goes_on() -> None:
    calc = FeatureCalculator()

    class Failing(LiveEngine):
        def _longer(self, folded: Any, closed_at: float) -> None:
            raise RuntimeError("scorer broke")

    engine = Failing(calc, _step(calc), lambda table, rows: None)
    engine.open_instrument(TOKEN, history())

    async def written() -> None:
        return None

    consumer, clock, repairs = _consumer(engine, written, lambda table, rows: None)
    clock.current = at(9, 16, 1)
    consumer.consume_batch([tick(100.0, at(9, 15, 5), 10), tick(100.1, at(9, 16), 20)])
    asyncio.run(consumer.settle())
    assert consumer.errors == 1 and not engine.deferred
    assert repairs.windows  # the minute is recomputed from REST


def test_the_per_bar_metrics_of_a_deferred_minute_come_after_its_signals_one_per_bar_as_before() -> None:
    calc = FeatureCalculator()
    bars, frames = _minutes()
    hooks = RecordingHooks()
    signals_put: list[int] = []
    engine = LiveEngine(
        calc,
        _step(calc),
        lambda table, rows: signals_put.append(len(hooks.calls)) if table == "signals" else None,
        hooks=hooks,
        wall=lambda: 0.0,
    )
    for t, f in frames.items():
        engine.open_instrument(t, f.iloc[:HIST])
    hooks.calls.clear()
    engine.process_many([bars[t][0] for t in TOKENS], 0.0, defer=True)
    assert not hooks.of("on_features") and not hooks.of("on_prediction")  # none before the signals
    engine.settle()
    assert len(hooks.of("on_features")) == len(hooks.of("on_prediction")) == len(TOKENS)


def test_the_consumer_reports_candle_close_lags_after_the_engine_call_and_each_once() -> None:
    calc = FeatureCalculator()
    hooks = RecordingHooks()
    order: list[str] = []

    class Noting(LiveEngine):
        def process_many(self, bars: Any, closed_at: float | None = None, *, defer: bool = False) -> Any:
            order.append(f"engine, lags so far {len(hooks.of('on_candle_closed'))}")
            return super().process_many(bars, closed_at, defer=defer)

    engine = Noting(calc, _step(calc), lambda table, rows: None)
    for token in (TOKEN, TOKEN + 1):
        engine.open_instrument(token, history())
    consumer, clock, _ = _consumer(engine, None, lambda table, rows: None)
    consumer.hooks = hooks
    clock.current = at(9, 16, 1)
    first = [replace(tick(100.0, at(9, 15, 5), 10), instrument_token=t) for t in (TOKEN, TOKEN + 1)]
    closing = [replace(tick(100.1, at(9, 16), 20), instrument_token=t) for t in (TOKEN, TOKEN + 1)]
    consumer.consume_batch(first + closing)
    assert order == ["engine, lags so far 0"]
    assert len(hooks.of("on_candle_closed")) == 2  # reported once the step's bars were processed
