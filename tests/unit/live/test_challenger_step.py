"""ChallengerStep: challengers score the champion's feature row; the champion's signal is untouched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.challengers import ChallengerStep
from tickwise.pipelines.live.engine import PendingSignal, Step

T = datetime(2026, 12, 3, 10, 0, tzinfo=IST)


def step_of(version: str, direction: int, seen: list[tuple[str, float]]) -> Step:
    def step(token: int, bar_time: datetime, row: np.ndarray) -> Signal | None:
        seen.append((version, float(row[0])))
        return Signal(
            token,
            Timeframe.M1,
            bar_time,
            bar_time + timedelta(minutes=1),
            version,
            direction,
            0.6,
            "live",
            "fs",
        )

    return step


def failing(token: int, bar_time: datetime, row: np.ndarray) -> Signal | None:
    raise RuntimeError("bundle corrupted")


def not_ready(token: int, bar_time: datetime, row: np.ndarray) -> Signal | None:
    return None


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, list[object]]] = []

    def __call__(self, table: str, rows: Sequence[object]) -> None:
        self.rows.append((table, list(rows)))


def test_each_challenger_scores_the_same_row_and_its_signal_is_queued_under_its_own_version() -> None:
    seen: list[tuple[str, float]] = []
    put = Rows()
    step = ChallengerStep(
        step_of("champ", 1, seen),
        [step_of("chal-a", -1, seen), not_ready, step_of("chal-b", 0, seen)],
        put,
        wall=lambda: 42.0,
    )
    signal = step(408065, T, np.array([7.5]))
    assert signal is not None and signal.model_version == "champ" and signal.direction == 1
    assert seen == [("champ", 7.5), ("chal-a", 7.5), ("chal-b", 7.5)]
    [(table, rows)] = put.rows
    assert table == "challenger_signals"
    pending = [r for r in rows if isinstance(r, PendingSignal) and r.closed_at == 42.0]
    assert len(pending) == len(rows)
    assert [(r.signal.model_version, r.signal.direction) for r in pending] == [("chal-a", -1), ("chal-b", 0)]
    assert step.signals == 2 and step.errors == 0


def test_a_failing_challenger_is_counted_and_never_costs_the_champion_its_signal() -> None:
    put = Rows()
    step = ChallengerStep(step_of("champ", 1, []), [failing], put)
    signal = step(408065, T, np.array([1.0]))
    assert signal is not None and signal.model_version == "champ"
    assert step.errors == 1 and put.rows == []
