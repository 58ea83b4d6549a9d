"""The signal sink stamps, logs and reports each signal's latency as the per-signal rule does (bar closed
-> now, rounded to the microsecond in ms for the stored stamp), whether the batch shares one close instant
(a minute's signals: one latency computed for all) or holds several; compared exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from fakes import RecordingSignalWrites
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import RecordingHooks
from tickwise.pipelines.live.engine import PendingSignal
from tickwise.pipelines.live.latency import LatencyLog
from tickwise.pipelines.live.sinks import signal_sink

T = datetime(2025, 1, 6, 9, 15, tzinfo=IST)


def _signal(i: int) -> Signal:
    return Signal(
        100 + i, Timeframe.M1, T, T + timedelta(minutes=1), "m", i % 3 - 1, 0.5 + i / 100.0, "live", "fs",
        None, 0.01 * i,
    )  # fmt: skip


class _Wall:
    """A wall that moves 1.23456789 s per read (so the stamps round a fraction)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.23456789
        return self.now


class _KeptLog(LatencyLog):
    """A latency log that also keeps the values given, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.given: list[float] = []

    def add_many(self, values_ms: Sequence[float]) -> None:
        super().add_many(values_ms)
        self.given.extend(values_ms)


def _written(closed: list[float]) -> tuple[list[float], list[float], list[tuple[int, float]], list[Signal]]:
    rows = [PendingSignal(_signal(i), at) for i, at in enumerate(closed)]
    repo, hooks, log, wall = RecordingSignalWrites(), RecordingHooks(), _KeptLog(), _Wall()
    write = signal_sink(repo, hooks, log, wall)

    async def written() -> int:
        return await write(rows)

    assert asyncio.run(written()) == len(rows)
    ((signals, stamps),) = repo.batches
    assert stamps is not None
    reported = [args for name, args in hooks.calls if name == "on_signal"]
    return stamps, log.given, [(int(d), float(w)) for d, w in reported], signals


def _per_signal(closed: list[float]) -> tuple[list[float], list[float], list[tuple[int, float]]]:
    now, done = 1_700_000_000.0 + 1.23456789, 1_700_000_000.0 + 2 * 1.23456789
    stamps = [round((now - at) * 1000.0, 3) for at in closed]
    written = [done - at for at in closed]
    return stamps, [w * 1000.0 for w in written], [(_signal(i).direction, w) for i, w in enumerate(written)]


def test_a_minute_sharing_one_close_instant_gets_the_per_signal_latencies() -> None:
    closed = [1_699_999_999.125] * 7
    stamps, logged, reported, signals = _written(closed)
    assert [repr(x) for x in stamps] == [repr(x) for x in _per_signal(closed)[0]]
    assert [repr(x) for x in logged] == [repr(x) for x in _per_signal(closed)[1]]
    assert reported == _per_signal(closed)[2]
    assert signals == [_signal(i) for i in range(7)]


def test_a_batch_of_several_close_instants_gets_the_per_signal_latencies() -> None:
    closed = [1_699_999_999.125, 1_699_999_999.125, 1_699_999_998.5, 1_699_999_999.125, 1_699_999_997.75]
    stamps, logged, reported, _ = _written(closed)
    assert [repr(x) for x in stamps] == [repr(x) for x in _per_signal(closed)[0]]
    assert [repr(x) for x in logged] == [repr(x) for x in _per_signal(closed)[1]]
    assert reported == _per_signal(closed)[2]
    assert len(set(stamps)) == 3
