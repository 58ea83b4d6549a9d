"""Where the live writer's rows go: one async sink per table, typed against the repository ports.

Each sink takes a batch of the rows the engine and the consumer queue (:class:`Tick`, :class:`Bar`,
:class:`FeatureRow`, :class:`PendingSignal`) and writes it in one call; :class:`BufferedWriter` does
the batching, retries and spilling around them. The signal sink stamps each signal's
``latency_ms`` (bar closed -> written) and records it in the :class:`LatencyLog`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from tickwise.domain.bar import Bar
from tickwise.domain.signal import Signal
from tickwise.domain.tick import Tick
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal
from tickwise.pipelines.live.latency import LatencyLog
from tickwise.pipelines.live.timeframes import MemberRow
from tickwise.pipelines.live.writer import WriteFn
from tickwise.ports.frames import candles_to_frame
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.repositories import FeatureRepository, SignalRepository, TickRepository
from tickwise.ports.signal_members import MEMBER_ROW_COLUMNS, SignalMemberRepository


class CandleUpserts(Protocol):
    """The candle repository as the live path writes it: a bar corrected later replaces the stored one."""

    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: Literal["update"]) -> int: ...


class SignalWrites(Protocol):
    """The write half of :class:`~tickwise.ports.repositories.SignalRepository`."""

    async def add_many(self, signals: Sequence[Signal], latency_ms: Sequence[float] | None = None) -> int: ...


def tick_sink(repo: TickRepository) -> Callable[[list[Tick]], Awaitable[int]]:
    async def write(rows: list[Tick]) -> int:
        return await repo.add_many(rows)

    return write


def candle_sink(repo: CandleUpserts) -> Callable[[list[Bar]], Awaitable[int]]:
    async def write(rows: list[Bar]) -> int:
        frame = candles_to_frame(
            [b.candle for b in rows], obi_5=[None if math.isnan(b.obi_5) else b.obi_5 for b in rows]
        )
        return await repo.add_frame(frame, on_conflict="update")

    return write


def feature_sink(
    repo: FeatureRepository, names: Sequence[str], feature_set: str, timeframe: Timeframe = Timeframe.M1
) -> Callable[[list[FeatureRow]], Awaitable[int]]:
    columns = list(names)

    async def write(rows: list[FeatureRow]) -> int:
        frame = pd.DataFrame(np.vstack([r.values for r in rows]), columns=columns)
        frame.insert(0, "time", pd.DatetimeIndex([r.time for r in rows]))
        frame.insert(0, "timeframe", str(timeframe))
        frame.insert(0, "instrument_token", np.array([r.instrument_token for r in rows], dtype=np.int64))
        return await repo.add_frame(frame, feature_set)

    return write


def signal_sink(
    repo: SignalWrites,
    hooks: PipelineHooks,
    latencies: LatencyLog,
    wall: Callable[[], float] = time.time,
) -> Callable[[list[PendingSignal]], Awaitable[int]]:
    """The ``signals`` sink: stamps latency (bar closed -> written) on each row, then upserts."""

    async def write(rows: list[PendingSignal]) -> int:
        now = wall()
        closed = list(map(_CLOSED_AT, rows))
        signals = list(map(_SIGNAL, rows))
        # The stamp goes to the repository beside the signals, not into a copy of each signal (a
        # rebuild per signal: about 4 ms at 3,000 signals, between the candle close and the commit).
        # A minute's signals share their close instant (the usual batch): one latency for all of them,
        # computed once, with no per-signal Python; otherwise one per close instant.
        first = closed[0] if closed else 0.0
        shared = closed.count(first) == len(closed)
        latency_ms: list[float]
        if shared:
            latency_ms = [round((now - first) * 1000.0, 3)] * len(closed)
        else:
            stamps: dict[float, float] = {}
            latency_ms = []
            for at in closed:
                ms = stamps.get(at)
                if ms is None:
                    ms = stamps[at] = round((now - at) * 1000.0, 3)
                latency_ms.append(ms)
        n = await repo.add_many(signals, latency_ms)
        done = wall()
        written = [done - first] * len(closed) if shared else [done - at for at in closed]
        latencies.add_many(
            [(done - first) * 1000.0] * len(closed) if shared else [lat * 1000.0 for lat in written]
        )
        deque(map(hooks.on_signal, map(_DIRECTION, signals), written), maxlen=0)  # one call per signal
        return n

    return write


_CLOSED_AT = attrgetter("closed_at")
_SIGNAL = attrgetter("signal")
_DIRECTION = attrgetter("direction")


def signal_member_sink(repo: SignalMemberRepository) -> Callable[[list[MemberRow]], Awaitable[int]]:
    """The ``signal_members`` sink: each live ensemble signal's members."""

    async def write(rows: list[MemberRow]) -> int:
        frame = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=list(MEMBER_ROW_COLUMNS))
        frame["timeframe"] = [str(r.timeframe) for r in rows]
        return await repo.add_frame(frame)

    return write


@dataclasses.dataclass(frozen=True, slots=True)
class LiveRepositories:
    """The four tables the live pipeline writes."""

    ticks: TickRepository
    candles: CandleUpserts
    features: FeatureRepository
    signals: SignalRepository


def table_sinks(
    repos: LiveRepositories,
    *,
    names: Sequence[str],
    feature_set: str,
    hooks: PipelineHooks,
    latencies: LatencyLog,
) -> dict[str, WriteFn]:
    """The writer's tables: ``ticks``, ``candles``, ``features`` and ``signals``."""
    return {
        "ticks": tick_sink(repos.ticks),
        "candles": candle_sink(repos.candles),
        "features": feature_sink(repos.features, names, feature_set),
        "signals": signal_sink(repos.signals, hooks, latencies),
    }
