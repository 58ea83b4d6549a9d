from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.core.candle_validator import ISSUES, validate_candles
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.frames import candles_to_frame

DAY = date(2025, 1, 6)


def full_session(token: int = 1, day: date = DAY, seed: int = 0) -> list[Candle]:
    rng = np.random.default_rng(seed)
    price = 100.0
    out = []
    for t in NSE.bar_opens(day, Timeframe.M1):
        close = price * float(np.exp(rng.normal(0, 0.001)))
        out.append(
            Candle(
                token, Timeframe.M1, t, price, max(price, close) + 0.05, min(price, close) - 0.05, close, 10
            )
        )
        price = close
    return out


def at(hh: int, mm: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def test_a_clean_full_session_has_no_issues() -> None:
    report = validate_candles(candles_to_frame(full_session()))
    assert report.ok
    assert report.counts == {issue: 0 for issue in ISSUES}
    assert report.total_rows == 375
    assert "no issues" in report.summary()


def test_inconsistent_ohlc_rows_are_reported() -> None:
    frame = candles_to_frame(full_session())
    frame.loc[3, "high"] = frame.loc[3, "low"] - 1
    frame.loc[7, "open"] = frame.loc[7, "high"] + 1
    frame.loc[9, "close"] = 0.0
    frame.loc[11, "volume"] = -5
    frame.loc[13, "low"] = float("nan")
    report = validate_candles(frame, check_gaps=False)
    assert report.counts["ohlc_inconsistent"] == 5
    assert sorted(report.rows["ohlc_inconsistent"].index) == [3, 7, 9, 11, 13]
    assert not report.ok


def test_duplicates_report_every_copy_after_the_first() -> None:
    frame = candles_to_frame(full_session())
    frame = pd.concat([frame, frame.iloc[[5, 5]]], ignore_index=True)
    report = validate_candles(frame)
    assert report.counts["duplicate"] == 2
    assert report.counts["gap"] == 0


def test_bars_outside_market_hours_and_misaligned_bars_are_reported() -> None:
    candles = [
        *full_session()[:10],
        Candle(1, Timeframe.M1, at(9, 10), 100, 100, 100, 100, 1),
        Candle(1, Timeframe.M1, at(15, 30), 100, 100, 100, 100, 1),
        Candle(1, Timeframe.M1, at(10, 0, day=date(2025, 1, 4)), 100, 100, 100, 100, 1),
    ]
    report = validate_candles(candles_to_frame(candles), check_gaps=False)
    assert report.counts["outside_market_hours"] == 3
    hourly = candles_to_frame(
        [
            Candle(1, Timeframe.M60, at(9, 15), 100, 100, 100, 100, 1),
            Candle(1, Timeframe.M60, at(10, 0), 100, 100, 100, 100, 1),
        ]
    )
    report = validate_candles(hourly, check_gaps=False)
    assert report.counts["misaligned"] == 1
    assert report.rows["misaligned"]["time"].iloc[0] == pd.Timestamp(at(10, 0))


def test_a_large_jump_is_flagged_as_a_return_outlier_but_kept() -> None:
    candles = full_session()
    bad = candles[200]
    candles[200] = Candle(1, Timeframe.M1, bad.time, bad.open, bad.close * 1.3, bad.low, bad.close * 1.3, 10)
    frame = candles_to_frame(candles)
    report = validate_candles(frame)
    flagged = report.rows["return_outlier"]["time"].tolist()
    # The jump up and the jump back down are both flagged.
    assert flagged == [pd.Timestamp(candles[200].time), pd.Timestamp(candles[201].time)]
    assert report.total_rows == len(frame)


def test_flat_series_falls_back_to_an_absolute_return_threshold() -> None:
    candles = [
        Candle(1, Timeframe.M1, at(9, 15) + timedelta(minutes=i), 100, 100, 100, 100, 1) for i in range(20)
    ]
    candles[10] = Candle(1, Timeframe.M1, candles[10].time, 100, 110, 100, 110, 1)
    report = validate_candles(candles_to_frame(candles), check_gaps=False)
    assert report.counts["return_outlier"] == 2


def test_missing_minutes_and_missing_sessions_are_gaps() -> None:
    first = full_session(day=date(2025, 1, 6))
    third = full_session(day=date(2025, 1, 8))
    del first[100:103]
    report = validate_candles(candles_to_frame(first + third))
    # three minutes on the 6th plus the whole of the 7th
    assert report.counts["gap"] == 3 + 375
    gaps = report.rows["gap"]
    assert gaps["time"].iloc[0] == pd.Timestamp(at(9, 15) + timedelta(minutes=100))
    assert set(gaps["instrument_token"]) == {1}
    assert report.ok  # gaps alone are expected for illiquid instruments


def test_gaps_are_per_instrument() -> None:
    frame = candles_to_frame(full_session(token=1) + full_session(token=2)[:-1])
    report = validate_candles(frame)
    assert report.rows["gap"][["instrument_token"]].values.ravel().tolist() == [2]


def test_frame_without_token_and_timeframe_columns_is_validated_as_one_minute() -> None:
    frame = candles_to_frame(full_session()).drop(columns=["instrument_token", "timeframe", "source"])
    report = validate_candles(frame)
    assert report.ok
    assert report.counts["gap"] == 0
