"""label_events: drop rules and their counts (labeling.md §5), output columns (§4), weights and meta."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest
import talib

from tickwise.core.labels import DROP_REASONS, LABEL_COLUMNS, LabelSpec, label_both_sides, label_events
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

CandleFactory = Callable[..., pd.DataFrame]


def test_two_sessions_drop_atr_warmup_censored_and_the_last_ten_bars_of_each_session(
    session_candles: CandleFactory,
) -> None:
    candles = session_candles(days=2)
    assert len(candles) == 750
    frame, counts = label_events(candles, LabelSpec(), 1, Timeframe.M1, instrument_token=738561)
    assert counts == {"atr_nan": 14, "warmup": 126, "censored": 10, "session_cross": 10, "missing_bars": 0}
    assert len(frame) + sum(counts.values()) == 750
    local = pd.DatetimeIndex(frame["time"]).tz_convert(IST)
    for day in (date(2025, 1, 6), date(2025, 1, 7)):
        on_day = local[local.date == day]
        assert on_day.max().strftime("%H:%M") == "15:19"
    # Every label ends on its own session day.
    assert np.all(pd.DatetimeIndex(frame["t1_max"]).tz_convert(IST).date == local.date)


def test_output_has_exactly_the_contract_label_columns(session_candles: CandleFactory) -> None:
    candles = session_candles(days=1)
    with_token, _ = label_events(candles, LabelSpec(), -1, "1m", instrument_token=5)
    assert tuple(with_token.columns) == LABEL_COLUMNS
    assert (with_token["instrument_token"] == 5).all()
    assert (with_token["timeframe"] == "1m").all()
    without_token, _ = label_events(candles, LabelSpec(), -1, "1m")
    assert tuple(without_token.columns) == LABEL_COLUMNS[1:]
    assert set(with_token["barrier"]) <= {"pt", "sl", "pt_gap", "sl_gap", "both_sl_first", "vertical"}


def test_a_missing_candle_drops_every_window_that_spans_the_hole(session_candles: CandleFactory) -> None:
    candles = session_candles(days=1).drop(index=200).reset_index(drop=True)
    frame, counts = label_events(candles, LabelSpec(), 1, "1m")
    # The hole now sits between positions 199 and 200: windows starting at 190..199 span it.
    assert counts["missing_bars"] == 10
    hole_windows = candles["time"].iloc[190:200]
    assert not frame["time"].isin(hole_windows).any()
    assert candles["time"].iloc[[189, 200]].isin(frame["time"]).all()


def test_a_nan_candle_drops_every_window_containing_it(session_candles: CandleFactory) -> None:
    candles = session_candles(days=1)
    atr = np.full(len(candles), 0.12)
    candles.loc[250, "close"] = np.nan
    frame, counts = label_events(candles, LabelSpec(), 1, "1m", atr=atr)
    assert counts["missing_bars"] == 11  # t0 = 240 … 250
    assert not frame["time"].isin(candles["time"].iloc[240:251]).any()


def test_a_candle_off_the_session_grid_counts_as_missing(session_candles: CandleFactory) -> None:
    candles = session_candles(days=1)
    candles.loc[300, "time"] = candles.loc[300, "time"] + pd.Timedelta(seconds=30)
    _, counts = label_events(candles, LabelSpec(), 1, "1m", atr=np.full(len(candles), 0.12))
    assert counts["missing_bars"] == 11


def test_calendar_none_switches_session_and_grid_rules_off(session_candles: CandleFactory) -> None:
    candles = session_candles(days=2).drop(index=200).reset_index(drop=True)
    _, counts = label_events(candles, LabelSpec(), 1, "1m", calendar=None)
    assert counts["session_cross"] == 0 and counts["missing_bars"] == 0


def test_five_minute_sessions_lose_their_last_horizon_bars(session_candles: CandleFactory) -> None:
    candles = session_candles(days=5, timeframe=Timeframe.M5)  # 75 bars per session
    spec = LabelSpec(warmup_bars=20)
    frame, counts = label_events(candles, spec, 1, Timeframe.M5)
    assert counts["session_cross"] == 4 * 10
    assert pd.DatetimeIndex(frame["time"]).tz_convert(IST).strftime("%H:%M").max() == "14:35"  # bar 64 of 75


def test_daily_bars_skip_weekends_but_a_missing_trading_day_is_a_hole(walk_candles: CandleFactory) -> None:
    days = NSE.trading_days(date(2024, 1, 1), date(2024, 12, 31))
    times = [NSE.bar_opens(d, Timeframe.D1)[0] for d in days]
    candles = walk_candles(times)
    spec = LabelSpec(warmup_bars=20, horizon=5)
    _, counts = label_events(candles, spec, 1, "1d")
    assert counts["missing_bars"] == 0 and counts["session_cross"] == 0
    _, counts = label_events(candles.drop(index=100).reset_index(drop=True), spec, 1, "1d")
    assert counts["missing_bars"] == 5


def test_atr_is_talib_atr_14_over_the_full_history(session_candles: CandleFactory) -> None:
    candles = session_candles(days=1)
    frame, _ = label_events(candles, LabelSpec(), 1, "1m")
    atr = talib.ATR(*(candles[c].to_numpy() for c in ("high", "low", "close")), timeperiod=14)
    pos = pd.DatetimeIndex(candles["time"]).get_indexer(pd.DatetimeIndex(frame["time"]))
    p0 = candles["close"].to_numpy()[pos]
    sl = (frame["barrier"] == "sl").to_numpy()
    pt = (frame["barrier"] == "pt").to_numpy()
    assert sl.any() and pt.any()
    assert np.array_equal(frame["exit_price"].to_numpy()[sl], p0[sl] - 1.5 * atr[pos][sl])
    assert np.array_equal(frame["exit_price"].to_numpy()[pt], p0[pt] + 2.0 * atr[pos][pt])


def test_weights_sum_to_the_event_count_per_side(session_candles: CandleFactory) -> None:
    frame, counts = label_both_sides(session_candles(days=2), LabelSpec(), "1m", instrument_token=1)
    assert set(counts) == {1, -1} and set(counts[1]) == set(DROP_REASONS)
    for side in (1, -1):
        w = frame.loc[frame["side"] == side, "weight"]
        assert w.sum() == pytest.approx(len(w))
        assert (w >= 0).all()
    assert len(frame[frame["side"] == 1]) == len(frame[frame["side"] == -1]) == 750 - 160


def test_primary_sides_label_only_proposed_events_and_add_meta(session_candles: CandleFactory) -> None:
    candles = session_candles(days=1)
    rng = np.random.default_rng(11)
    primary = rng.choice([-1, 0, 1], size=len(candles))
    spec = LabelSpec(cost_threshold=0.0005)
    frame, counts = label_events(candles, spec, primary, "1m")
    assert tuple(frame.columns) == (*LABEL_COLUMNS[1:], "meta")
    assert len(frame) + sum(counts.values()) == np.count_nonzero(primary)
    pos = pd.DatetimeIndex(candles["time"]).get_indexer(pd.DatetimeIndex(frame["time"]))
    assert np.array_equal(frame["side"].to_numpy(), primary[pos])
    assert np.array_equal(frame["meta"].to_numpy(), (frame["ret"] > 0.0005).to_numpy().astype(int))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.assign(time=c["time"].dt.tz_localize(None)), "tz-aware"),
        (lambda c: c.iloc[::-1].reset_index(drop=True), "strictly increasing"),
        (lambda c: c.drop(columns="low"), "lack columns"),
    ],
)
def test_bad_candles_raise_a_clear_error(session_candles: CandleFactory, mutate, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        label_events(mutate(session_candles(days=1)), LabelSpec(), 1, "1m")


def test_a_side_other_than_plus_or_minus_one_is_rejected(session_candles: CandleFactory) -> None:
    with pytest.raises(ValueError, match="side"):
        label_events(session_candles(days=1), LabelSpec(), 0, "1m")
