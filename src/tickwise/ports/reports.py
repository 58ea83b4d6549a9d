"""What a backtest report shows, computed once, and the role that renders it (HTML + PNG files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd


@dataclass(frozen=True)
class SizingComparison:
    """A meta-sized run and its unsized companion over the same signals and prices (meta-labeling):
    ``sized``/``unsized`` map each compared metric to its value; equity frames as ``ReportData.equity``."""

    unsized_run_id: str
    sized: Mapping[str, Any]
    unsized: Mapping[str, Any]
    sized_equity: pd.DataFrame
    unsized_equity: pd.DataFrame
    meta_sized_signals: int


@dataclass(frozen=True)
class ReportData:
    """Everything a report page shows. Frames are ready to draw; absent sections carry a ``*_note``.

    - ``equity``: ``time``, ``equity``, ``drawdown`` (fraction ≤ 0), trade by trade;
    - ``daily``: net PnL per IST session (index: date), zero on sessions without exits;
    - ``monthly``: return on capital per month (rows years, columns 1..12);
    - ``deciles``: per confidence group: ``confidence_mean``, ``hit_rate``, ``pt_rate``, ``trades``;
    - ``importance``: (feature, share of total gain) of the model, largest first, or None;
    - ``parity``: per IST day with both live and historical signals: ``pairs``, ``direction_agree``,
      ``max_confidence_diff``; or None;
    - ``regimes``: performance by the filtered HMM state at each trade's entry, or None.
    """

    run_id: str
    model_version: str
    sample: str  # "out-of-sample", "IN-SAMPLE", "partly in-sample", "unknown"
    sample_note: str
    start: datetime
    end: datetime
    created_at: datetime | None
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    equity: pd.DataFrame
    daily: pd.Series
    monthly: pd.DataFrame
    deciles: Sequence[Mapping[str, float]]
    trades: pd.DataFrame
    importance: Sequence[tuple[str, float]] | None = None
    importance_note: str = ""
    parity: pd.DataFrame | None = None
    parity_note: str = ""
    # Per regime state at entry (core.regime.performance): regime_state, trades, hit_rate, net,
    # net_per_trade; or None when no trade's model has a regime layer.
    regimes: pd.DataFrame | None = None
    regimes_note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    sizing: SizingComparison | None = None  # set when the run has an unsized companion


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    images: tuple[Path, ...]


class ReportRenderer(Protocol):
    def render(self, data: ReportData, out_dir: Path) -> ReportFiles: ...


class ParitySource(Protocol):
    async def parity_by_day(self, *, days: int = 30) -> pd.DataFrame: ...
