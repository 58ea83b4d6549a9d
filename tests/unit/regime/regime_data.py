"""Synthetic 1m feature rows with planted volatility regimes, for the regime-layer tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def regime_rows(
    tokens: tuple[int, ...] = (1, 2), sessions: int = 6, seed: int = 1, start: str = "2026-01-05"
) -> pd.DataFrame:
    """Per instrument and session 375 bars: calm (NATR ~0.05 %) until 11:15, then turbulent (~0.2 %),
    with a warm-up of NaN features at the very start of each instrument's history."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=sessions)
    frames = []
    for token in tokens:
        for day in days:
            times = pd.date_range(
                pd.Timestamp(day.date()).tz_localize("Asia/Kolkata") + pd.Timedelta("9h15min"),
                periods=375,
                freq="min",
            )
            level = np.where(np.arange(375) < 120, 0.05, 0.2)
            natr = level * (1.0 + 0.1 * rng.normal(size=375))
            ret = rng.normal(size=375) * natr / 100.0
            frames.append(
                pd.DataFrame(
                    {
                        "instrument_token": token,
                        "time": times.tz_convert("UTC"),
                        "ret_1": ret,
                        "natr_14": natr,
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True)
    for token in tokens:
        first = out.index[out["instrument_token"] == token][:15]
        out.loc[first, ["ret_1", "natr_14"]] = np.nan
    return out
