"""The regime layer: a causal filter, one recursion for batch and live, states in canonical order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from regime_data import regime_rows

from tickwise.core.regime import RegimeLayer, RegimeSpec, fit_regime_layer, session_days
from tickwise.core.regime.kernels import observations
from tickwise.domain.errors import ModelError


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return regime_rows()


@pytest.fixture(scope="module")
def layer(rows: pd.DataFrame) -> RegimeLayer:
    return fit_regime_layer(rows, RegimeSpec(n_states=3))


def _one(rows: pd.DataFrame, token: int) -> pd.DataFrame:
    return rows[rows["instrument_token"] == token].sort_values("time").reset_index(drop=True)


def test_states_are_ordered_by_volatility_so_state_zero_is_the_calm_one(layer: RegimeLayer) -> None:
    assert np.all(np.diff(layer.hmm.means[:, 1]) > 0)
    out = layer.frame(regime_rows(seed=9))
    times = pd.DatetimeIndex(regime_rows(seed=9)["time"]).tz_convert("Asia/Kolkata")
    calm = (times.hour < 11) & np.isfinite(out["regime_state"].to_numpy())
    assert (out.loc[calm, "regime_state"] == 0).mean() > 0.7
    assert (out.loc[times.hour >= 12, "regime_state"] == 2).mean() > 0.7


def test_state_zero_is_the_calm_state_in_every_fold_whatever_the_hmm_initialisation() -> None:
    for seed in (1, 2, 3):
        fitted = fit_regime_layer(regime_rows(seed=seed), RegimeSpec(n_states=2, seed=seed + 10))
        assert fitted.hmm.means[0, 1] < fitted.hmm.means[1, 1]


def test_the_filter_equals_hmmlearns_posterior_at_the_last_bar_of_a_session(
    rows: pd.DataFrame, layer: RegimeLayer
) -> None:
    # At the last bar of a sequence the smoothed posterior IS the filtered one: an independent check.
    from hmmlearn.hmm import GaussianHMM

    hmm = GaussianHMM(n_components=3, covariance_type="diag")
    hmm.startprob_, hmm.transmat_ = layer.hmm.startprob, layer.hmm.transmat
    hmm.means_, hmm.covars_ = layer.hmm.means, layer.hmm.variances
    session = _one(rows, 2).iloc[375:750]
    obs = observations(session[["ret_1", "natr_14"]].to_numpy())
    for end in (10, 100, 375):
        posterior = hmm.predict_proba(obs[:end])[-1]
        filtered = layer.batch(session["time"].iloc[:end], session[["ret_1", "natr_14"]].to_numpy()[:end])[
            -1, :3
        ]
        np.testing.assert_allclose(filtered, posterior, rtol=1e-8, atol=1e-10)


def test_changing_future_bars_never_changes_a_past_regime_value(
    rows: pd.DataFrame, layer: RegimeLayer
) -> None:
    bars = _one(rows, 1)
    x = bars[["ret_1", "natr_14"]].to_numpy()
    before = layer.batch(bars["time"], x)
    rng = np.random.default_rng(4)
    for cut in rng.integers(20, len(bars) - 1, size=8):
        future = x.copy()
        future[cut:, 0] = rng.normal(size=len(bars) - cut) * 0.05
        future[cut:, 1] *= rng.uniform(0.2, 5.0)
        after = layer.batch(bars["time"], future)
        np.testing.assert_array_equal(after[:cut], before[:cut])
        assert not np.array_equal(after[cut:], before[cut:], equal_nan=True)
    # Appending bars changes nothing either.
    np.testing.assert_array_equal(layer.batch(bars["time"].iloc[:500], x[:500]), before[:500])


def test_stepping_bar_by_bar_is_bit_identical_to_the_batch(rows: pd.DataFrame, layer: RegimeLayer) -> None:
    bars = _one(rows, 2)
    x = bars[["ret_1", "natr_14"]].to_numpy()
    batch = layer.batch(bars["time"], x)
    state = layer.new_state()
    live = np.vstack([layer.step(state, bars["time"].iloc[i : i + 1], x[i]) for i in range(len(bars))])
    assert live.tobytes() == batch.tobytes()


def test_a_mid_session_restart_rebuilds_the_same_state_from_the_days_bars(
    rows: pd.DataFrame, layer: RegimeLayer
) -> None:
    bars = _one(rows, 1)
    x = bars[["ret_1", "natr_14"]].to_numpy()
    batch = layer.batch(bars["time"], x)
    restart = 3 * 375 + 200  # 200 bars into the fourth session
    state = layer.replay(bars["time"].iloc[:restart], x[:restart])
    resumed = layer.step(state, bars["time"].iloc[restart:], x[restart:])
    assert resumed.tobytes() == batch[restart:].tobytes()


def test_each_session_starts_from_the_hmm_start_probabilities(rows: pd.DataFrame, layer: RegimeLayer) -> None:
    bars = _one(rows, 1)
    x = bars[["ret_1", "natr_14"]].to_numpy()
    second_day = layer.batch(bars["time"].iloc[375:], x[375:])
    np.testing.assert_array_equal(layer.batch(bars["time"], x)[375:], second_day)
    assert (
        session_days(bars["time"].iloc[[374, 375]]).tolist()[0] + 1
        == session_days(bars["time"].iloc[[375]])[0]
    )


def test_warm_up_bars_get_no_regime_and_do_not_move_the_state(rows: pd.DataFrame, layer: RegimeLayer) -> None:
    bars = _one(rows, 1)
    out = layer.frame(bars)
    assert out.iloc[:15].isna().all().all()
    assert out.iloc[15:].notna().all().all()
    probs = out[[c for c in layer.columns if c.startswith("regime_p")]].iloc[15:].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


def test_the_frame_is_computed_per_instrument_in_time_order_whatever_the_row_order(
    rows: pd.DataFrame, layer: RegimeLayer
) -> None:
    shuffled = rows.sample(frac=1.0, random_state=3)
    a = layer.frame(rows)
    b = layer.frame(shuffled).loc[rows.index]
    assert a.to_numpy().tobytes() == b.to_numpy().tobytes()
    with_cols = layer.with_columns(rows)
    assert list(with_cols.columns[-len(layer.columns) :]) == list(layer.columns)


def test_a_layer_saved_as_json_scores_bit_identically(rows: pd.DataFrame, layer: RegimeLayer) -> None:
    loaded = RegimeLayer.from_dict(json.loads(json.dumps(layer.to_dict())))
    assert loaded.frame(rows).to_numpy().tobytes() == layer.frame(rows).to_numpy().tobytes()
    assert loaded.info["rows"] == layer.info["rows"]


def test_the_fit_reads_only_the_rows_it_is_given() -> None:
    window = regime_rows(sessions=4, seed=5)
    later = regime_rows(sessions=3, seed=6, start="2026-01-12")
    later["natr_14"] *= 10.0  # a very different future
    alone = fit_regime_layer(window, RegimeSpec(n_states=2))
    again = fit_regime_layer(window.copy(), RegimeSpec(n_states=2))
    assert alone.to_dict() == again.to_dict()  # deterministic
    with_future = fit_regime_layer(pd.concat([window, later], ignore_index=True), RegimeSpec(n_states=2))
    assert with_future.to_dict()["hmm"] != alone.to_dict()["hmm"]


def test_too_few_bars_or_missing_inputs_are_a_clear_model_error(rows: pd.DataFrame) -> None:
    with pytest.raises(ModelError, match="observable bars"):
        fit_regime_layer(rows.iloc[:30])
    with pytest.raises(ModelError, match="natr_14"):
        fit_regime_layer(rows.drop(columns=["natr_14"]))
    layer = fit_regime_layer(rows, RegimeSpec(n_states=2))
    with pytest.raises(ModelError, match="ret_1"):
        layer.frame(rows.drop(columns=["ret_1"]))
    bad = layer.to_dict() | {"format": 99}
    with pytest.raises(ModelError, match="format"):
        RegimeLayer.from_dict(bad)


def test_a_bar_only_a_ruled_out_state_could_explain_keeps_the_prediction_instead_of_nan() -> None:
    from tickwise.core.regime import GaussianHmm

    hmm = GaussianHmm(
        startprob=np.array([1.0, 0.0]),  # state 1 never starts a session
        transmat=np.array([[1.0, 0.0], [0.0, 1.0]]),  # and is never entered
        means=np.array([[0.0, -3.0], [0.0, 3.0]]),
        variances=np.array([[1.0, 0.01], [1.0, 0.01]]),
    )
    layer = RegimeLayer(hmm=hmm)
    times = pd.date_range("2026-01-05 03:45", periods=3, freq="min", tz="UTC")
    inputs = np.array([[0.0, np.exp(-3.0)], [0.0, np.exp(3.0)], [0.0, np.exp(-3.0)]])  # bar 2: state 1's
    out = layer.batch(times, inputs)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, :2], [[1.0, 0.0]] * 3)
