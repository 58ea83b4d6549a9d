"""The champion candidate and the out-of-sample fold models train at the same time (issue 14): the
fold models start while the training step still runs, and a timeframe's load asked for by both while it
is being read is read once and released by its last user. The models and signals the overlapped run
writes are the golden run's (``test_fit_pool_golden.py``, pool of 2 and 1)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncpg
import pytest
from historical_support import backfilled_and_derived, simulator_settings

from tickwise.bootstrap.historical import run_historical
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.progress import TaskID
from tickwise.pipelines.historical.train import TrainingLoads

pytestmark = [pytest.mark.db, pytest.mark.slow]


class RecordingProgress:
    """A ``StepProgress`` that records, in order, each bar made and each bar completed (the training
    step reports from its thread, so the record is locked)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._names: dict[int, str] = {}
        self._totals: dict[int, float | None] = {}
        self._lock = threading.Lock()

    def task(self, description: str, total: float | None) -> TaskID:
        with self._lock:
            number = len(self._names)
            self._names[number], self._totals[number] = description, total
            self.events.append(("made", description))
            return TaskID(number)

    def update(
        self,
        task: TaskID,
        *,
        completed: float | None = None,
        total: float | None = None,
        advance: float | None = None,
        info: str | None = None,
    ) -> None:
        with self._lock:
            if total is not None:
                self._totals[task] = total
            done = self._totals[task]
            if completed is not None and done is not None and completed >= done:
                self.events.append(("done", self._names[task]))

    def log(self, message: str) -> None:
        pass

    def first(self, kind: str, description: str) -> int:
        return self.events.index((kind, description))


async def test_the_fold_models_start_while_the_champion_candidate_still_trains(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = simulator_settings(tmp_path, backfill_days=8, MODEL_TRAINING__TRIALS="2")
    progress = RecordingProgress()
    summary = await run_historical(settings, progress, url=db_url)
    assert summary.train is not None and not summary.train.skipped
    assert summary.oos is not None and summary.oos.folds
    # Before, "oos: load" was made only after the champion was registered; now the fold models wait
    # for the training step's load of the primary timeframe, which is still being read.
    assert progress.first("made", "oos: load") < progress.first("done", "train: load")
    assert progress.first("made", "oos: load") < progress.first("done", "train: register")
    assert {"train", "oos", "train+oos"} <= set(summary.timings)


async def test_a_load_asked_for_while_it_is_read_is_read_once_and_released_by_its_last_user(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    calc = FeatureCalculator()
    async with backfilled_and_derived(simulator_settings(tmp_path, backfill_days=8), db_url) as (ctx, _):

        def get(loads: TrainingLoads, *, keep: bool):  # type: ignore[no-untyped-def]
            return loads.get(ctx, calc, Timeframe.M1, None, None, keep=keep)

        # The champion candidate (keep) asks first, the fold models (the last user) while it reads.
        loads = TrainingLoads()
        kept, taken = await asyncio.gather(get(loads, keep=True), get(loads, keep=False))
        assert taken is kept and loads.loads == 1
        again = await get(loads, keep=False)  # released by the last user: read anew
        assert again is not kept and loads.loads == 2

        # The other way round: the keeping asker, waiting on the last user's read, holds it.
        loads = TrainingLoads()
        taken, kept = await asyncio.gather(get(loads, keep=False), get(loads, keep=True))
        assert taken is kept and loads.loads == 1
        assert await get(loads, keep=False) is kept and loads.loads == 1
