"""The out-of-sample history pipelines its fold models on the simulator: fold k+1 is begun (its regime
layer fitted, its two sides submitted to the trainer) before fold k's model is finished and its
signals are written, so worker processes train it while this process scores fold k. The models and
signals are those of the recorded golden run (``test_fit_pool_golden.py``); this pins the order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd
import pytest
from historical_support import derived_history, oos_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]


async def test_fold_k_plus_one_is_begun_before_fold_k_is_finished_and_its_signals_written(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickwise.bootstrap.models import oos_options_of
    from tickwise.pipelines.historical import oos

    log: list[tuple[str, pd.Timestamp]] = []
    begin, finish = oos._begin_fold, oos._finish_fold

    async def logged_begin(*args: Any, **kwargs: Any) -> oos._FoldStart:
        started = await begin(*args, **kwargs)
        log.append(("begin", started.step.score_from))
        return started

    async def logged_finish(ctx: Any, started: oos._FoldStart, *args: Any, **kwargs: Any) -> Any:
        log.append(("finish", started.step.score_from))
        return await finish(ctx, started, *args, **kwargs)

    monkeypatch.setattr(oos, "_begin_fold", logged_begin)
    monkeypatch.setattr(oos, "_finish_fold", logged_finish)
    settings = oos_settings(tmp_path, REGIMES__N_ITER="10")
    async with derived_history(settings, db_url) as ctx:
        signals = ctx.signals
        add_frame = signals.add_frame

        async def logged_add_frame(frame: pd.DataFrame, **kwargs: Any) -> int:
            if len(frame) and (frame["sample"] == "oos").all():
                log.append(("write", pd.Timestamp(frame["time"].min())))
            return await add_frame(frame, **kwargs)

        monkeypatch.setattr(signals, "add_frame", logged_add_frame)
        outcome = await oos.write_oos_history(ctx, oos_options_of(settings))
    folds = [pd.Timestamp(f.score_from) for f in outcome.folds]
    assert len(folds) >= 3 and not any(f.reused for f in outcome.folds)
    primary = log[: log.index(("finish", folds[-1])) + 2]  # the primary timeframe's folds
    expected: list[tuple[str, pd.Timestamp]] = [("begin", folds[0])]
    for k, score_from in enumerate(folds):
        if k + 1 < len(folds):
            expected.append(("begin", folds[k + 1]))
        expected.append(("finish", score_from))
        expected.append(("write", score_from))
    assert [(event, at) for event, at in primary if event != "write"] == [
        (event, at) for event, at in expected if event != "write"
    ]
    writes = [at for event, at in primary if event == "write"]
    assert len(writes) == len(folds)
    for k, at in enumerate(writes):  # fold k's signals: written after fold k+1 was begun
        assert at >= folds[k]
        position = primary.index(("write", at))
        if k + 1 < len(folds):
            assert primary.index(("begin", folds[k + 1])) < position
