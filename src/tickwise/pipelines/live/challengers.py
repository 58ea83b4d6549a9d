"""Live challenger scoring: every challenger model scores the very feature row the champion scores.

:class:`ChallengerStep` is the live engine's signal step with the challengers added: it returns the
champion's signal exactly as before (the engine queues it, notifies on it, paper-trades it) and queues
each challenger's signal of the same bar for the ``signals`` table, told apart by its
``model_version`` (and ``models.status = 'challenger'``). Challenger rows go through their own writer
table, :data:`CHALLENGER_TABLE` (:func:`challenger_sink`), so they are never announced to traders,
never paper-traded and never counted in the champion's signal metrics and latency. The cost is one more predict per bar and
challenger; a challenger that fails is counted and logged, and never costs the champion its signal.
A challenger thus earns its promotion on live, out-of-sample evidence: `tickwise backtest --model
VERSION --signals live` trades its live signals like the champion's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from loguru import logger

from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.signal import Signal
from tickwise.pipelines.live.engine import PendingSignal, Step
from tickwise.pipelines.live.sinks import SignalWrites

Put = Callable[[str, Sequence[object]], None]
CHALLENGER_TABLE = "challenger_signals"  # the writer's name for challenger rows (stored in ``signals``)


def challenger_sink(repo: SignalWrites) -> Callable[[list[PendingSignal]], Awaitable[int]]:
    """The writer's sink of challenger rows: plain upserts into ``signals`` (no alert, no latency)."""

    async def write(rows: list[PendingSignal]) -> int:
        return await repo.add_many([p.signal for p in rows])

    return write


class ChallengerStep:
    """The champion's step, then each challenger's on the same row (see the module doc)."""

    def __init__(
        self,
        champion: Step,
        challengers: Sequence[Step],
        put: Put,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.champion = champion
        self.challengers = list(challengers)
        self.put = put
        self.wall = wall
        self.signals = 0
        self.errors = 0

    def prime(self, token: int, calculator: FeatureCalculator, history: pd.DataFrame) -> None:
        """Forward the engine's priming (a regime layer's per-instrument state) to every step."""
        for k, step in enumerate((self.champion, *self.challengers)):
            prime = getattr(step, "prime", None)
            if prime is None:
                continue
            try:
                prime(token, calculator, history)
            except Exception:  # a challenger must never cost the champion its state
                if k == 0:
                    raise
                self.errors += 1
                logger.exception("live: a challenger failed to prime {}", token)

    def __call__(self, token: int, bar_time: datetime, row: np.ndarray) -> Signal | None:
        signal = self.champion(token, bar_time, row)
        if not self.challengers:
            return signal
        closed_at = self.wall()
        pending = []
        for step in self.challengers:
            try:
                challenger = step(token, bar_time, row)
            except Exception as exc:  # a challenger must never cost the champion its signal
                self.errors += 1
                logger.exception("live: a challenger failed to score {} at {}: {}", token, bar_time, exc)
                continue
            if challenger is not None:
                pending.append(PendingSignal(challenger, closed_at))
        if pending:
            self.signals += len(pending)
            self.put(CHALLENGER_TABLE, pending)
        return signal
