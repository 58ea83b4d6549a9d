"""Out-of-sample metrics: classification quality per side and the P&L of following the signals net of
Zerodha's equity-intraday charges.

Cost model (Zerodha equity intraday, NSE, as published on zerodha.com/charges; rates are parameters):

| charge | rate |
|---|---|
| brokerage | min(0.03 % of order value, Rs 20) per executed order |
| STT | 0.025 % of the sell value |
| exchange transaction charge (NSE) | 0.00297 % of turnover |
| SEBI turnover fee | Rs 10 per crore (0.0001 %) of turnover |
| stamp duty | 0.003 % of the buy value |
| GST | 18 % of (brokerage + exchange charge + SEBI fee) |

"Following the signals" means: every bar with direction ±1 opens one trade of ``notional`` rupees at
the bar's close on that side and closes it where the side's triple-barrier label closed it
(``exit_price``), so the gross return is the label's ``ret``. Trades may overlap; each is counted on its
own (a simple, documented measure, not a portfolio backtest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class ZerodhaIntradayCosts:
    notional: float = 100_000.0
    brokerage_rate: float = 0.0003
    brokerage_cap: float = 20.0
    stt_sell_rate: float = 0.00025
    exchange_rate: float = 0.0000297
    sebi_rate: float = 0.000001
    stamp_buy_rate: float = 0.00003
    gst_rate: float = 0.18

    def round_trip(self, side: np.ndarray, entry_price: np.ndarray, exit_price: np.ndarray) -> np.ndarray:
        """Total charges of each round trip as a fraction of the entry notional."""
        side = np.asarray(side, dtype=np.float64)
        entry = np.asarray(entry_price, dtype=np.float64)
        exit_ = np.asarray(exit_price, dtype=np.float64)
        qty = self.notional / entry
        entry_value = qty * entry
        exit_value = qty * exit_
        buy_value = np.where(side > 0, entry_value, exit_value)
        sell_value = np.where(side > 0, exit_value, entry_value)
        brokerage = np.minimum(self.brokerage_rate * buy_value, self.brokerage_cap) + np.minimum(
            self.brokerage_rate * sell_value, self.brokerage_cap
        )
        turnover = buy_value + sell_value
        exchange = self.exchange_rate * turnover
        sebi = self.sebi_rate * turnover
        stt = self.stt_sell_rate * sell_value
        stamp = self.stamp_buy_rate * buy_value
        gst = self.gst_rate * (brokerage + exchange + sebi)
        return (brokerage + exchange + sebi + stt + stamp + gst) / entry_value


def log_loss(y: np.ndarray, p: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Binary cross-entropy (natural log), optionally weighted; probabilities clipped to [1e-15, 1 - 1e-15]."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    if len(losses) == 0:
        return float("nan")
    return float(np.average(losses, weights=weight))


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney with average ranks for ties); NaN when one class is absent."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    # Average ranks over ties (1-based).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_at(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """Share of positives among rows with ``p >= threshold``; NaN when no row passes."""
    chosen = np.asarray(p) >= threshold
    if not chosen.any():
        return float("nan")
    return float(np.asarray(y)[chosen].mean())


def side_metrics(
    y: np.ndarray, p: np.ndarray, threshold: float, weight: np.ndarray | None = None
) -> dict[str, float]:
    """log-loss, AUC, precision at the signal threshold, base rate and count for one side."""
    return {
        "logloss": log_loss(y, p, weight),
        "auc": roc_auc(y, p),
        "precision": precision_at(y, p, threshold),
        "base_rate": float(np.mean(y)) if len(y) else float("nan"),
        "n": float(len(y)),
    }


@dataclass(frozen=True)
class TradeOutcomes:
    """Per bar: what a long and a short trade opened at the bar's close would have returned (labels)."""

    entry_price: np.ndarray
    long_ret: np.ndarray
    long_exit: np.ndarray
    long_win: np.ndarray  # long label == +1
    short_ret: np.ndarray
    short_exit: np.ndarray
    short_win: np.ndarray  # short label == +1


def signal_pnl(
    direction: np.ndarray, outcomes: TradeOutcomes, costs: ZerodhaIntradayCosts | None = None
) -> dict[str, float]:
    """P&L of following ``direction`` per bar (see module doc): counts, precision per direction, mean
    gross and net return per trade, total net return (sum over trades, in units of the notional) and rupees."""
    costs = costs or ZerodhaIntradayCosts()
    direction = np.asarray(direction)
    longs = direction == 1
    shorts = direction == -1
    out: dict[str, float] = {
        "trades": float(longs.sum() + shorts.sum()),
        "long_trades": float(longs.sum()),
        "short_trades": float(shorts.sum()),
        "precision_long": float(outcomes.long_win[longs].mean()) if longs.any() else float("nan"),
        "precision_short": float(outcomes.short_win[shorts].mean()) if shorts.any() else float("nan"),
    }
    gross = np.concatenate([outcomes.long_ret[longs], outcomes.short_ret[shorts]])
    side = np.concatenate([np.ones(longs.sum()), -np.ones(shorts.sum())])
    entry = np.concatenate([outcomes.entry_price[longs], outcomes.entry_price[shorts]])
    exit_ = np.concatenate([outcomes.long_exit[longs], outcomes.short_exit[shorts]])
    cost = costs.round_trip(side, entry, exit_) if len(gross) else np.zeros(0)
    net = gross - cost
    out["gross_ret_mean"] = float(gross.mean()) if len(gross) else 0.0
    out["cost_mean"] = float(cost.mean()) if len(cost) else 0.0
    out["net_ret_mean"] = float(net.mean()) if len(net) else 0.0
    out["net_ret_total"] = float(net.sum())
    out["net_pnl_inr"] = float(net.sum() * costs.notional)
    out["hit_rate_net"] = float((net > 0).mean()) if len(net) else float("nan")
    return out


def mean_metrics(folds: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over folds of every numeric metric (NaNs ignored), keys prefixed ``oos_``."""
    keys = sorted({k for fold in folds for k, v in fold.items() if isinstance(v, (int, float))})
    out = {}
    for key in keys:
        values = np.array([float(f[key]) for f in folds if key in f], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[f"oos_{key}"] = float(finite.mean()) if len(finite) else float("nan")
    return out
