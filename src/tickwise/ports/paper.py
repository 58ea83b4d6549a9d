"""Paper trading storage, and the stored ticks a backtest replays to check paper/backtest parity.

Rows cross as frames with the tables' column names, as in :mod:`tickwise.ports.backtests`: positions
with the ``paper_positions`` columns, trades with the ``backtest_trades`` ones (money as ``Decimal``
rupees to the paisa when written; reads return floats).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import pandas as pd

#: ``paper_positions`` columns a position is written with (``closed_at``/``exit_reason`` come at the close)
POSITION_COLUMNS = (
    "instrument_token",
    "side",
    "quantity",
    "entry_time",
    "entry_price",
    "take_profit",
    "stop_loss",
    "horizon_end",
    "signal_time",
    "model_version",
    "confidence",
)

#: ``paper_signals`` columns: each signal exactly as the paper engine was fed it (``TradeSignal``'s fields),
#: the version it acted on, whatever a later re-scoring of its bar wrote to ``signals``
SIGNAL_COLUMNS = (
    "instrument_token",
    "time",
    "available_at",
    "direction",
    "confidence",
    "size",
    "meta_size",
    "model_version",
    "take_profit",
    "stop_loss",
    "horizon_end",
    "lot_size",
)

#: what :meth:`TickPriceSource.tick_prices` returns, in feed order
TICK_PRICE_COLUMNS = ("instrument_token", "time", "received_at", "last_price", "bid", "ask")


class PaperRepository(Protocol):
    async def record(
        self, run_id: str, opened: pd.DataFrame, closed: pd.DataFrame, signals: pd.DataFrame | None = None
    ) -> None:
        """In one transaction: signals just taken (``SIGNAL_COLUMNS``), positions just opened, trades
        just closed (their positions marked closed)."""
        ...

    async def trades(self, run_id: str) -> pd.DataFrame: ...
    async def positions(self, run_id: str) -> pd.DataFrame: ...
    async def close_interrupted(self, run_id: str, at: datetime) -> int:
        """Positions of other sessions still open (their process died): closed at ``at`` with
        ``exit_reason = 'interrupted'`` (no trade: the engine never closed them). Returns how many."""
        ...


class PaperSignalSource(Protocol):
    async def paper_signals(self, run_id: str) -> pd.DataFrame:
        """The signals paper session ``run_id`` acted on (``SIGNAL_COLUMNS``), by ``available_at``."""
        ...


class TickPriceSource(Protocol):
    async def tick_prices(self, tokens: Sequence[int], start: datetime, end: datetime) -> pd.DataFrame:
        """Stored ticks of ``tokens`` with ``start <= time < end``: last price and best bid/ask (NaN
        without depth), ordered by ``time``, ``received_at``, ``instrument_token``."""
        ...
