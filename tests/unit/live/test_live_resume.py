"""Where a restarted live run resumes: after the newest bar whose candle, features and signal are stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.pipelines.live.resume import day_cutoff, first_hole, resume_cutoff

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


def test_stored_bars_without_a_hole_since_the_open_have_no_hole() -> None:
    assert first_hole([DAY_OPEN + i * M for i in range(10)], DAY_OPEN) is None


def test_a_minute_missing_between_stored_bars_is_a_hole() -> None:
    times = [DAY_OPEN + i * M for i in range(10) if i not in (4, 5)]
    assert first_hole(times, DAY_OPEN) == DAY_OPEN + 4 * M


def test_bars_of_earlier_days_do_not_count_as_holes_but_a_missing_open_does() -> None:
    yesterday = [DAY_OPEN - timedelta(days=1) + i * M for i in range(3)]
    assert first_hole([*yesterday, DAY_OPEN + 2 * M], DAY_OPEN) == DAY_OPEN


def test_a_restart_resumes_before_the_first_hole_or_open_repair_window() -> None:
    cutoff = DAY_OPEN + 20 * M
    assert day_cutoff(cutoff, [None], []) == cutoff
    assert day_cutoff(cutoff, [DAY_OPEN + 9 * M], []) == DAY_OPEN + 8 * M
    assert day_cutoff(cutoff, [None], [(DAY_OPEN + 5 * M, DAY_OPEN + 7 * M)]) == DAY_OPEN + 4 * M
    assert day_cutoff(DAY_OPEN + 3 * M, [DAY_OPEN + 9 * M], []) == DAY_OPEN + 3 * M
    assert day_cutoff(None, [DAY_OPEN], []) is None
