"""The consumer hands the bars it closes in one step to the engine together: one batched predict for
the minute, whether the bars close on the next minute's ticks or on the clock after the grace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np
from live_models import minute_consumer
from test_tick_consumer import DAY, StepClock, at, history, tick

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.signal import Signal
from tickwise.pipelines.live.consumer import TickConsumer
from tickwise.pipelines.live.engine import LiveEngine

TOKENS = (11, 12, 13, 14)


class CountingStep:
    """A signal step that records how it was called: per bar, or a whole minute at once."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.single = 0

    def __call__(self, token: int, t: datetime, row: np.ndarray) -> Signal | None:
        self.single += 1
        return None

    def many(self, tokens: Sequence[int], times: Sequence[datetime], rows: np.ndarray) -> list[Signal | None]:
        assert rows.shape[0] == len(tokens) == len(times)
        self.batches.append(list(tokens))
        return [None] * len(tokens)


def _consumer(step: CountingStep) -> tuple[TickConsumer, StepClock, LiveEngine]:
    engine = LiveEngine(FeatureCalculator(), step, lambda table, rows: None)
    for token in TOKENS:
        engine.open_instrument(token, history())
    clock = StepClock(at(9, 15))
    c = minute_consumer(engine, clock, DAY, at(15, 30))
    return c, clock, engine


def test_bars_closed_by_one_tick_batch_are_scored_in_one_call() -> None:
    step = CountingStep()
    c, clock, engine = _consumer(step)
    clock.current = at(9, 16, 1)
    first = [replace(tick(100.0, at(9, 15, 5), 10), instrument_token=t) for t in TOKENS]
    closing = [replace(tick(100.1, at(9, 16), 20), instrument_token=t) for t in TOKENS]
    c.consume_batch(first + closing)
    assert engine.bars == len(TOKENS) and engine.errors == 0
    assert step.batches == [list(TOKENS)] and step.single == 0


def test_bars_closed_on_the_clock_are_scored_in_one_call() -> None:
    step = CountingStep()
    c, clock, engine = _consumer(step)
    clock.current = at(9, 15, 30)
    c.consume_batch([replace(tick(100.0, at(9, 15, 5), 10), instrument_token=t) for t in TOKENS])
    assert engine.bars == 0
    c.close_due(at(9, 16, 2))  # end of the minute + the 2 s grace: all four close together
    assert engine.bars == len(TOKENS)
    assert step.batches == [list(TOKENS)] and step.single == 0
