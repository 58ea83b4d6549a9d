"""The compiled change-point recursion equals a slow, plain-numpy Adams & MacKay reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tickwise.core.regime import ChangePointSpec, GaussianHmm, RegimeLayer


def _layer(cp: ChangePointSpec) -> RegimeLayer:
    hmm = GaussianHmm(
        startprob=np.array([0.5, 0.5]),
        transmat=np.array([[0.9, 0.1], [0.1, 0.9]]),
        means=np.array([[0.0, -3.0], [0.0, -1.5]]),
        variances=np.array([[1.0, 0.1], [4.0, 0.1]]),
    )
    return RegimeLayer(hmm=hmm, change_point=cp)


def _reference(x: np.ndarray, cp: ChangePointSpec) -> tuple[np.ndarray, np.ndarray]:
    """Adams & MacKay with a Normal-Inverse-Gamma model, written out with dense arrays and no
    compiled code: the run-length posterior is kept for every run length, then cut to the first
    ``max_run_length`` entries and renormalised after each step (the truncation under test)."""
    mu0, kappa0, alpha0, beta0 = cp.prior
    h = cp.hazard
    probs = np.array([1.0])
    mu, kappa, alpha, beta = (np.array([v]) for v in (mu0, kappa0, alpha0, beta0))
    expected, recent = [], []
    for value in x:
        nu = 2.0 * alpha
        scale2 = beta * (kappa + 1.0) / (alpha * kappa)
        lgam = np.vectorize(math.lgamma)
        log_pred = (
            lgam((nu + 1.0) / 2.0)
            - lgam(nu / 2.0)
            - 0.5 * np.log(nu * np.pi * scale2)
            - (nu + 1.0) / 2.0 * np.log1p((value - mu) ** 2 / (nu * scale2))
        )
        joint = probs * np.exp(log_pred)
        grown = np.concatenate([[joint.sum() * h], joint * (1.0 - h)])
        grown = grown[: cp.max_run_length]
        probs = grown / grown.sum()
        new_mu = (kappa * mu + value) / (kappa + 1.0)
        new_beta = beta + kappa * (value - mu) ** 2 / (2.0 * (kappa + 1.0))
        mu = np.concatenate([[mu0], new_mu])[: cp.max_run_length]
        beta = np.concatenate([[beta0], new_beta])[: cp.max_run_length]
        kappa = np.concatenate([[kappa0], kappa + 1.0])[: cp.max_run_length]
        alpha = np.concatenate([[alpha0], alpha + 0.5])[: cp.max_run_length]
        runs = np.arange(len(probs))
        expected.append(float((runs * probs).sum()))
        recent.append(float(probs[: cp.change_window].sum()))
    return np.array(expected), np.array(recent)


def _one_session(z: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Bars of one session whose ATR-scaled return is ``z`` (natr_14 = 0.1 %, so ret_1 = z / 1000)."""
    times = pd.date_range("2026-01-05 03:45", periods=len(z), freq="min", tz="UTC")
    return times, np.column_stack([z / 1000.0, np.full(len(z), 0.1)])


@pytest.mark.parametrize("max_run_length", [400, 40])
def test_the_compiled_change_point_recursion_equals_the_numpy_reference(max_run_length: int) -> None:
    rng = np.random.default_rng(11)
    z = np.concatenate([rng.normal(0, 1, 150), rng.normal(0.5, 3, 100), rng.normal(0, 0.5, 120)])
    cp = ChangePointSpec(hazard=1 / 80, max_run_length=max_run_length, change_window=5)
    times, inputs = _one_session(z)
    out = _layer(cp).batch(times, inputs)
    expected, recent = _reference(inputs[:, 0] / (inputs[:, 1] / 100.0), cp)
    np.testing.assert_allclose(out[:, -2], expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out[:, -1], recent, rtol=1e-9, atol=1e-12)
    assert out[:, -2].max() <= max_run_length - 1  # bounded: the truncated distribution


def test_a_jump_in_volatility_raises_the_change_probability_and_resets_the_run_length() -> None:
    rng = np.random.default_rng(2)
    z = np.concatenate([rng.normal(0, 0.5, 200), rng.normal(0, 5, 50)])
    times, inputs = _one_session(z)
    out = _layer(ChangePointSpec()).batch(times, inputs)
    run, change = out[:, -2], out[:, -1]
    assert run[199] > 50
    assert change[200:210].max() > 0.5 > change[150:199].max()
    assert run[215] < 20


def test_the_change_point_spec_refuses_impossible_settings() -> None:
    with pytest.raises(ValueError, match="hazard"):
        ChangePointSpec(hazard=0.0)
    with pytest.raises(ValueError, match="change_window"):
        ChangePointSpec(max_run_length=10, change_window=11)
    with pytest.raises(ValueError, match="positive"):
        ChangePointSpec(prior=(0.0, 1.0, 0.0, 1.0))
