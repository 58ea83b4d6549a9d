"""The pure rules of a training run: which features the model may use, how a version is named, which
model is champion, and JSON-safe metrics. ``pipelines.historical.train`` orchestrates around them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from tickwise.domain.time import IST

# Price-level and cumulative features: their scale differs between instruments and drifts over time,
# so trees split on levels that never recur. The model uses the scale-free features (returns,
# oscillators, ATR-normalised distances, z-scores...). They stay in the features table for SQL users.
LEVEL_FEATURES = frozenset(
    {
        "sma_20",
        "sma_50",
        "ema_9",
        "ema_20",
        "ema_50",
        "ema_200",
        "dema_20",
        "tema_20",
        "kama_30",
        "t3_5",
        "wma_20",
        "sar_002_02",
        "linearreg_slope_14",
        "macd_12_26_9",
        "macd_signal_12_26_9",
        "macd_hist_12_26_9",
        "mom_10",
        "atr_14",
        "trange",
        "stddev_20",
        "bb_upper_20_2",
        "bb_middle_20_2",
        "bb_lower_20_2",
        "obv",
        "ad",
        "adosc_3_10",
        "volume_sma_20",
        "vwap",
        "vwap_lower_2",
        "vwap_upper_2",
        "kalman_price",
        "kalman_slope",
    }
)
# Order-book features exist only for live candles (REST candles carry no depth): always NaN in training.
NEVER_HISTORICAL = frozenset({"obi_5"})
MAX_NAN_SHARE = 0.5


def trainable_features(names: list[str]) -> list[str]:
    """The features worth reading for training: neither price levels nor live-only, in order."""
    return [n for n in names if n not in LEVEL_FEATURES and n not in NEVER_HISTORICAL]


def candidate_features(features: pd.DataFrame | Mapping[str, float], names: list[str]) -> list[str]:
    """Of ``names``, the scale-free features with at most ``MAX_NAN_SHARE`` missing values in ``features``
    (a frame, or each name's share of missing values already counted)."""
    out = []
    for name in names:
        if name in LEVEL_FEATURES:
            continue
        share = features[name] if isinstance(features, Mapping) else features[name].isna().mean()
        if share > MAX_NAN_SHARE:
            continue
        out.append(name)
    return out


def model_version(trained_to: datetime, fingerprint: Mapping[str, object]) -> str:
    """``m<trained_to IST %Y%m%d-%H%M%S>-<hash6>``: the hash covers everything that determines the model,
    so the same data and configuration always give the same version (idempotent re-runs)."""
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"m{trained_to.astimezone(IST):%Y%m%d-%H%M%S}-{digest}"


ChampionDecision = Literal["champion", "challenger"]


def champion_decision(
    new_metrics: Mapping[str, object], champion_metrics: Mapping[str, object] | None
) -> ChampionDecision:
    """A new model is champion when there is none (``champion_metrics`` None), or when its finite holdout
    AUC beats the champion's (a champion without a finite AUC loses to any finite one)."""
    if champion_metrics is None:
        return "champion"
    new = _number(new_metrics.get("holdout_auc"))
    if new is None:
        return "challenger"
    old = _number(champion_metrics.get("holdout_auc"))
    if old is None or new > old:
        return "champion"
    return "challenger"


def _number(value: object) -> float | None:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def json_safe(values: Mapping[str, object]) -> dict[str, object]:
    """JSON-safe copy: NaN/inf become None (jsonb rejects NaN), numpy scalars become Python numbers."""
    out: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, (float, np.floating)):
            out[key] = float(value) if np.isfinite(value) else None
        elif isinstance(value, np.integer):
            out[key] = int(value)
        elif isinstance(value, Mapping):
            out[key] = json_safe(value)
        else:
            out[key] = value
    return out
