"""The columns of one recorded trade: the contract's ``backtest_trades`` (and ``paper_trades``) without
``run_id``, in table order. The trade engine's metrics, the backtest and paper pipelines and the
repository all name a trade's fields through this one tuple."""

from __future__ import annotations

TRADE_RECORD_COLUMNS: tuple[str, ...] = (
    "instrument_token",
    "side",
    "quantity",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "exit_reason",
    "gross",
    "brokerage",
    "stt",
    "exchange",
    "sebi",
    "stamp",
    "gst",
    "slippage",
    "net",
    "signal_time",
    "model_version",
    "confidence",
)
