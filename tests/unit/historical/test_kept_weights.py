"""Optuna's trials fit the same cv folds with other tree parameters: each fold's window weights per side
(``core.fitting.KeptWeights``) are made once for every trial (issue 14), and every job is the job made
from freshly computed weights, byte for byte, so the folds measure the same."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import test_fit_pool_by_reference as spilled

from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.core.dataset import TrainingSet
from tickwise.core.fitting import TUNED_DEFAULTS, KeptWeights, side_job, walk_forward, window_weights_of
from tickwise.core.model import SIDES
from tickwise.pipelines.historical.tuning import tune

CFG = spilled.CFG


@pytest.fixture(scope="module")
def ts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainingSet]:
    with ScratchRowSpill(tmp_path_factory.mktemp("scratch")) as spill:
        yield spilled._spilled_set(spill)


def test_kept_weights_are_the_window_weights_made_once_per_side_and_rows(ts: TrainingSet) -> None:
    kept = KeptWeights(capacity=4)
    rows = np.arange(100, 900)
    for _ in range(3):
        for side in SIDES:
            got, want = kept.of(ts, side, rows, CFG), window_weights_of(ts, side, rows, CFG)
            assert got.y.tobytes() == want.y.tobytes() and got.base.tobytes() == want.base.tobytes()
            assert got.factors == want.factors
    assert (kept.builds, kept.reuses) == (2, 4)
    # other rows, other settings: other weights
    kept.of(ts, 1, rows[1:], CFG)
    kept.of(ts, 1, rows, replace(CFG, class_balance=not CFG.class_balance))
    assert kept.builds == 4
    with pytest.raises(ValueError, match="capacity"):
        KeptWeights(capacity=0)


def test_a_job_made_from_kept_weights_is_the_job_made_from_fresh_ones(ts: TrainingSet) -> None:
    kept = KeptWeights()
    idx = np.arange(len(ts.feature_names))
    for side in SIDES:
        for rounds in (None, 10):
            for _ in range(2):
                got = side_job(ts, side, np.arange(50, len(ts)), TUNED_DEFAULTS, CFG, idx, rounds, kept)
                want = side_job(ts, side, np.arange(50, len(ts)), TUNED_DEFAULTS, CFG, idx, rounds)
                assert got.y.tobytes() == want.y.tobytes() and got.weight.tobytes() == want.weight.tobytes()
                assert np.array_equal(got.train.rows, want.train.rows)
                assert (got.valid is None) == (want.valid is None)
                if got.valid is not None and want.valid is not None:
                    assert got.valid[1].tobytes() == want.valid[1].tobytes()
                    assert got.valid[2].tobytes() == want.valid[2].tobytes()
    assert kept.reuses > 0


def test_cv_folds_with_kept_weights_measure_what_fresh_weights_measure_trial_after_trial(
    ts: TrainingSet,
) -> None:
    rows = np.arange(len(ts))
    kept = KeptWeights(capacity=2 * CFG.folds)
    for params in (TUNED_DEFAULTS, {**TUNED_DEFAULTS, "num_leaves": 7, "learning_rate": 0.1}):
        fresh = walk_forward(ts, rows, CFG, params)
        shared = walk_forward(ts, rows, CFG, params, kept=kept)
        assert len(shared) == len(fresh) > 0
        for got, want in zip(shared, fresh, strict=True):
            assert got.best_iterations == want.best_iterations
            np.testing.assert_array_equal(got.importance, want.importance)
            assert got.metrics == pytest.approx(want.metrics, rel=0, abs=0, nan_ok=True)
    assert kept.reuses == kept.builds == 2 * len(fresh)  # the second trial made none


def test_the_tuned_best_trials_folds_are_the_folds_of_fresh_weights(ts: TrainingSet) -> None:
    rows = np.arange(len(ts))
    params, folds, _ = tune(ts, rows, CFG)  # its trials share each fold's weights (KeptWeights)
    fresh = [walk_forward(ts, rows, CFG, params)]
    assert len(folds) == len(fresh[0])
    for got, want in zip(folds, fresh[0], strict=True):
        assert got.metrics == pytest.approx(want.metrics, rel=0, abs=0, nan_ok=True)
