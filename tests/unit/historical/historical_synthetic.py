"""Synthetic training data with a planted edge, for fast unit tests of training and CV."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tickwise.core.dataset import TrainingSet, build_training_set
from tickwise.core.model import SIDES


def synthetic_frames(
    n_bars: int = 4000, n_instruments: int = 3, edge: float = 1.0, n_noise: int = 4, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and both-side labels on a 1-minute grid. ``signal`` predicts the long label (and its
    negation the short label) with strength ``edge``; ``noise_*`` columns carry nothing."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-01-05 03:45", periods=n_bars, freq="1min", tz="UTC")
    feats, labels = [], []
    for token in range(1, n_instruments + 1):
        signal = rng.normal(size=n_bars)
        f = pd.DataFrame({"instrument_token": token, "timeframe": "1m", "time": times, "signal": signal})
        for j in range(n_noise):
            f[f"noise_{j}"] = rng.normal(size=n_bars)
        feats.append(f)
        latent = edge * signal + rng.normal(size=n_bars)
        hold = rng.integers(1, 11, size=n_bars)
        t1 = times + pd.to_timedelta(hold, unit="min")
        price = 100.0 + np.cumsum(rng.normal(scale=0.05, size=n_bars))
        for side in (1, -1):
            win = (side * latent) > 0.3
            ret = np.where(win, 0.002, -0.0015)
            labels.append(
                pd.DataFrame(
                    {
                        "instrument_token": token,
                        "timeframe": "1m",
                        "time": times,
                        "side": side,
                        "label": np.where(win, 1, -1),
                        "t1": t1,
                        "ret": ret,
                        "exit_price": price * (1 + side * ret),
                        "weight": 1.0,
                    }
                )
            )
    return pd.concat(feats, ignore_index=True), pd.concat(labels, ignore_index=True)


def synthetic_training_set(**kwargs: object):  # type: ignore[no-untyped-def]
    features, labels = synthetic_frames(**kwargs)  # type: ignore[arg-type]
    return build_training_set(features, labels, feature_set="fs-test", timeframe="1m")


def planted_edge_training_set(shuffle: bool, seed: int = 5) -> TrainingSet:
    """3 instruments x 2,500 bars with a planted edge; ``shuffle`` permutes each side's outcomes across
    bars, leaving nothing to learn (the meta models' leak checks)."""
    features, labels = synthetic_frames(n_bars=2500, n_instruments=3, edge=1.0, seed=seed)
    if shuffle:
        rng = np.random.default_rng(seed)
        parts = []
        for side in SIDES:
            part = labels[labels["side"] == side].reset_index(drop=True)
            order = rng.permutation(len(part))
            for col in ("label", "ret", "exit_price"):
                part[col] = part[col].to_numpy()[order]
            parts.append(part)
        labels = pd.concat(parts, ignore_index=True)
    return build_training_set(features, labels, feature_set="fs-test", timeframe="1m")
