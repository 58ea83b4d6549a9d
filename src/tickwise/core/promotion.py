"""The promotion rule: a challenger replaces the champion only on significant out-of-sample evidence.

Both models are scored on the **same** out-of-sample window (bars after both training windows plus the
embargo). Two one-sided tests of "the challenger is better" are available:

- ``bootstrap`` (default): paired bootstrap of the daily net returns of following each model's signals
  (labels' outcomes, Zerodha intraday costs; see ``core.metrics``). Days are resampled as a whole, so
  intraday dependence between trades does not inflate the evidence. p = share of resampled mean
  differences, centred on zero, at or above the observed one.
- ``delong``: DeLong's test for two correlated ROC AUCs on the same labelled bars (Sun & Xu's fast
  algorithm), long and short events pooled. Overlapping labels make its p-value optimistic.

The challenger is promoted when p < ``alpha`` and at least ``min_days`` sessions are in the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickwise.core.metrics import TradeOutcomes, ZerodhaIntradayCosts
from tickwise.domain.time import IST

FloatArray = npt.NDArray[np.float64]
TestName = Literal["bootstrap", "delong"]


@dataclass(frozen=True, slots=True)
class PromotionRule:
    test: TestName = "bootstrap"
    alpha: float = 0.05
    min_days: int = 5
    bootstrap_samples: int = 5000
    seed: int = 7

    def __post_init__(self) -> None:
        if self.test not in ("bootstrap", "delong"):
            raise ValueError(f"promotion test must be 'bootstrap' or 'delong', got {self.test!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.min_days < 1 or self.bootstrap_samples < 100:
            raise ValueError("min_days must be >= 1 and bootstrap_samples >= 100")


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    """A one-sided test of challenger > champion. ``challenger``/``champion`` are the compared
    statistics (mean daily net return, or AUC); ``n`` counts days (bootstrap) or labelled events."""

    test: TestName
    challenger: float
    champion: float
    p_value: float
    n: int
    days: int


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    promote: bool
    reason: str
    result: ComparisonResult | None


def _midrank(x: FloatArray) -> FloatArray:
    order = np.argsort(x, kind="mergesort")
    z = x[order]
    n = len(x)
    ranks = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j < n and z[j] == z[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1.0
        i = j
    out = np.empty(n, dtype=np.float64)
    out[order] = ranks
    return out


def delong_test(y: npt.ArrayLike, p_challenger: npt.ArrayLike, p_champion: npt.ArrayLike) -> ComparisonResult:
    """One-sided DeLong test of AUC(challenger) > AUC(champion) on the same labelled events."""
    labels = np.asarray(y).astype(bool)
    scores = np.vstack([np.asarray(p_challenger, np.float64), np.asarray(p_champion, np.float64)])
    if scores.shape[1] != labels.size:
        raise ValueError("labels and both score arrays must have the same length")
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        return ComparisonResult("delong", float("nan"), float("nan"), 1.0, labels.size, 0)
    pos, neg = scores[:, labels], scores[:, ~labels]
    tx = np.vstack([_midrank(r) for r in pos])
    ty = np.vstack([_midrank(r) for r in neg])
    tz = np.vstack([_midrank(r) for r in np.hstack([pos, neg])])
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.cov(v01) / m + np.cov(v10) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    # Zero variance: the two models rank every pair alike, so only a strict AUC gap is evidence.
    no_spread = 0.0 if diff > 0 else 1.0
    p = no_spread if var <= 0 else 0.5 * math.erfc(diff / math.sqrt(var) / math.sqrt(2.0))
    return ComparisonResult("delong", float(aucs[0]), float(aucs[1]), p, labels.size, 0)


def paired_bootstrap(
    daily_challenger: npt.ArrayLike, daily_champion: npt.ArrayLike, *, samples: int = 5000, seed: int = 7
) -> ComparisonResult:
    """One-sided paired bootstrap of mean(challenger - champion) > 0 over days."""
    a = np.asarray(daily_challenger, np.float64)
    b = np.asarray(daily_champion, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("both daily series must be 1-D and aligned day by day")
    if a.size == 0:
        return ComparisonResult("bootstrap", float("nan"), float("nan"), 1.0, 0, 0)
    d = a - b
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(samples, d.size))
    null_means = (d - observed)[idx].mean(axis=1)  # resampled under "no difference"
    p = float((1 + np.count_nonzero(null_means >= observed - 1e-15)) / (samples + 1))
    if not observed > 0:
        p = max(p, 0.5)  # a challenger that is not ahead never wins on noise
    return ComparisonResult("bootstrap", float(a.mean()), float(b.mean()), p, d.size, d.size)


def trade_net_returns(
    direction: npt.ArrayLike, outcomes: TradeOutcomes, costs: ZerodhaIntradayCosts | None = None
) -> FloatArray:
    """Per bar: the net return of following ``direction`` (0 where there is no trade)."""
    costs = costs or ZerodhaIntradayCosts()
    d = np.asarray(direction)
    long_cost = costs.round_trip(np.ones(d.size), outcomes.entry_price, outcomes.long_exit)
    short_cost = costs.round_trip(-np.ones(d.size), outcomes.entry_price, outcomes.short_exit)
    net = np.where(d == 1, outcomes.long_ret - long_cost, 0.0)
    net = np.where(d == -1, outcomes.short_ret - short_cost, net)
    return np.asarray(net, dtype=np.float64)


def daily_sum(times: pd.DatetimeIndex, values: npt.ArrayLike) -> pd.Series:
    """Sum of ``values`` per IST session date (every date with a bar appears, with 0 if nothing traded)."""
    days = pd.DatetimeIndex(times).tz_convert(IST).normalize()
    return pd.Series(np.asarray(values, np.float64), index=days).groupby(level=0).sum()


def decide(rule: PromotionRule, result: ComparisonResult | None, *, days: int) -> PromotionDecision:
    """Apply ``rule`` to a comparison on a window of ``days`` sessions (None: no champion to beat)."""
    if result is None:
        return PromotionDecision(True, "no champion to compare with", None)
    if days < rule.min_days:
        return PromotionDecision(
            False,
            f"only {days} out-of-sample session(s) in common with the champion; {rule.min_days} needed",
            result,
        )
    what = "mean daily net return" if result.test == "bootstrap" else "AUC"
    summary = (
        f"{what} {result.challenger:.6g} vs champion {result.champion:.6g} over {days} session(s), "
        f"{result.test} p = {result.p_value:.4f}"
    )
    if result.p_value < rule.alpha:
        return PromotionDecision(True, f"beats the champion: {summary} < {rule.alpha}", result)
    return PromotionDecision(False, f"not significantly better: {summary} >= {rule.alpha}", result)
