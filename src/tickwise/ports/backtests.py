"""Backtest storage and inputs: runs with their trades and equity curve, and the signals a run trades.

Trades and equity points cross the port as frames with the table's column names (money columns hold
``Decimal`` rupees to the paisa when written; reads return floats).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """One row of ``backtest_runs``."""

    run_id: str
    start: datetime  # column "from"
    end: datetime  # column "to" (exclusive)
    model_version: str  # a model version, or "oos" for the out-of-sample signal set
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


class BacktestRepository(Protocol):
    async def save(self, run: BacktestRun, trades: pd.DataFrame, equity: pd.DataFrame) -> None: ...
    async def get(self, run_id: str) -> BacktestRun | None: ...
    async def latest(self) -> BacktestRun | None: ...
    async def trades(self, run_id: str) -> pd.DataFrame: ...
    async def equity(self, run_id: str) -> pd.DataFrame: ...


class BacktestSignalSource(Protocol):
    """Signals (mode ``historical``) and instrument facts a backtest needs."""

    async def has_sample_column(self) -> bool: ...
    async def signals(
        self, start: datetime, end: datetime, *, model_version: str | None, oos: bool, mode: str = ...
    ) -> pd.DataFrame: ...
    async def lot_sizes(self, tokens: Sequence[int]) -> dict[int, int]: ...
