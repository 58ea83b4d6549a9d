"""In-process LightGBM runs on one OpenMP thread whatever a call asks (``core.model.one_lightgbm_thread``):
LightGBM's thread count is one process-wide global that each call sets, and two threads of one process
that bin and train at once changed it under each other (a segmentation fault in the test suite)."""

from __future__ import annotations

import ctypes

import lightgbm as lgb
import numpy as np
from lightgbm import basic

from tickwise.core.fitting import TUNED_DEFAULTS
from tickwise.core.model import binned_dataset, fit_booster, lgb_params


def _max_threads() -> int:
    out = ctypes.c_int(0)
    basic._safe_call(basic._LIB.LGBM_GetMaxThreads(ctypes.byref(out)))  # type: ignore[attr-defined]
    return out.value


def test_binning_or_fitting_caps_lightgbm_at_one_thread_for_the_whole_process() -> None:
    x = np.random.default_rng(3).normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(np.int8)
    binned_dataset(x, ["a", "b", "c"])
    assert _max_threads() == 1
    fit_booster(x, y, params=lgb_params(TUNED_DEFAULTS, 7), num_boost_round=3, feature_names=["a", "b", "c"])
    assert _max_threads() == 1


def test_a_dataset_built_without_a_thread_count_still_bins_on_one_thread_after_the_cap() -> None:
    x = np.random.default_rng(4).normal(size=(400, 3))
    binned_dataset(x, ["a", "b", "c"])
    lgb.Dataset(x, label=(x[:, 0] > 0).astype(np.int8), params={"verbosity": -1}).construct()
    assert _max_threads() == 1
