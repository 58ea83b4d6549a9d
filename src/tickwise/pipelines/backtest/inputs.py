"""Frames -> engine inputs: signals with their barrier levels, and 1-minute bars as price events."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from tickwise.core.trading import PriceEvent, TradeSignal, barrier_signal


@dataclass(frozen=True, slots=True)
class BarrierSpec:
    """The label spec a model was trained with: its trades exit where its labels did."""

    k_pt: float = 2.0
    k_sl: float = 1.5
    horizon: int = 10
    atr_period: int = 14

    @classmethod
    def of(cls, label_spec: Mapping[str, object] | None, default: BarrierSpec) -> BarrierSpec:
        if not label_spec:
            return default

        def num(key: str, fallback: float) -> float:
            value = label_spec.get(key)
            return float(value) if isinstance(value, int | float) else fallback

        return cls(
            k_pt=num("k_pt", default.k_pt),
            k_sl=num("k_sl", default.k_sl),
            horizon=int(num("horizon", default.horizon)),
            atr_period=int(num("atr_period", default.atr_period)),
        )

    def as_dict(self) -> dict[str, float | int]:
        return {"k_pt": self.k_pt, "k_sl": self.k_sl, "horizon": self.horizon, "atr_period": self.atr_period}


def trade_signals(
    signals: pd.DataFrame,
    levels: pd.DataFrame,
    spec: BarrierSpec,
    bar: timedelta,
    lot_size: int,
    model_label: str | None = None,
) -> tuple[list[TradeSignal], int]:
    """One instrument's signals (rows aligned with ``levels``) -> trade signals; also the count dropped
    for lack of a signal-bar candle or a usable ATR (warm-up)."""
    out: list[TradeSignal] = []
    dropped = 0
    closes = levels["close"].to_numpy(dtype=np.float64)
    atrs = levels["atr"].to_numpy(dtype=np.float64)
    # Plain Python values up front: boxing a pandas Timestamp per row costs more than the engine's work.
    times = pd.DatetimeIndex(pd.to_datetime(signals["time"], utc=True)).to_pydatetime()
    available = pd.DatetimeIndex(pd.to_datetime(signals["available_at"], utc=True)).to_pydatetime()
    tokens = signals["instrument_token"].to_numpy(dtype=np.int64).tolist()
    directions = signals["direction"].to_numpy(dtype=np.int64).tolist()
    confidences = signals["confidence"].to_numpy(dtype=np.float64).tolist()
    sizes = signals["size"].to_numpy(dtype=np.float64).tolist()
    # Signals stored before meta-labeling (or a frame without the column) carry no meta size.
    metas = (
        signals["meta_size"].to_numpy(dtype=np.float64).tolist()
        if "meta_size" in signals.columns
        else [math.nan] * len(signals)
    )
    versions = signals["model_version"].astype(str).tolist()
    for i in range(len(signals)):
        close, atr = closes[i], atrs[i]
        if not (math.isfinite(close) and math.isfinite(atr) and atr > 0):
            dropped += 1
            continue
        size = sizes[i]
        out.append(
            barrier_signal(
                instrument_token=tokens[i],
                time=times[i],
                available_at=available[i],
                direction=directions[i],
                confidence=confidences[i],
                size=size if math.isfinite(size) else None,
                model_version=model_label or versions[i],
                reference_close=float(close),
                atr=float(atr),
                k_pt=spec.k_pt,
                k_sl=spec.k_sl,
                horizon_bars=spec.horizon,
                bar=bar,
                lot_size=lot_size,
                meta_size=metas[i],
            )
        )
    return out, dropped


def recorded_signals(recorded: pd.DataFrame) -> list[TradeSignal]:
    """The signals a paper session acted on (``ports.paper.SIGNAL_COLUMNS``, as ``paper_signals`` holds
    them) -> the very trade signals its engine was fed: levels, size, meta size and lot as recorded,
    nothing rebuilt from the (possibly repaired since) candles or re-scored signals."""
    if recorded.empty:
        return []
    times = pd.DatetimeIndex(pd.to_datetime(recorded["time"], utc=True)).to_pydatetime()
    available = pd.DatetimeIndex(pd.to_datetime(recorded["available_at"], utc=True)).to_pydatetime()
    horizons = pd.DatetimeIndex(pd.to_datetime(recorded["horizon_end"], utc=True)).to_pydatetime()

    def optional(column: str) -> list[float | None]:
        values = pd.to_numeric(recorded[column], errors="coerce").to_numpy(dtype=np.float64).tolist()
        return [v if math.isfinite(v) else None for v in values]

    sizes, metas = optional("size"), optional("meta_size")
    return [
        TradeSignal(
            instrument_token=int(row.instrument_token),
            time=times[i],
            available_at=available[i],
            direction=int(row.direction),
            confidence=float(row.confidence),
            size=sizes[i],
            model_version=str(row.model_version),
            take_profit=float(row.take_profit),
            stop_loss=float(row.stop_loss),
            horizon_end=horizons[i],
            lot_size=int(row.lot_size),
            meta_size=metas[i],
        )
        for i, row in enumerate(recorded.itertuples(index=False))
    ]


def tick_events(ticks: pd.DataFrame) -> Iterator[PriceEvent]:
    """Stored ticks (``TICK_PRICE_COLUMNS``, in feed order) -> tick events, best bid/ask when recorded:
    the prices a paper session fed its engine."""
    if ticks.empty:
        return
    times = pd.DatetimeIndex(pd.to_datetime(ticks["time"], utc=True)).to_pydatetime()
    tokens = ticks["instrument_token"].to_numpy(dtype=np.int64)
    prices, bids, asks = (ticks[c].to_numpy(dtype=np.float64) for c in ("last_price", "bid", "ask"))
    for i in range(len(ticks)):
        bid, ask = float(bids[i]), float(asks[i])
        both = math.isfinite(bid) and math.isfinite(ask)
        yield PriceEvent.tick(
            int(tokens[i]), times[i], float(prices[i]), bid=bid if both else None, ask=ask if both else None
        )


def price_events(bars: pd.DataFrame) -> Iterator[PriceEvent]:
    """1-minute candles of several instruments -> bar events in (time, instrument) order."""
    if bars.empty:
        return
    ordered = bars.sort_values(["time", "instrument_token"], kind="stable")
    times = pd.DatetimeIndex(pd.to_datetime(ordered["time"], utc=True)).to_pydatetime()
    tokens = ordered["instrument_token"].to_numpy(dtype=np.int64)
    o, h, lo, c = (ordered[col].to_numpy(dtype=np.float64) for col in ("open", "high", "low", "close"))
    for i in range(len(ordered)):
        yield PriceEvent.bar(int(tokens[i]), times[i], float(o[i]), float(h[i]), float(lo[i]), float(c[i]))
