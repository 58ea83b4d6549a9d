"""Where a restarted live run resumes: after the newest bar whose candle, features and signal are stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.pipelines.live.resume import resume_cutoff

DAY_OPEN = datetime(2025, 1, 8, 9, 15, tzinfo=IST)
M = timedelta(minutes=1)


def test_nothing_stored_resumes_from_nothing() -> None:
    assert resume_cutoff(None, None, None, NSE) is None


def test_every_output_stored_resumes_after_the_newest_candle() -> None:
    last = DAY_OPEN + 9 * M
    assert resume_cutoff(last, last, last, NSE) == last


def test_a_bar_whose_signal_was_not_written_before_the_crash_is_recomputed() -> None:
    last = DAY_OPEN + 9 * M
    assert resume_cutoff(last, last, last - 2 * M, NSE) == last - 2 * M


def test_a_bar_whose_features_were_not_written_before_the_crash_is_recomputed() -> None:
    last = DAY_OPEN + 9 * M
    assert resume_cutoff(last, last - M, last, NSE) == last - M


def test_a_model_without_any_signal_does_not_hold_the_resume_point_back() -> None:
    last = DAY_OPEN + 9 * M
    assert resume_cutoff(last, last, None, NSE) == last


def test_outputs_missing_since_an_earlier_day_recompute_only_the_newest_day() -> None:
    last = DAY_OPEN + 9 * M
    yesterday = datetime(2025, 1, 7, 15, 29, tzinfo=IST)
    assert resume_cutoff(last, last, yesterday, NSE) == DAY_OPEN - M
    assert resume_cutoff(last, yesterday - timedelta(days=3), last, NSE) == DAY_OPEN - M
