"""The regime HMM's cheaper fit (scaled forward-backward, one k-means thread) estimates what hmmlearn's
log-space fit estimated, to rounding; an observation whose probability underflows falls back to the
log-space fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from regime_data import regime_rows

from tickwise.core.regime import RegimeSpec, fit_regime_layer
from tickwise.core.regime.layer import fit_observations


def _log_space_fit(rows: pd.DataFrame, spec: RegimeSpec) -> dict[str, np.ndarray]:
    """The fit as it was made before: hmmlearn's log-space EM, k-means with its default threads,
    states in canonical order (by mean log NATR)."""
    from hmmlearn.hmm import GaussianHMM

    obs, lengths, _ = fit_observations(rows, spec)
    model = GaussianHMM(
        n_components=spec.n_states,
        covariance_type="diag",
        n_iter=spec.n_iter,
        random_state=spec.seed,
        min_covar=1e-4,
        implementation="log",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(obs, lengths)
    rank = np.argsort(model.means_[:, 1], kind="stable")
    return {
        "startprob": model.startprob_[rank],
        "transmat": model.transmat_[np.ix_(rank, rank)],
        "means": model.means_[rank],
        "variances": np.array([np.diag(c) for c in model.covars_])[rank],
    }


def test_the_scaled_single_thread_fit_equals_the_log_space_fit_to_rounding() -> None:
    rows = regime_rows(tokens=(1, 2, 3), sessions=8, seed=5)
    for spec in (RegimeSpec(n_states=3, n_iter=30), RegimeSpec(n_states=2, n_iter=10, seed=3)):
        layer = fit_regime_layer(rows, spec)
        assert layer.info["implementation"] == "scaling"
        expected = _log_space_fit(rows, spec)
        for name, value in expected.items():
            np.testing.assert_allclose(getattr(layer.hmm, name), value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_the_regime_columns_of_the_cheaper_fit_equal_the_log_space_fits_to_rounding() -> None:
    rows = regime_rows(tokens=(1, 2), sessions=6, seed=2)
    layer = fit_regime_layer(rows, RegimeSpec(n_states=3))
    reference = type(layer.hmm)(**_log_space_fit(rows, RegimeSpec(n_states=3)))
    scored = regime_rows(tokens=(4,), sessions=2, seed=8)
    got = layer.frame(scored).to_numpy()
    expected = type(layer)(hmm=reference, change_point=layer.change_point).frame(scored).to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_an_observation_far_from_every_state_makes_the_fit_fall_back_to_log_space() -> None:
    rows = regime_rows(tokens=(1,), sessions=6, seed=4)
    # Observations (ATR-scaled return, log NATR) tightly around zero, and three a thousand ATRs (or
    # e^700 NATR) away: in probabilities, not logarithms, the forward pass underflows on them.
    x = np.random.default_rng(0).normal(size=(len(rows), 2)) * 0.01
    x[500], x[1500], x[700] = (1e3, 0.0), (-1e3, 0.0), (0.0, 700.0)
    rows["natr_14"] = np.exp(x[:, 1])
    rows["ret_1"] = x[:, 0] * rows["natr_14"] / 100
    spec = RegimeSpec(n_states=2, n_iter=5)
    layer = fit_regime_layer(rows, spec)
    assert layer.info["implementation"] == "log"
    expected = _log_space_fit(rows, spec)
    np.testing.assert_allclose(layer.hmm.means, expected["means"], rtol=1e-9, atol=1e-12)
