"""labels.meta from the primary model's proposals (labeling.md §6), on a case computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from tickwise.core.labels import primary_meta_labels

T = pd.date_range("2026-03-02 03:45", periods=4, freq="1min", tz="UTC")


def _labels() -> pd.DataFrame:
    # Bar 0: long +2 %, short -1.5 %; bar 1: long -1.5 %, short +0.1 %; bar 2: long 0.0 (vertical, flat);
    # bar 3: only the long side was labelled (the short one was dropped).
    rows = [
        (T[0], 1, 0.02), (T[0], -1, -0.015),
        (T[1], 1, -0.015), (T[1], -1, 0.001),
        (T[2], 1, 0.0), (T[2], -1, 0.0),
        (T[3], 1, 0.004),
    ]  # fmt: skip
    return pd.DataFrame(
        [{"instrument_token": 7, "timeframe": "1m", "time": t, "side": s, "ret": r} for t, s, r in rows]
    )


def _signals(directions: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"instrument_token": 7, "timeframe": "1m", "time": T, "direction": directions})


def test_meta_label_is_one_where_the_proposed_sides_trade_made_money_and_zero_where_it_lost() -> None:
    # Long at bar 0 (won 2 %), short at bar 1 (won 0.1 %), long at bar 2 (flat: not above 0), short at
    # bar 3 (no short label there: no meta-label).
    meta = primary_meta_labels(_signals([1, -1, 1, -1]), _labels())
    assert meta[["time", "side", "meta"]].values.tolist() == [[T[0], 1, 1], [T[1], -1, 1], [T[2], 1, 0]]


def test_bars_without_a_proposal_get_no_meta_label() -> None:
    meta = primary_meta_labels(_signals([0, 0, 1, 0]), _labels())
    assert meta["time"].tolist() == [T[2]]


def test_the_cost_threshold_turns_a_small_win_into_a_zero() -> None:
    # The short at bar 1 made 0.1 %, below a 0.2 % cost threshold; the long at bar 0 made 2 %.
    meta = primary_meta_labels(_signals([1, -1, 0, 0]), _labels(), cost_threshold=0.002)
    assert meta["meta"].tolist() == [1, 0]


def test_the_side_of_the_proposal_picks_the_label_not_the_other_side() -> None:
    # Short at bar 0 lost 1.5 % although the long side would have won.
    assert primary_meta_labels(_signals([-1, 0, 0, 0]), _labels())["meta"].tolist() == [0]


def test_missing_columns_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="direction"):
        primary_meta_labels(_signals([1, 0, 0, 0]).drop(columns="direction"), _labels())
