"""The cheaper batch regime columns (issue 14): the Student-t's lgamma terms looked up per run length, the
change-point columns computed once per prior and bars, are the values the layer gave before, bit for bit."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from regime_data import regime_rows

from tickwise.core.regime import ChangePointSpec, GaussianHmm, RegimeLayer, change_points, session_days
from tickwise.core.regime.kernels import BOTH_PARTS, NO_DAY, STATE_DAY, regime_steps

HMM = GaussianHmm(
    startprob=np.array([0.5, 0.3, 0.2]),
    transmat=np.array([[0.95, 0.04, 0.01], [0.03, 0.94, 0.03], [0.01, 0.05, 0.94]]),
    means=np.array([[0.0, -3.0], [0.1, -2.2], [-0.1, -1.5]]),
    variances=np.array([[1.0, 0.1], [2.0, 0.2], [4.0, 0.3]]),
)
OTHER_HMM = GaussianHmm(
    startprob=np.array([0.6, 0.4]),
    transmat=np.array([[0.9, 0.1], [0.2, 0.8]]),
    means=np.array([[0.0, -2.8], [0.0, -1.6]]),
    variances=np.array([[1.5, 0.2], [3.0, 0.2]]),
)
SPECS = {
    "default": ChangePointSpec(),
    "truncated": ChangePointSpec(
        hazard=1 / 25, max_run_length=40, prior=(0.2, 0.5, 2.0, 1.5), change_window=3
    ),
}
# sha256 of the (n, 6) regime columns of `shuffled_rows()` under HMM, computed by the layer before the
# lgamma table and the change-point cache (commit 13937af): both settings run past their truncation.
PINNED = {
    "default": "8945f87d57c9091f46eda0b2124fc051d27b365e45df261c20a4bee9e24aefab",
    "truncated": "63bb2078f76aceaac6a547f9470c1ec06c1a12a5c864367816efed7ccdc09fbd",
}


def shuffled_rows() -> pd.DataFrame:
    return regime_rows(tokens=(3, 1, 2), sessions=5, seed=21).sample(frac=1.0, random_state=4)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    change_points.clear_cache()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_regime_columns_are_the_ones_the_layer_gave_before_bit_for_bit(name: str) -> None:
    out = RegimeLayer(hmm=HMM, change_point=SPECS[name]).frame(shuffled_rows()).to_numpy()
    assert hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest() == PINNED[name]
    # The same digest when the change-point columns come from the cache.
    again = RegimeLayer(hmm=HMM, change_point=SPECS[name]).frame(shuffled_rows()).to_numpy()
    assert hashlib.sha256(np.ascontiguousarray(again).tobytes()).hexdigest() == PINNED[name]
    assert change_points.cache_info().hits == 1


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_frame_equals_each_instruments_batch_from_a_fresh_state(name: str) -> None:
    rows = shuffled_rows()
    layer = RegimeLayer(hmm=HMM, change_point=SPECS[name])
    out = layer.frame(rows)
    for token in (1, 2, 3):
        one = rows[rows["instrument_token"] == token].sort_values("time")
        expected = layer.batch(pd.DatetimeIndex(one["time"]), one[["ret_1", "natr_14"]].to_numpy())
        assert np.array_equal(out.loc[one.index].to_numpy(), expected, equal_nan=True)


def test_a_second_model_on_the_same_bars_reuses_the_change_point_columns_and_gets_its_own_hmm_columns() -> (
    None
):
    rows = shuffled_rows()
    first = RegimeLayer(hmm=HMM).frame(rows)
    second_layer = RegimeLayer(hmm=OTHER_HMM)
    second = second_layer.frame(rows)
    info = change_points.cache_info()
    assert (info.hits, info.misses, info.entries) == (1, 1, 1)
    cp = ["cp_run_length", "cp_prob"]
    assert np.array_equal(first[cp].to_numpy(), second[cp].to_numpy(), equal_nan=True)
    assert list(second.columns[:3]) == ["regime_p0", "regime_p1", "regime_state"]
    one = rows[rows["instrument_token"] == 2].sort_values("time")
    expected = second_layer.batch(pd.DatetimeIndex(one["time"]), one[["ret_1", "natr_14"]].to_numpy())
    assert np.array_equal(second.loc[one.index].to_numpy(), expected, equal_nan=True)


def test_other_bars_or_other_change_point_settings_are_computed_not_taken_from_the_cache() -> None:
    rows = shuffled_rows()
    before = RegimeLayer(hmm=HMM).frame(rows)
    changed = rows.copy()
    changed.iloc[700, changed.columns.get_loc("ret_1")] *= 3.0  # one bar of one instrument
    after = RegimeLayer(hmm=HMM).frame(changed)
    other = RegimeLayer(hmm=HMM, change_point=SPECS["truncated"]).frame(rows)
    assert change_points.cache_info().misses == 3
    assert not np.array_equal(before["cp_prob"].to_numpy(), after["cp_prob"].to_numpy(), equal_nan=True)
    assert not np.array_equal(before["cp_prob"].to_numpy(), other["cp_prob"].to_numpy(), equal_nan=True)


def test_cached_columns_are_read_only_and_the_cache_stays_bounded() -> None:
    rows = regime_rows(tokens=(1,), sessions=2, seed=5)
    for k in range(change_points.MAX_ENTRIES + 2):
        RegimeLayer(hmm=HMM, change_point=ChangePointSpec(hazard=1 / (30 + k))).frame(rows)
    assert change_points.cache_info().entries == change_points.MAX_ENTRIES
    x = np.ascontiguousarray(rows[["ret_1", "natr_14"]].to_numpy())
    days = session_days(pd.DatetimeIndex(rows["time"]))
    columns = change_points.change_point_columns(ChangePointSpec(), days, np.array([[0, len(rows)]]), x)
    with pytest.raises(ValueError, match="read-only"):
        columns[0, 0] = 1.0


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_lgamma_table_gives_the_values_of_computing_every_term(name: str) -> None:
    # An empty table makes the kernel compute lgamma for every run length, as it did before the table.
    cp = SPECS[name]
    rows = regime_rows(tokens=(1,), sessions=3, seed=8)
    days = session_days(pd.DatetimeIndex(rows["time"]))
    x = np.ascontiguousarray(rows[["ret_1", "natr_14"]].to_numpy())
    alphas, ratios = change_points.change_point_tables(cp)
    outs = []
    for table in ((alphas, ratios), (np.zeros(0), np.zeros(0))):
        ints = np.zeros(3, dtype=np.int64)
        ints[STATE_DAY] = NO_DAY
        out = np.empty((len(rows), HMM.n_states + 3))
        regime_steps(
            days,
            x,
            HMM.startprob,
            HMM.transmat,
            HMM.means,
            HMM.variances,
            cp.hazard,
            np.asarray(cp.prior, dtype=np.float64),
            cp.change_window,
            np.zeros(HMM.n_states),
            np.full((5, cp.max_run_length), np.nan),
            ints,
            out,
            *table,
            BOTH_PARTS,
        )
        outs.append(out)
    assert np.array_equal(outs[0], outs[1], equal_nan=True)
    assert np.isfinite(outs[0][-1]).all()
