"""The one regime recursion, compiled: a Gaussian-HMM forward filter and Bayesian online change-point
detection (Adams & MacKay 2007) stepped together, one bar after the other, over carried state.

Batch scoring runs :func:`regime_steps` over all of an instrument's bars from a fresh state; live scoring
runs it over one bar with the instrument's carried state. The per-bar arithmetic is the same code in the
same order either way (no ``fastmath``, no reduction whose order depends on the number of bars), so live
and batch values are bit-identical.

**Anchor**: both recursions restart at the first bar of every IST session (``days`` changes). A live
session restarted mid-day rebuilds the state by replaying the day's earlier bars, and the state never
depends on anything before today's open. **Causal**: a bar's outputs depend only on its own and earlier
bars of the session (a filter, never a smoother or Viterbi).

A bar whose observation is not finite (feature warm-up) gets NaN outputs and leaves the state unchanged.

State layout (one instrument):

- ``hmm_p``  ``(K,)``   filtered state probabilities after the last observed bar;
- ``bo``     ``(5, R)`` per run length r: log P(r), and the Normal-Inverse-Gamma posterior (mu, kappa,
  alpha, beta) of the run's returns;
- ``ints``   ``(3,)``   session day, number of live run lengths, whether the HMM has seen a bar today.

**Cost.** The change-point step dominates (about 95 % of a bar's time with the default 200 run lengths).
Run length r's shape ``alpha`` is always ``alpha0 + 0.5 + ... + 0.5`` (r additions, whatever the data),
so the Student-t's ``lgamma((nu + 1) / 2) - lgamma(nu / 2)`` of run length r is a constant of the prior:
:func:`change_point_table` computes it once per prior with the same expression, and the step looks it up
where the run's ``alpha`` equals the tabled one (else computes it as before), which gives the same bits.
The HMM filter and the change-point model read the same observation and restart at the same bars but
never read each other's state, so :func:`regime_steps` can run either alone (``parts``) with the same
values: batch scoring computes the change-point columns once for all models sharing a prior.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

STATE_DAY, STATE_ACTIVE, STATE_HMM_STARTED = 0, 1, 2
NO_DAY = np.int64(-(2**62))
# Which recursions regime_steps runs (``parts``): the HMM filter, the change-point model, or both.
HMM_PART, CHANGE_POINT_PART = 1, 2
BOTH_PARTS = HMM_PART | CHANGE_POINT_PART


@njit(cache=True)
def _log_normal_diag(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    out = 0.0
    for d in range(x.shape[0]):
        diff = x[d] - mean[d]
        out += -0.5 * (math.log(2.0 * math.pi * var[d]) + diff * diff / var[d])
    return out


@njit(cache=True)
def _lgamma_ratio(alpha: float) -> float:
    """``lgamma((nu + 1) / 2) - lgamma(nu / 2)`` with ``nu = 2 alpha``: the Student-t's normalising
    term that depends on the shape only."""
    nu = 2.0 * alpha
    return math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu)


@njit(cache=True)
def change_point_table(alpha0: float, max_run_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Each run length's shape ``alpha`` (``alpha0`` plus 0.5 per bar of the run, added one at a time as
    :func:`_bocpd_step` adds them) and its :func:`_lgamma_ratio`."""
    alphas = np.empty(max_run_length)
    ratios = np.empty(max_run_length)
    alpha = alpha0
    for r in range(max_run_length):
        if r > 0:
            alpha = alpha + 0.5
        alphas[r] = alpha
        ratios[r] = _lgamma_ratio(alpha)
    return alphas, ratios


@njit(cache=True)
def _log_student_t(x: float, mu: float, kappa: float, alpha: float, beta: float, ratio: float) -> float:
    """Log posterior-predictive density of x under a Normal-Inverse-Gamma posterior (Student-t);
    ``ratio`` is :func:`_lgamma_ratio` of ``alpha``."""
    nu = 2.0 * alpha
    scale2 = beta * (kappa + 1.0) / (alpha * kappa)
    z = (x - mu) * (x - mu) / (nu * scale2)
    return ratio - 0.5 * math.log(nu * math.pi * scale2) - 0.5 * (nu + 1.0) * math.log1p(z)


@njit(cache=True)
def _reset_bocpd(bo: np.ndarray, ints: np.ndarray, prior: np.ndarray) -> None:
    bo[0, :] = -np.inf
    bo[0, 0] = 0.0
    bo[1, 0] = prior[0]
    bo[2, 0] = prior[1]
    bo[3, 0] = prior[2]
    bo[4, 0] = prior[3]
    ints[STATE_ACTIVE] = 1


@njit(cache=True)
def _hmm_step(
    x: np.ndarray,
    startprob: np.ndarray,
    transmat: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    hmm_p: np.ndarray,
    ints: np.ndarray,
    out: np.ndarray,
) -> None:
    k = startprob.shape[0]
    pred = np.empty(k)
    if ints[STATE_HMM_STARTED] == 0:
        for j in range(k):
            pred[j] = startprob[j]
    else:
        for j in range(k):
            acc = 0.0
            for i in range(k):
                acc += hmm_p[i] * transmat[i, j]
            pred[j] = acc
    ll = np.empty(k)
    top = -np.inf
    for j in range(k):
        ll[j] = _log_normal_diag(x, means[j], variances[j])
        if ll[j] > top:
            top = ll[j]
    total = 0.0
    for j in range(k):
        ll[j] = pred[j] * math.exp(ll[j] - top)
        total += ll[j]
    if not total > 0.0:
        # Every state the prediction allows is infinitely less likely than one it rules out (an extreme
        # bar against a zero start or transition probability): keep the prediction, never NaN.
        for j in range(k):
            ll[j] = pred[j]
        total = 1.0
    best = 0
    for j in range(k):
        hmm_p[j] = ll[j] / total
        out[j] = hmm_p[j]
        if hmm_p[j] > hmm_p[best]:
            best = j
    out[k] = float(best)
    ints[STATE_HMM_STARTED] = 1


@njit(cache=True)
def _bocpd_step(
    x: float,
    log_h: float,
    log_1mh: float,
    prior: np.ndarray,
    change_window: int,
    bo: np.ndarray,
    ints: np.ndarray,
    out: np.ndarray,
    alphas: np.ndarray,
    ratios: np.ndarray,
    grown: np.ndarray,
    cp_terms: np.ndarray,
) -> None:
    r_max = bo.shape[1]
    active = ints[STATE_ACTIVE]
    tabled = alphas.shape[0]
    top = -np.inf
    for i in range(active):
        alpha = bo[3, i]
        ratio = ratios[i] if i < tabled and alphas[i] == alpha else _lgamma_ratio(alpha)
        lp = bo[0, i] + _log_student_t(x, bo[1, i], bo[2, i], alpha, bo[4, i], ratio)
        cp_terms[i] = lp
        if lp > top:
            top = lp
        if i + 1 < r_max:
            grown[i + 1] = lp + log_1mh
    acc = 0.0
    for i in range(active):
        acc += math.exp(cp_terms[i] - top)
    grown[0] = top + math.log(acc) + log_h
    new_active = active + 1 if active < r_max else r_max  # the tail beyond R-1 is dropped (truncation)
    top = -np.inf
    for i in range(new_active):
        if grown[i] > top:
            top = grown[i]
    acc = 0.0
    for i in range(new_active):
        acc += math.exp(grown[i] - top)
    norm = top + math.log(acc)
    # Posterior of each run's parameters: run r+1 is run r updated with x; run 0 starts from the prior.
    for i in range(new_active - 1, 0, -1):
        mu, kappa, alpha, beta = bo[1, i - 1], bo[2, i - 1], bo[3, i - 1], bo[4, i - 1]
        diff = x - mu
        bo[1, i] = (kappa * mu + x) / (kappa + 1.0)
        bo[2, i] = kappa + 1.0
        bo[3, i] = alpha + 0.5
        bo[4, i] = beta + kappa * diff * diff / (2.0 * (kappa + 1.0))
    bo[1, 0] = prior[0]
    bo[2, 0] = prior[1]
    bo[3, 0] = prior[2]
    bo[4, 0] = prior[3]
    expected = 0.0
    recent = 0.0
    for i in range(new_active):
        bo[0, i] = grown[i] - norm
        p = math.exp(bo[0, i])
        expected += i * p
        if i < change_window:
            recent += p
    ints[STATE_ACTIVE] = new_active
    out[0] = expected
    out[1] = recent


@njit(cache=True)
def _observe(ret: float, natr: float, x: np.ndarray) -> bool:
    """The observation of one bar from its features: ``x = (ret_1 / ATR share, log natr_14)``. The
    return in units of the bar's average true range makes instruments comparable; False when the bar
    cannot be observed (warm-up NaN, a zero range)."""
    if not (math.isfinite(ret) and math.isfinite(natr)) or natr <= 0.0:
        return False
    x[0] = ret / (natr / 100.0)
    x[1] = math.log(natr)
    return math.isfinite(x[0]) and math.isfinite(x[1])


@njit(cache=True)
def observations(inputs: np.ndarray) -> np.ndarray:
    """``(n, 2)`` features (ret_1, natr_14) -> ``(n, 2)`` observations (NaN rows where unobservable):
    what the HMM is fitted on, computed by the same per-bar code the filter runs."""
    n = inputs.shape[0]
    out = np.full((n, 2), np.nan)
    x = np.empty(2)
    for t in range(n):
        if _observe(inputs[t, 0], inputs[t, 1], x):
            out[t, 0] = x[0]
            out[t, 1] = x[1]
    return out


@njit(cache=True)
def regime_steps(
    days: np.ndarray,
    inputs: np.ndarray,
    startprob: np.ndarray,
    transmat: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    hazard: float,
    prior: np.ndarray,
    change_window: int,
    hmm_p: np.ndarray,
    bo: np.ndarray,
    ints: np.ndarray,
    out: np.ndarray,
    alphas: np.ndarray,
    ratios: np.ndarray,
    parts: int,
) -> None:
    """Step ``len(days)`` bars; ``inputs[t]`` = (ret_1, natr_14) of bar t, ``days[t]`` its IST session day.

    ``out`` (n, K + 3): filtered P(state j) for j < K, the most probable filtered state, the expected run
    length and P(run length < change_window). The HMM observes :func:`_observe` of the bar, the
    change-point model its first component (the ATR-scaled return). State arrays are updated in place.
    ``alphas``, ``ratios``: :func:`change_point_table` of the prior (any length: a run length beyond it,
    or whose shape differs, computes its own). ``parts``: :data:`BOTH_PARTS`, or :data:`HMM_PART` /
    :data:`CHANGE_POINT_PART` alone (the other's columns are left as they are, except that an
    unobservable bar's row is all NaN either way)."""
    k = startprob.shape[0]
    log_h = math.log(hazard)
    log_1mh = math.log1p(-hazard)
    x = np.empty(2)
    grown = np.empty(bo.shape[1])
    cp_terms = np.empty(bo.shape[1])
    for t in range(days.shape[0]):
        if days[t] != ints[STATE_DAY]:
            ints[STATE_DAY] = days[t]
            ints[STATE_HMM_STARTED] = 0
            _reset_bocpd(bo, ints, prior)
        row = out[t]
        if not _observe(inputs[t, 0], inputs[t, 1], x):
            row[:] = np.nan
            continue
        if parts & HMM_PART:
            _hmm_step(x, startprob, transmat, means, variances, hmm_p, ints, row)
        if parts & CHANGE_POINT_PART:
            _bocpd_step(
                x[0],
                log_h,
                log_1mh,
                prior,
                change_window,
                bo,
                ints,
                row[k + 1 :],
                alphas,
                ratios,
                grown,
                cp_terms,
            )


@njit(cache=True)
def diag_gaussian_log_density(
    x: np.ndarray, means: np.ndarray, covars: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """``(n, K)`` log densities of rows ``x`` under K diagonal Gaussians, element for element the
    arithmetic of hmmlearn's ``_log_multivariate_normal_density_diag``: ``-0.5 * (offset[j] + sum_d
    (x_d - mean_jd) ** 2 / covar_jd)`` with ``offset[j] = D log(2 pi) + sum_d log(covar_jd)`` computed
    by the caller with numpy as hmmlearn does (the sum over d in order from the first term, as numpy's
    reduction of a short axis adds them). Used by the HMM fit, where numpy's many small temporaries
    cost more than the arithmetic."""
    n, dims = x.shape
    k = means.shape[0]
    out = np.empty((n, k))
    for t in range(n):
        for j in range(k):
            acc = 0.0
            for d in range(dims):
                diff = x[t, d] - means[j, d]
                term = diff * diff / covars[j, d]
                acc = term if d == 0 else acc + term
            out[t, j] = -0.5 * (offset[j] + acc)
    return out
