"""Meta-labels (labeling.md §6): did the primary model's proposed trade clear the cost threshold?

The bet sizing of AFML ch. 10 lives with the meta model (``core.meta_model``), which scoring imports
live; it is re-exported here for the label code that used it first.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from tickwise.core.meta_model import bet_size, discretise_bet

__all__ = ["bet_size", "discretise_bet", "meta_labels", "primary_meta_labels"]

_KEY = ["instrument_token", "timeframe", "time"]


def meta_labels(ret: npt.ArrayLike, cost_threshold: float = 0.0) -> npt.NDArray[np.int16]:
    """``1`` where the side-adjusted return beats ``cost_threshold`` (strictly), else ``0``."""
    return (np.asarray(ret, dtype=np.float64) > cost_threshold).astype(np.int16)


def primary_meta_labels(
    signals: pd.DataFrame, labels: pd.DataFrame, cost_threshold: float = 0.0
) -> pd.DataFrame:
    """The meta-label of every bar where the primary model proposed a side.

    ``signals``: ``instrument_token``, ``timeframe``, ``time``, ``direction`` (−1/0/+1) of the primary
    model; ``labels``: the triple-barrier labels of those bars (``side``, ``ret``; both sides or either).
    A bar with direction ``s ≠ 0`` and a label on side ``s`` gets ``meta = 1 if ret_s > cost_threshold``;
    bars without a proposal, or whose side has no label (dropped, labeling.md §5), get none.

    Returns ``instrument_token``, ``timeframe``, ``time``, ``side``, ``meta`` (one row per labelled proposal).
    """
    missing = [c for c in (*_KEY, "direction") if c not in signals.columns]
    missing += [f"labels.{c}" for c in (*_KEY, "side", "ret") if c not in labels.columns]
    if missing:
        raise ValueError(f"meta-labels need columns {missing}")
    fired = signals.loc[signals["direction"] != 0, [*_KEY, "direction"]].rename(columns={"direction": "side"})
    if fired.empty or labels.empty:
        return pd.DataFrame(
            {
                "instrument_token": pd.Series(dtype=np.int64),
                "timeframe": pd.Series(dtype=object),
                "time": pd.Series(dtype="datetime64[ns, UTC]"),
                "side": pd.Series(dtype=np.int16),
                "meta": pd.Series(dtype=np.int16),
            }
        )
    fired = fired.assign(
        time=pd.to_datetime(fired["time"], utc=True),
        side=fired["side"].astype(np.int16),
        instrument_token=fired["instrument_token"].astype(np.int64),
        timeframe=fired["timeframe"].astype(str),
    )
    lab = labels.loc[:, [*_KEY, "side", "ret"]].assign(
        time=pd.to_datetime(labels["time"], utc=True),
        side=labels["side"].astype(np.int16),
        instrument_token=labels["instrument_token"].astype(np.int64),
        timeframe=labels["timeframe"].astype(str),
    )
    joined = fired.merge(lab, on=[*_KEY, "side"], how="inner")
    joined["meta"] = meta_labels(joined["ret"].to_numpy(), cost_threshold)
    return (
        joined.loc[:, [*_KEY, "side", "meta"]]
        .sort_values(["time", "instrument_token"], kind="mergesort")
        .reset_index(drop=True)
    )
