"""The frozen parameters of a feature set: change one and the feature_set id changes with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Parameters of the custom (non-TA-Lib) features and the multi-timeframe context.

    ``ffd_d`` / ``ffd_tau``: fractional differentiation order and weight cut-off (labeling.md §8;
    the window keeps every weight until the first with ``|w_k| < ffd_tau``).
    ``hurst_window``: bars of q-lag log-price differences behind each variance in the Hurst estimate;
    ``hurst_lags``: the lags q (the exponent is the least-squares slope of log σ_q on log q).
    ``kalman_*``: local-linear-trend filter on log close (process noise of level and slope, observation
    noise, bars masked while it settles).
    ``zscore_windows``: windows of the rolling z-scores of close; ``zscore_short`` is the window of the
    return and volume z-scores.
    ``return_horizons`` / ``return_lags``: multi-bar log returns and lags of the one-bar log return.
    ``timeframes``: minutes of the session-aligned context bars aggregated from the 1m input.
    """

    ffd_d: float = 0.4
    ffd_tau: float = 1e-4
    hurst_window: int = 128
    hurst_lags: tuple[int, ...] = (1, 2, 4, 8, 16)
    kalman_q_level: float = 1e-7
    kalman_q_slope: float = 1e-10
    kalman_r: float = 1e-6
    kalman_warmup: int = 30
    zscore_windows: tuple[int, ...] = (20, 60)
    zscore_short: int = 20
    return_horizons: tuple[int, ...] = (1, 5, 15, 60)
    return_lags: tuple[int, ...] = (1, 2, 3, 5)
    timeframes: tuple[int, ...] = (5, 15, 60)
    session_open_minute: int = 9 * 60 + 15
    session_close_minute: int = 15 * 60 + 30

    def __post_init__(self) -> None:
        if not 0.0 < self.ffd_d < 1.0:
            raise ValueError(f"ffd_d must be in (0, 1), got {self.ffd_d}")
        if not 0.0 < self.ffd_tau < 1.0:
            raise ValueError(f"ffd_tau must be in (0, 1), got {self.ffd_tau}")
        if self.hurst_window < 8 or len(self.hurst_lags) < 2 or min(self.hurst_lags) < 1:
            raise ValueError("hurst_window must be >= 8 and hurst_lags hold at least two lags >= 1")
        if len(set(self.hurst_lags)) != len(self.hurst_lags):
            raise ValueError("hurst_lags must be distinct")
        if min((*self.zscore_windows, self.zscore_short)) < 2:
            raise ValueError("z-score windows must be >= 2")
        if min(self.return_horizons + self.return_lags) < 1:
            raise ValueError("return horizons and lags must be >= 1")
        if 1 not in self.return_horizons:
            raise ValueError("return_horizons must include 1 (the lagged one-bar return)")
        if any(m < 2 for m in self.timeframes) or len(set(self.timeframes)) != len(self.timeframes):
            raise ValueError("timeframes must be distinct minute counts >= 2")
        if not 0 <= self.session_open_minute < self.session_close_minute <= 24 * 60:
            raise ValueError("session minutes must satisfy 0 <= open < close <= 1440")

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain JSON-able values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
