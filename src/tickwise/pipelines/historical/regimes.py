"""The regime layer in training: fit it on a training window's bars, add its columns to a training set.

Both the walk-forward fold models (``oos.py``) and the champion candidate (``train.py``) fit their regime
layer (``core.regime``) here, on the bars of their own training window only, and add the layer's
filtered columns to the training events as model inputs; the bars a model scores get the same columns
from the same layer and recursion (``predict.signals_frame``, live ``SignalStep``).

The training load hands the bars over as arrays (``core.dataset.Bars``): :func:`fit_bars_layer` and
:func:`with_bar_regime` build only the few columns the layer reads as a frame, and find each training
row's bar by its position (``TrainingSet.bar_rows``), not by a key lookup. The frame forms
(:func:`fit_window_layer`, :func:`with_regime`) give the same values for callers holding a frame.

A layer's fit and every bar's columns are one picklable task (:class:`BarsLayerFit`), so a pool of fit
workers (``core.fit_jobs.TaskRunner``) can run them beside the boosters' fits, off this process: the
HMM's EM runs on one BLAS/OpenMP thread and the columns' recursion is a compiled kernel, so the layer
and the columns are the same bytes in a worker as here (``tests/unit/regime/test_regime_fit_task.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.core.dataset import Bars, RowMatrix, TrainingSet
from tickwise.core.metrics import ZerodhaIntradayCosts, signal_pnl
from tickwise.core.regime import REGIME_INPUTS, RegimeLayer, RegimeSpec, fit_regime_layer
from tickwise.core.signals import CHANGE_PROB, REGIME_STATE, SignalGenerator, regime_layer_rules
from tickwise.domain.errors import ModelError


def fit_window_layer(
    features: pd.DataFrame, trained_from: datetime, trained_to: datetime, spec: RegimeSpec
) -> RegimeLayer | None:
    """The regime layer fitted on the bars of the training window ``[trained_from, trained_to]`` only
    (never the bars a model scores), or None when the window has too few observable bars."""
    times = pd.DatetimeIndex(pd.to_datetime(features["time"], utc=True))
    window = features.loc[(times >= pd.Timestamp(trained_from)) & (times <= pd.Timestamp(trained_to))]
    try:
        return fit_regime_layer(window, spec)
    except ModelError:
        return None


def _inputs_frame(bars: Bars, rows: np.ndarray | slice = slice(None)) -> pd.DataFrame:
    """The key columns and the regime inputs the bars have (a missing one is the layer's error)."""
    return bars.frame(rows, [c for c in REGIME_INPUTS if c in bars.columns])


def fit_bars_layer(
    bars: Bars, trained_from: datetime, trained_to: datetime, spec: RegimeSpec
) -> RegimeLayer | None:
    """:func:`fit_window_layer` on the bars of ``[trained_from, trained_to]``."""
    lo, hi = (pd.Timestamp(t).as_unit("ns").value for t in (trained_from, trained_to))
    rows = np.flatnonzero((bars.times >= lo) & (bars.times <= hi))
    try:
        return fit_regime_layer(_inputs_frame(bars, rows), spec)
    except ModelError:
        return None


@dataclass(frozen=True)
class FittedLayer:
    """A training window's regime layer (None: too few observable bars) and, with a layer, the
    columns it gives every bar (``layer.frame`` on the bars' positions)."""

    layer: RegimeLayer | None
    regime: pd.DataFrame | None


@dataclass(frozen=True)
class BarsLayerFit:
    """:func:`fit_bars_layer` on ``bars`` and the fitted layer's columns of every bar, as a task: a
    spilled load's bars pickle as their files' paths, so a fit worker reads the same bars itself."""

    bars: Bars
    trained_from: datetime
    trained_to: datetime
    spec: RegimeSpec

    def __call__(self) -> FittedLayer:
        layer = fit_bars_layer(self.bars, self.trained_from, self.trained_to, self.spec)
        return FittedLayer(layer, None if layer is None else layer.frame(_inputs_frame(self.bars)))


def with_bar_regime(
    ts: TrainingSet, bars: Bars, layer: RegimeLayer | None
) -> tuple[TrainingSet, pd.DataFrame | None]:
    """:func:`with_regime` for a training set gathered from ``bars``: the regime columns of every bar
    (on the bars' positions) and ``ts`` with its rows' columns appended."""
    return with_fitted_layer(
        ts, FittedLayer(layer, None if layer is None else layer.frame(_inputs_frame(bars)))
    )


def with_fitted_layer(ts: TrainingSet, fitted: FittedLayer) -> tuple[TrainingSet, pd.DataFrame | None]:
    """:func:`with_bar_regime` of a layer whose columns of every bar are already made (``fitted``)."""
    layer, regime = fitted.layer, fitted.regime
    if layer is None or regime is None:
        return ts, None
    if ts.bar_rows is None:
        raise ModelError("regime layer: the training set does not say which bars its rows are")
    per_bar = regime.to_numpy(dtype=np.float64)
    # A gathered-on-demand matrix keeps the columns per bar (no copy of the training matrix); an
    # in-memory one gets them appended.
    x = ts.x.with_columns(per_bar) if isinstance(ts.x, RowMatrix) else np.hstack([ts.x, per_bar[ts.bar_rows]])
    return replace(ts, x=x, feature_names=[*ts.feature_names, *layer.columns]), regime


def with_regime(
    ts: TrainingSet, features: pd.DataFrame, layer: RegimeLayer | None
) -> tuple[TrainingSet, pd.DataFrame | None]:
    """``ts`` with the layer's columns appended to its features (the same values the scored bars get),
    and the columns of every bar of ``features`` (on its index); unchanged without a layer."""
    if layer is None:
        return ts, None
    regime = layer.frame(features)
    times = pd.DatetimeIndex(pd.to_datetime(features["time"], utc=True)).as_unit("ns")
    key = pd.MultiIndex.from_arrays([features["instrument_token"].to_numpy(dtype=np.int64), times])
    pos = key.get_indexer(pd.MultiIndex.from_arrays([ts.token, ts.t0.as_unit("ns")]))
    if (pos < 0).any():
        raise ModelError("regime layer: a training event has no feature row")
    x = np.hstack([np.asarray(ts.x), regime.to_numpy(dtype=np.float64)[pos]])
    return replace(ts, x=x, feature_names=[*ts.feature_names, *layer.columns]), regime


def regime_columns_of(ts: TrainingSet, rows: np.ndarray) -> np.ndarray:
    """``(len(rows), 2)``: the regime state and change probability of training-set events ``rows``
    (NaN for a model without a regime layer)."""
    out = np.full((len(rows), 2), np.nan)
    for j, name in enumerate((REGIME_STATE, CHANGE_PROB)):
        if name in ts.feature_names:
            out[:, j] = ts.x[rows, ts.feature_names.index(name)]
    return out


def regime_comparison(
    ts: TrainingSet,
    rows: np.ndarray,
    probs: np.ndarray,
    regime: np.ndarray,
    *,
    threshold: float,
    suppress_states: tuple[int, ...],
    max_change_prob: float | None,
    costs: ZerodhaIntradayCosts | None = None,
) -> dict[str, object]:
    """Out of sample, net of costs (label outcomes, as the fold metrics): the signals of the labelled
    events ``rows`` (fold probabilities ``probs``, regime columns ``regime`` from
    :func:`regime_columns_of`) by regime state at the bar, and without vs with the configured regime
    filter (``filtered`` is None while the filter is off)."""
    direction = SignalGenerator(threshold=threshold).generate(probs[:, 0], probs[:, 1]).direction
    outcomes = ts.outcomes(rows)
    keys = ("trades", "hit_rate_net", "net_ret_total", "net_pnl_inr")

    def pnl(mask: np.ndarray) -> dict[str, float]:
        got = signal_pnl(np.where(mask, direction, 0), outcomes, costs)
        return {k: got[k] for k in keys}

    states = regime[:, 0]
    by_state: list[dict[str, object]] = []
    for state in sorted({int(s) for s in states[np.isfinite(states)].tolist()}):
        by_state.append({"regime_state": state, **pnl(states == state)})
    if (~np.isfinite(states)).any():
        by_state.append({"regime_state": None, **pnl(~np.isfinite(states))})
    rules = regime_layer_rules(suppress_states, max_change_prob)
    filtered = None
    if rules:
        allowed = np.ones(len(rows), dtype=bool)
        for rule in rules:
            allowed &= rule.allows(regime[:, 0] if rule.feature == REGIME_STATE else regime[:, 1])
        filtered = pnl(allowed)
    return {"by_state": by_state, "unfiltered": pnl(np.ones(len(rows), dtype=bool)), "filtered": filtered}
