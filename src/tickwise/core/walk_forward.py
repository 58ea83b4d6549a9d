"""Walk-forward schedule for out-of-sample history: which events train each fold model and which bars
it may score (labeling.md §10).

The timeline is cut into NSE sessions (IST calendar dates of the bars). Step ``k`` refits at the open of
session ``min_train_sessions + k * refit_every``; it trains on the events whose label has ended before
that open (``t1 < cutoff``, the purge), over every earlier session (expanding) or over the last
``train_sessions`` sessions (rolling). ``trained_to`` is the latest ``t1`` it trained on. The step then
scores the bars **strictly after** ``trained_to + embargo`` up to the first bar the next step may score,
so the score windows tile the scored range: every bar from the first step's ``score_from`` on is scored
by exactly one fold model, and never by a model whose training labels (or their embargo) reach it.

Steps with fewer than ``min_train_events`` training events, or with nothing left to score, are dropped;
when two steps would start scoring at the same bar the later (better informed) one takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickwise.domain.time import IST

IntArray = npt.NDArray[np.int64]
NO_EMBARGO = pd.Timedelta(0)
Window = Literal["expanding", "rolling"]


@dataclass(frozen=True, slots=True)
class WalkForwardSpec:
    """How often to refit and on what window.

    ``embargo`` is wall-clock time added after ``trained_to`` before the first scored bar (the configured
    embargo bars times the bar length). ``train_sessions`` is the rolling window length in sessions.
    """

    refit_every: int = 5
    min_train_sessions: int = 20
    window: Window = "expanding"
    train_sessions: int | None = None
    embargo: pd.Timedelta = NO_EMBARGO
    min_train_events: int = 200

    def __post_init__(self) -> None:
        if self.refit_every < 1:
            raise ValueError(f"refit_every must be >= 1 session, got {self.refit_every}")
        if self.min_train_sessions < 1:
            raise ValueError(f"min_train_sessions must be >= 1, got {self.min_train_sessions}")
        if self.window not in ("expanding", "rolling"):
            raise ValueError(f"window must be 'expanding' or 'rolling', got {self.window!r}")
        if self.window == "rolling" and (self.train_sessions is None or self.train_sessions < 1):
            raise ValueError("a rolling window needs train_sessions >= 1")
        if self.embargo < pd.Timedelta(0):
            raise ValueError("embargo must be >= 0")
        if self.min_train_events < 1:
            raise ValueError("min_train_events must be >= 1")


@dataclass(frozen=True, slots=True)
class WalkForwardStep:
    """One fold model: its training events and the half-open window of bars it scores."""

    step: int
    train_idx: IntArray  # positions into the event arrays given to the schedule
    trained_from: pd.Timestamp  # min t0 of the training events
    trained_to: pd.Timestamp  # max t1 of the training events (the label ends included)
    score_from: pd.Timestamp  # first scored bar (inclusive), > trained_to + embargo
    score_to: pd.Timestamp | None  # next step's score_from (exclusive); None = through the last bar

    def scores(self, times: pd.DatetimeIndex) -> npt.NDArray[np.bool_]:
        """Mask of ``times`` inside this step's score window."""
        mask = times >= self.score_from
        if self.score_to is not None:
            mask &= times < self.score_to
        return np.asarray(mask, dtype=bool)


def _utc(values: npt.ArrayLike | pd.DatetimeIndex, name: str) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(values)
    if idx.tz is None and len(idx) == 0:
        idx = idx.tz_localize("UTC")
    if idx.tz is None:
        raise ValueError(f"{name} must be tz-aware")
    if idx.hasnans:
        raise ValueError(f"{name} contains missing times")
    return idx.tz_convert("UTC").as_unit("ns")


def walk_forward_schedule(
    bar_times: npt.ArrayLike | pd.DatetimeIndex,
    t0: npt.ArrayLike | pd.DatetimeIndex,
    t1: npt.ArrayLike | pd.DatetimeIndex,
    spec: WalkForwardSpec,
) -> list[WalkForwardStep]:
    """Plan the fold models over ``bar_times`` (bars to score, any order, duplicates allowed) given the
    training events ``(t0, t1)`` (label start and end, tz-aware). Returns the steps in time order."""
    bars = _utc(bar_times, "bar_times").unique().sort_values()
    a, b = _utc(t0, "t0"), _utc(t1, "t1")
    if len(a) != len(b):
        raise ValueError("t0 and t1 must have the same length")
    if bool(np.any(b.asi8 < a.asi8)):
        raise ValueError("every event needs t1 >= t0")
    if len(bars) == 0:
        return []
    sessions = bars.tz_convert(IST).normalize()
    opens = bars[np.flatnonzero(np.r_[True, sessions[1:] != sessions[:-1]])]
    planned: list[tuple[IntArray, pd.Timestamp, pd.Timestamp, pd.Timestamp]] = []
    for s in range(spec.min_train_sessions, len(opens), spec.refit_every):
        cutoff = opens[s]
        mask = b < cutoff
        if spec.window == "rolling" and spec.train_sessions is not None:
            mask &= a >= opens[max(0, s - spec.train_sessions)]
        train = np.flatnonzero(mask).astype(np.int64)
        if train.size < spec.min_train_events:
            continue
        trained_to = b[train].max()
        first = int(np.searchsorted(bars.asi8, (trained_to + spec.embargo).value, side="right"))
        if first >= len(bars):
            continue
        score_from = bars[first]
        while planned and planned[-1][3] >= score_from:
            planned.pop()  # superseded: a later model takes the same first bar
        planned.append((train, a[train].min(), trained_to, score_from))
    return [
        WalkForwardStep(
            step=k,
            train_idx=train,
            trained_from=trained_from,
            trained_to=trained_to,
            score_from=score_from,
            score_to=planned[k + 1][3] if k + 1 < len(planned) else None,
        )
        for k, (train, trained_from, trained_to, score_from) in enumerate(planned)
    ]


def assign_steps(times: npt.ArrayLike | pd.DatetimeIndex, steps: list[WalkForwardStep]) -> IntArray:
    """For each time, the position in ``steps`` of the fold model that scores it, or -1 (not scored)."""
    idx = _utc(times, "times")
    out = np.full(len(idx), -1, dtype=np.int64)
    if not steps:
        return out
    starts = np.array([s.score_from.value for s in steps], dtype=np.int64)
    pos = np.searchsorted(starts, idx.asi8, side="right") - 1
    out[pos >= 0] = pos[pos >= 0]
    return out
