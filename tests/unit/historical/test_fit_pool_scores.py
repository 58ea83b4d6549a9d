"""A cv fold's or the holdout's test rows are scored in the fit worker that trained the booster (issue 14:
they were scored in the main process, from the booster's text sent back): rows of a spilled load travel
by reference and the worker's scores equal, bit for bit, the scores this process computes; rows held in
memory are not sent, and this process scores them as before."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import test_fit_pool_by_reference as spilled

from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.bootstrap import fit_pool
from tickwise.bootstrap.fit_pool import FitPool, SpilledRows, open_fit_pool
from tickwise.core import fitting
from tickwise.core.dataset import TrainingSet
from tickwise.core.fit_jobs import BoosterJob, FitFuture, JobRows, score_matrix
from tickwise.core.fitting import TUNED_DEFAULTS, evaluate, fit_side, predict_rows, side_job, walk_forward
from tickwise.core.model import SIDES

CFG = spilled.CFG


@pytest.fixture(scope="module")
def ts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainingSet]:
    with ScratchRowSpill(tmp_path_factory.mktemp("scratch")) as spill:
        yield spilled._with_regime_columns(spilled._spilled_set(spill))


@pytest.fixture(scope="module")
def pool() -> Iterator[FitPool]:
    with open_fit_pool(2) as pool:
        yield pool


def test_scoring_window_by_window_equals_scoring_every_row_at_once(ts: TrainingSet) -> None:
    idx = np.arange(len(ts.feature_names))
    booster, rounds = fit_side(ts, 1, np.arange(600), TUNED_DEFAULTS, CFG, idx, 15)
    rows = np.arange(600, len(ts))
    whole = predict_rows(booster, ts, rows, idx, rounds, window=len(rows))
    for window in (1, 7, 500):
        np.testing.assert_array_equal(predict_rows(booster, ts, rows, idx, rounds, window=window), whole)
    gathered = score_matrix(booster, lambda i, j: ts.x[np.ix_(rows[i:j], idx)], len(rows), rounds, 64)
    np.testing.assert_array_equal(gathered, whole)


def test_a_worker_scores_the_test_rows_of_a_spilled_load_as_this_process_does(
    ts: TrainingSet, pool: FitPool
) -> None:
    # the bars' columns and the appended (regime) ones, mixed, as a fold's candidates are
    idx = np.array([len(ts.feature_names) - 1, 0, 2, len(ts.feature_names) - 2, 4], dtype=np.int64)
    train, test = np.arange(0, 700), np.arange(760, len(ts))
    for side in SIDES:
        for rounds in (None, 12):  # early-stopped and fixed
            job = replace(
                side_job(ts, side, train, TUNED_DEFAULTS, CFG, idx, rounds), score=JobRows(ts.x, test, idx)
            )
            sent = pickle.loads(pickle.dumps(fit_pool._Outgoing(job)))
            assert isinstance(sent, fit_pool._Sent) and isinstance(sent.score, SpilledRows)
            assert len(sent.score) == len(test)
            assert (
                sent.score.part(5, 50).gather().tobytes() == JobRows(ts.x, test[5:50], idx).gather().tobytes()
            )
            fitted = pool.submit(job).result(timeout=120)
            booster, used = fit_side(ts, side, train, TUNED_DEFAULTS, CFG, idx, rounds)
            assert fitted.booster.model_to_string() == booster.model_to_string() and fitted.rounds == used
            assert fitted.scores is not None
            expected = predict_rows(booster, ts, test, idx, used)
            assert fitted.scores.tobytes() == expected.tobytes()
            # and as this process scored the booster sent back before (its text, reloaded)
            assert fitted.scores.tobytes() == predict_rows(fitted.booster, ts, test, idx, used).tobytes()


def test_rows_held_in_memory_are_not_sent_to_be_scored_and_are_scored_here(
    ts: TrainingSet, pool: FitPool
) -> None:
    in_memory = replace(ts, x=np.asarray(ts.x))
    idx = np.arange(len(ts.feature_names))
    test = np.arange(760, len(ts))
    job = replace(
        side_job(in_memory, 1, np.arange(700), TUNED_DEFAULTS, CFG, idx, 12),
        score=JobRows(in_memory.x, test, idx),
    )
    sent = pickle.loads(pickle.dumps(fit_pool._Outgoing(job)))
    assert isinstance(sent, fit_pool._Sent) and sent.score is None
    assert pool.submit(job).result(timeout=120).scores is None
    pooled = evaluate(in_memory, np.arange(700), test, TUNED_DEFAULTS, CFG, idx, runner=pool)
    here = evaluate(in_memory, np.arange(700), test, TUNED_DEFAULTS, CFG, idx)
    assert pooled.metrics == pytest.approx(here.metrics, rel=0, abs=0, nan_ok=True)


def test_pooled_cv_folds_and_holdout_take_the_workers_scores_and_measure_what_this_process_does(
    ts: TrainingSet, pool: FitPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = np.arange(len(ts.feature_names))
    rows = np.arange(len(ts))
    here_folds = walk_forward(ts, rows, CFG, TUNED_DEFAULTS)
    here_holdout = evaluate(ts, np.arange(700), np.arange(760, len(ts)), TUNED_DEFAULTS, CFG, idx)
    scored_here: list[int] = []
    real = fitting.predict_rows

    def counted(*args: object, **kwargs: object) -> np.ndarray:
        scored_here.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fitting, "predict_rows", counted)
    pooled_folds = walk_forward(ts, rows, CFG, TUNED_DEFAULTS, runner=pool)
    pooled_holdout = evaluate(
        ts, np.arange(700), np.arange(760, len(ts)), TUNED_DEFAULTS, CFG, idx, runner=pool
    )
    assert scored_here == []  # every test row was scored in a worker
    assert len(pooled_folds) == len(here_folds) > 0
    for got, want in zip([*pooled_folds, pooled_holdout], [*here_folds, here_holdout], strict=True):
        assert got.best_iterations == want.best_iterations
        np.testing.assert_array_equal(got.importance, want.importance)
        assert got.metrics == pytest.approx(want.metrics, rel=0, abs=0, nan_ok=True)


def test_the_meta_models_out_of_fold_primaries_take_the_workers_scores_and_equal_this_process_s(
    ts: TrainingSet, pool: FitPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickwise.core.meta_training import out_of_fold_primary

    idx = np.array([len(ts.feature_names) - 1, 0, 2, len(ts.feature_names) - 2, 4], dtype=np.int64)
    rows = np.arange(len(ts))
    here_rows, here = out_of_fold_primary(ts, rows, CFG, idx, 3)
    sent: list[bool] = []
    submit = pool.submit

    def recording(job: BoosterJob) -> FitFuture:
        sent.append(job.score is not None)
        return submit(job)

    monkeypatch.setattr(pool, "submit", recording)
    pooled_rows, pooled = out_of_fold_primary(ts, rows, CFG, idx, 3, runner=pool)
    assert sent and all(sent)  # every refit's test rows went to be scored in its worker
    assert pooled_rows.tobytes() == here_rows.tobytes()
    assert pooled.tobytes() == here.tobytes()
