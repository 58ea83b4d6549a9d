"""The walk-forward schedule: fold models score only bars after their training labels plus the embargo,
and the score windows tile the scored range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.walk_forward import WalkForwardSpec, assign_steps, walk_forward_schedule

MINUTE = pd.Timedelta(minutes=1)


def _timeline(
    bars_per_session: list[int], horizons: list[int]
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex, pd.DatetimeIndex]:
    """Sessions of 1m bars from 09:15 IST; one event per bar whose label ends within its session."""
    bars: list[pd.Timestamp] = []
    t0: list[pd.Timestamp] = []
    t1: list[pd.Timestamp] = []
    day = pd.Timestamp("2026-01-05 09:15", tz="Asia/Kolkata")
    k = 0
    for n in bars_per_session:
        session = [day + i * MINUTE for i in range(n)]
        bars += session
        for i, t in enumerate(session):
            h = horizons[k % len(horizons)]
            k += 1
            if i + h < n:  # labels never cross a session (labeling.md §5)
                t0.append(t)
                t1.append(session[i + h])
        day += pd.Timedelta(days=1)
    return _utc(bars), _utc(t0), _utc(t1)


def _utc(times: list[pd.Timestamp]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(times, dtype="datetime64[ns, Asia/Kolkata]").tz_convert("UTC")


specs = st.builds(
    WalkForwardSpec,
    refit_every=st.integers(1, 4),
    min_train_sessions=st.integers(1, 4),
    window=st.sampled_from(["expanding", "rolling"]),
    train_sessions=st.integers(1, 3),
    embargo=st.integers(0, 30).map(lambda m: pd.Timedelta(minutes=m)),
    min_train_events=st.integers(1, 40),
)


@settings(max_examples=150, deadline=None)
@given(
    bars_per_session=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    horizons=st.lists(st.integers(1, 8), min_size=1, max_size=5),
    spec=specs,
)
def test_score_windows_never_reach_into_training_labels_plus_embargo_and_tile_the_scored_range(
    bars_per_session: list[int], horizons: list[int], spec: WalkForwardSpec
) -> None:
    bars, t0, t1 = _timeline(bars_per_session, horizons)
    steps = walk_forward_schedule(bars, t0, t1, spec)
    owner = assign_steps(bars, steps)
    for k, step in enumerate(steps):
        scored = bars[step.scores(bars)]
        assert len(scored) > 0, "every step scores at least one bar"
        assert len(step.train_idx) >= spec.min_train_events
        assert t1[step.train_idx].max() == step.trained_to
        # no scored bar lies inside [t0, t1 + embargo] of any training event
        assert scored.min() > step.trained_to + spec.embargo
        assert (t0[step.train_idx] < scored.min()).all()
        assert (owner[step.scores(bars)] == k).all()
        if k + 1 < len(steps):
            assert step.score_to == steps[k + 1].score_from
            assert step.trained_to <= steps[k + 1].trained_to
        else:
            assert step.score_to is None
    if steps:
        # tiling: every bar from the first scored bar on has exactly one owner, earlier bars none
        first = steps[0].score_from
        assert (owner[bars >= first] >= 0).all()
        assert (owner[bars < first] == -1).all()
        counts = np.sum([step.scores(bars).astype(int) for step in steps], axis=0)
        assert set(np.unique(counts[bars >= first]).tolist()) == {1}
    else:
        assert (owner == -1).all()


def test_expanding_schedule_refits_every_n_sessions_from_the_minimum_training_window() -> None:
    bars, t0, t1 = _timeline([20] * 10, [3])
    spec = WalkForwardSpec(
        refit_every=3, min_train_sessions=4, embargo=pd.Timedelta(minutes=5), min_train_events=1
    )
    steps = walk_forward_schedule(bars, t0, t1, spec)
    ist_days = [s.score_from.tz_convert("Asia/Kolkata").strftime("%m-%d %H:%M") for s in steps]
    assert ist_days == ["01-09 09:15", "01-12 09:15"]  # sessions 4 and 7 of 0..9
    assert all(s.trained_from == t0.min() for s in steps)
    assert [len(s.train_idx) for s in steps] == [4 * 17, 7 * 17]


def test_rolling_schedule_trains_only_on_the_last_sessions() -> None:
    bars, t0, t1 = _timeline([20] * 8, [3])
    spec = WalkForwardSpec(
        refit_every=2, min_train_sessions=3, window="rolling", train_sessions=2, min_train_events=1
    )
    steps = walk_forward_schedule(bars, t0, t1, spec)
    assert [len(s.train_idx) for s in steps] == [2 * 17] * len(steps)
    assert steps[1].trained_from > steps[0].trained_from


def test_steps_with_too_few_training_events_are_skipped() -> None:
    bars, t0, t1 = _timeline([5, 5, 30, 30], [2])
    spec = WalkForwardSpec(refit_every=1, min_train_sessions=1, min_train_events=10)
    steps = walk_forward_schedule(bars, t0, t1, spec)
    assert steps and steps[0].score_from.tz_convert("Asia/Kolkata").day == 8
    assert len(steps[0].train_idx) >= 10


def test_an_embargo_longer_than_the_night_moves_the_first_scored_bar_into_the_session() -> None:
    bars, t0, t1 = _timeline([30, 30], [2])
    spec = WalkForwardSpec(
        refit_every=1, min_train_sessions=1, embargo=pd.Timedelta(hours=23, minutes=50), min_train_events=1
    )
    (step,) = walk_forward_schedule(bars, t0, t1, spec)
    assert step.score_from > step.trained_to + pd.Timedelta(hours=23, minutes=50)
    assert step.score_from.tz_convert("Asia/Kolkata").strftime("%H:%M") == "09:35"


def test_invalid_specs_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="refit_every"):
        WalkForwardSpec(refit_every=0)
    with pytest.raises(ValueError, match="train_sessions"):
        WalkForwardSpec(window="rolling")
    with pytest.raises(ValueError, match="tz-aware"):
        walk_forward_schedule(pd.DatetimeIndex(["2026-01-05 09:15"]), [], [], WalkForwardSpec())
