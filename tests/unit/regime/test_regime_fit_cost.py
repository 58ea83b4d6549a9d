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


def _hmmlearn_fit(cls: type, obs: np.ndarray, lengths: np.ndarray, implementation: str) -> object:
    from threadpoolctl import threadpool_limits

    model = cls(
        n_components=3,
        covariance_type="diag",
        n_iter=12,
        random_state=7,
        min_covar=1e-4,
        implementation=implementation,
    )
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(obs, lengths)
    return model


def test_the_batched_emissions_fit_equals_hmmlearns_own_class_bit_for_bit() -> None:
    # The E-step's emission probabilities, computed once for all sequences by a compiled loop, are the
    # values hmmlearn computes per sequence: every fitted parameter and the score are array_equal.
    from hmmlearn.hmm import GaussianHMM

    from tickwise.core.regime.layer import _gaussian_hmm_class

    obs, lengths, _ = fit_observations(regime_rows(tokens=(1, 2, 3), sessions=6, seed=4), RegimeSpec())
    for implementation in ("scaling", "log"):
        ours = _hmmlearn_fit(_gaussian_hmm_class(), obs, lengths, implementation)
        theirs = _hmmlearn_fit(GaussianHMM, obs, lengths, implementation)
        for name in ("startprob_", "transmat_", "means_", "_covars_"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), (implementation, name)
        assert ours.score(obs, lengths) == theirs.score(obs, lengths)  # type: ignore[attr-defined]


def test_the_compiled_log_density_equals_hmmlearns_numpy_one_bit_for_bit() -> None:
    from hmmlearn.stats import _log_multivariate_normal_density_diag

    from tickwise.core.regime.kernels import diag_gaussian_log_density

    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(0, 3, size=(5000, 2)), [[1e200, -1e-300], [0.0, -0.0], [1e-320, 7.0]]])
    means = rng.normal(0, 2, size=(4, 2))
    covars = np.maximum(rng.gamma(0.5, 1.0, size=(4, 2)), np.finfo(float).tiny)
    covars[0, 1] = 1e-300
    offset = 2 * np.log(2 * np.pi) + np.log(covars).sum(axis=-1)
    with np.errstate(over="ignore"):
        expected = _log_multivariate_normal_density_diag(x, means, covars)
    assert np.array_equal(diag_gaussian_log_density(x, means, covars, offset), expected)
