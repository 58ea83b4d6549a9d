"""Out-of-sample P&L by regime state, and without vs with the regime filter (the historical summary)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from tickwise.cli.historical import regime_lines
from tickwise.core.dataset import TrainingSet
from tickwise.pipelines.historical.regimes import regime_columns_of, regime_comparison


def _training_set(n: int = 400) -> TrainingSet:
    rng = np.random.default_rng(8)
    times = pd.date_range("2026-01-05 03:45", periods=n, freq="min", tz="UTC")
    labels = {}
    for side in (1, -1):
        win = rng.random(n) < 0.5
        ret = np.where(win, 0.004, -0.003) * 1.0
        exit_price = 100.0 * (1.0 + side * ret)
        labels[side] = pd.DataFrame(
            {
                "time": times,
                "t1": times + pd.Timedelta(minutes=10),
                "label": np.where(win, 1, -1),
                "ret": ret,
                "exit_price": exit_price,
            }
        )
    states = rng.integers(0, 3, n).astype(float)
    states[:20] = np.nan  # warm-up bars without a regime
    cp = rng.random(n)
    return TrainingSet.of_arrays(
        feature_names=["f", "regime_state", "cp_prob"],
        feature_set="fs",
        timeframe="1m",
        x=np.column_stack([rng.normal(size=n), states, cp]),
        token=np.ones(n, dtype=np.int64),
        t0=pd.DatetimeIndex(times),
        t1=pd.DatetimeIndex(times) + pd.Timedelta(minutes=10),
        labels=labels,
    )


def test_pnl_by_state_adds_up_and_the_filter_removes_exactly_the_suppressed_states() -> None:
    ts = _training_set()
    rows = np.arange(len(ts))
    probs = np.column_stack([np.linspace(0.2, 0.9, len(ts)), np.linspace(0.9, 0.2, len(ts))])
    regime = regime_columns_of(ts, rows)
    off = regime_comparison(ts, rows, probs, regime, threshold=0.55, suppress_states=(), max_change_prob=None)
    assert off["filtered"] is None
    by_state = off["by_state"]
    assert isinstance(by_state, list)
    assert [r["regime_state"] for r in by_state] == [0, 1, 2, None]
    unfiltered = off["unfiltered"]
    assert isinstance(unfiltered, dict)
    assert sum(r["trades"] for r in by_state) == unfiltered["trades"] > 100
    assert np.isclose(sum(r["net_pnl_inr"] for r in by_state), unfiltered["net_pnl_inr"])
    on = regime_comparison(
        ts, rows, probs, regime, threshold=0.55, suppress_states=(2,), max_change_prob=None
    )
    filtered = on["filtered"]
    assert isinstance(filtered, dict)
    kept = [r for r in by_state if r["regime_state"] in (0, 1)]  # NaN state: suppressed too
    assert filtered["trades"] == sum(r["trades"] for r in kept)
    assert np.isclose(filtered["net_pnl_inr"], sum(r["net_pnl_inr"] for r in kept))
    lines = regime_lines(on)
    assert lines[0].startswith("out of sample by regime state") and "unknown:" in lines[0]
    assert lines[1].startswith("regime filter: without ")
    assert regime_lines({}) == []


def test_a_model_without_a_layer_reports_every_trade_as_unknown() -> None:
    ts = _training_set()
    plain = replace(ts, feature_names=["f"], x=ts.x[:, :1])
    rows = np.arange(len(plain))
    regime = regime_columns_of(plain, rows)
    assert np.isnan(regime).all()
    probs = np.full((len(plain), 2), [0.7, 0.2])
    out = regime_comparison(
        plain, rows, probs, regime, threshold=0.55, suppress_states=(), max_change_prob=0.5
    )
    by_state = out["by_state"]
    assert isinstance(by_state, list) and [r["regime_state"] for r in by_state] == [None]
    filtered = out["filtered"]
    assert isinstance(filtered, dict) and filtered["trades"] == 0  # NaN cp_prob never passes the filter
