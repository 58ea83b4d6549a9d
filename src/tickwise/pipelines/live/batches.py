"""Correlation ids of live bar batches: follow one bar from its ticks to its stored signal in the logs.

A *bar batch* is the set of 1m bars closed together and handed to the engine in one step (the
consumer's :meth:`~tickwise.pipelines.live.consumer.TickConsumer._process_closed`, or one applied repair).
:func:`bar_batch` gives it a short id and binds it (loguru ``contextualize``, so JSON log lines carry
``"batch": "<id>"``) for everything logged while the batch runs: the consumer's line, the engine's scoring
line (:class:`TracedStep`) and any warning or error raised on the way. The writer stores rows later, in
its own task and in batches of its own; :class:`BatchTrail` remembers which batch queued each row (keyed
by table, instrument, timeframe and time) and the writer's line for a stored batch of rows carries
``"batches": [...]``, every bar batch it contains. ``docs/operations.md`` shows the ``jq`` filter.

The trail is bounded (``keep`` rows, oldest forgotten first): rows written long after their batch (a
database outage spilled them to disk) are logged without ids rather than held in memory for ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

import numpy as np
import pandas as pd
from loguru import logger

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.signal import Signal
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal, Step

_current: ContextVar[str | None] = ContextVar("tickwise_bar_batch", default=None)

TRACED_TABLES = ("candles", "features", "signals")
Key = tuple[str, int, int, datetime]  # table, instrument, timeframe minutes (0: not a candle), time


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


def current_batch() -> str | None:
    """The id of the bar batch being processed in this context, if any."""
    return _current.get()


@contextmanager
def bar_batch(batch_id: str | None = None) -> Iterator[str]:
    """Run the block as one bar batch: its id is bound to every log line and to the rows it queues."""
    bid = batch_id or new_batch_id()
    token = _current.set(bid)
    try:
        with logger.contextualize(batch=bid):
            yield bid
    finally:
        _current.reset(token)


def _key(table: str, row: object) -> Key | None:
    if isinstance(row, Bar):
        return (table, row.instrument_token, row.candle.timeframe.minutes, row.time)
    if isinstance(row, FeatureRow):
        return (table, row.instrument_token, 0, row.time)
    if isinstance(row, PendingSignal):
        return (table, row.signal.instrument_token, 0, row.signal.time)
    return None


WriteFn = Callable[[list[object]], Awaitable[int]]


class BatchTrail:
    """Which bar batch queued each pending row, so the writer's lines can name it."""

    def __init__(self, keep: int = 500_000) -> None:
        self.keep = keep
        self._rows: dict[Key, str] = {}

    def tap(self, put: Callable[[str, Sequence[object]], None]) -> Callable[[str, Sequence[object]], None]:
        """``put`` that also records the current batch of each traced row (the engine's output)."""

        def traced(table: str, rows: Sequence[object]) -> None:
            bid = _current.get()
            if bid is not None and table in TRACED_TABLES:
                for row in rows:
                    key = _key(table, row)
                    if key is not None:
                        self._rows.pop(key, None)  # a replayed row moves to the end (newest)
                        self._rows[key] = bid
                while len(self._rows) > self.keep:
                    del self._rows[next(iter(self._rows))]
            put(table, rows)

        return traced

    def batches_of(self, table: str, rows: Sequence[object]) -> list[str]:
        """The batches of ``rows`` (first-seen order), forgetting them: they are stored now."""
        seen: dict[str, None] = {}
        for row in rows:
            key = _key(table, row)
            bid = self._rows.pop(key, None) if key is not None else None
            if bid is not None:
                seen[bid] = None
        return list(seen)

    def traced_sinks(self, sinks: dict[str, WriteFn]) -> dict[str, WriteFn]:
        """``sinks`` whose candles/features/signals writes log the bar batches they stored."""
        out = dict(sinks)
        for table in TRACED_TABLES:
            if table in sinks:
                out[table] = self._traced(table, sinks[table])
        return out

    def _traced(self, table: str, write: WriteFn) -> WriteFn:
        async def traced(rows: list[object]) -> int:
            written = await write(rows)
            batches = self.batches_of(table, rows)
            logger.bind(batches=batches).info("live writer: stored {} {} row(s)", written, table)
            return written

        return traced


class TracedStep:
    """The engine's scoring step, logging each scored batch (inside the batch's id).

    Delegates to ``step`` exactly as the engine would: ``many`` when the step has it, else one call per
    row; and ``prime`` (a step's per-instrument state, e.g. the regime layer's, rebuilt on open and
    rewind), without which a restarted session would score with fresh state and differ from batch.
    """

    def __init__(self, step: Step) -> None:
        self.step = step

    def __call__(self, token: int, bar_time: datetime, row: np.ndarray) -> Signal | None:
        signal = self.step(token, bar_time, row)
        self._log(1, [signal])
        return signal

    def many(self, tokens: Sequence[int], times: Sequence[datetime], rows: np.ndarray) -> list[Signal | None]:
        many = getattr(self.step, "many", None)
        if many is not None:
            signals: list[Signal | None] = list(many(tokens, times, rows))
        else:
            signals = [self.step(t, at, r) for t, at, r in zip(tokens, times, rows, strict=True)]
        self._log(len(signals), signals)
        return signals

    def prime(self, token: int, calculator: FeatureCalculator, history: pd.DataFrame) -> None:
        prime = getattr(self.step, "prime", None)
        if prime is not None:
            prime(token, calculator, history)

    @staticmethod
    def _log(n: int, signals: Sequence[Signal | None]) -> None:
        made = [s for s in signals if s is not None]
        logger.info("live engine: scored {} bar(s), {} signal(s)", n, len(made))
