"""Trading performance by regime state at entry (the backtest report's regime section)."""

from __future__ import annotations

import numpy as np
import pandas as pd

UNKNOWN = "unknown"  # trades whose entry bar has no regime (a model without a layer, warm-up bars)


def performance_by_regime(trades: pd.DataFrame, states: np.ndarray) -> pd.DataFrame:
    """Per regime state at entry: ``trades``, ``hit_rate`` (share with net > 0), ``net`` (sum) and
    ``net_per_trade``; one row per state seen, in state order, then ``unknown`` when some trades have no
    state. ``states``: one value per trade row (float, NaN = unknown)."""
    states = np.asarray(states, dtype=np.float64)
    if len(states) != len(trades):
        raise ValueError(f"{len(states)} regime states for {len(trades)} trades")
    net = trades["net"].to_numpy(dtype=np.float64) if len(trades) else np.empty(0)
    labels = np.where(np.isnan(states), -1, states).astype(np.int64)
    rows = []
    for state in sorted(set(labels.tolist())):
        mask = labels == state
        n = int(mask.sum())
        total = float(net[mask].sum())
        rows.append(
            {
                "regime_state": UNKNOWN if state < 0 else str(state),
                "trades": n,
                "hit_rate": float((net[mask] > 0).mean()),
                "net": total,
                "net_per_trade": total / n,
            }
        )
    if rows and rows[0]["regime_state"] == UNKNOWN:
        rows.append(rows.pop(0))
    return pd.DataFrame(rows, columns=["regime_state", "trades", "hit_rate", "net", "net_per_trade"])
