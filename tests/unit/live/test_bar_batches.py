"""Bar batch ids: bound to log lines and to the rows a batch queues, named again when the rows are stored."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from loguru import logger

from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.batches import BatchTrail, TracedStep, bar_batch, current_batch
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal

T = datetime(2026, 11, 20, 10, 15, tzinfo=IST)


def bar(token: int, t: datetime = T) -> Bar:
    return Bar(Candle(token, Timeframe.M1, t, 1.0, 1.0, 1.0, 1.0, 1, None, "live"))


def signal(token: int, t: datetime = T) -> Signal:
    return Signal(token, Timeframe.M1, t, t + timedelta(minutes=1), "m", 1, 0.9, "live", "fs")


async def test_the_writer_names_the_batches_of_the_rows_it_stored_and_forgets_them() -> None:
    trail = BatchTrail()
    queued: list[tuple[str, object]] = []
    put = trail.tap(lambda table, rows: queued.extend((table, r) for r in rows))
    put("candles", [bar(9)])  # outside any batch: not traced
    with bar_batch() as first:
        assert current_batch() == first
        put("candles", [bar(1)])
        put("features", [FeatureRow(1, T, np.zeros(2))])
        put("ticks", [object()])  # not a traced table
    with bar_batch() as second:
        put("signals", [PendingSignal(signal(2), 0.0)])
    assert current_batch() is None and first != second and len(queued) == 5

    lines: list[dict[str, Any]] = []
    handler = logger.add(lambda m: lines.append(dict(m.record["extra"])), level="INFO")
    try:
        stored: list[object] = []

        async def write(rows: list[object]) -> int:
            stored.extend(rows)
            return len(rows)

        sinks = trail.traced_sinks({"candles": write, "signals": write, "ticks": write})
        assert sinks["ticks"] is write
        await sinks["candles"]([bar(9), bar(1)])
        await sinks["signals"]([PendingSignal(signal(2), 0.0)])
        await sinks["candles"]([bar(1)])  # written again (a retry): its batch was already named
    finally:
        logger.remove(handler)
    assert [ln["batches"] for ln in lines] == [[first], [second], []]


def test_the_trail_is_bounded_oldest_first() -> None:
    trail = BatchTrail(keep=2)
    put = trail.tap(lambda table, rows: None)
    with bar_batch("a"):
        put("candles", [bar(1), bar(2), bar(3)])
    assert trail.batches_of("candles", [bar(1)]) == []
    assert trail.batches_of("candles", [bar(2), bar(3)]) == ["a"]


def test_the_traced_step_scores_exactly_like_the_step_it_wraps_and_logs_inside_the_batch() -> None:
    calls: list[int] = []

    def step(token: int, t: datetime, row: np.ndarray) -> Signal | None:
        calls.append(token)
        return signal(token) if token % 2 else None

    lines: list[dict[str, Any]] = []
    handler = logger.add(lambda m: lines.append({"message": m.record["message"], **m.record["extra"]}))
    try:
        traced = TracedStep(step)
        with bar_batch("b1"):
            got = traced.many([1, 2, 3], [T] * 3, np.zeros((3, 2)))
            single = traced(5, T, np.zeros(2))
    finally:
        logger.remove(handler)
    assert [s.instrument_token if s else None for s in got] == [1, None, 3] and single is not None
    assert calls == [1, 2, 3, 5]
    assert [(ln["message"], ln["batch"]) for ln in lines] == [
        ("live engine: scored 3 bar(s), 2 signal(s)", "b1"),
        ("live engine: scored 1 bar(s), 1 signal(s)", "b1"),
    ]


def test_the_traced_step_hands_prime_to_the_step_so_a_restart_rebuilds_its_regime_state() -> None:
    import pandas as pd

    from tickwise.core.features.calculator import FeatureCalculator

    primed: list[tuple[int, int]] = []

    class StatefulStep:
        def __call__(self, token: int, bar_time: datetime, row: np.ndarray) -> Signal | None:
            return None

        def prime(self, token: int, calculator: FeatureCalculator, history: pd.DataFrame) -> None:
            primed.append((token, len(history)))

    history = pd.DataFrame({"time": [datetime(2026, 12, 7, 9, 15, tzinfo=IST)]})
    TracedStep(StatefulStep()).prime(408065, FeatureCalculator(), history)
    assert primed == [(408065, 1)]
    TracedStep(lambda token, bar_time, row: None).prime(
        408065, FeatureCalculator(), history
    )  # no prime: fine
