"""Properties of the repair-window planner: merge, subtract, first session minute, replay plan."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.planner import (
    MINUTE,
    HeldBar,
    Window,
    add_window,
    clip,
    first_session_minute,
    replay_plan,
    subtract,
)

OPEN = datetime(2026, 3, 2, 9, 15, tzinfo=IST)
CLOSE = datetime(2026, 3, 2, 15, 30, tzinfo=IST)
TOKEN = 7

# Instants from an hour before the open to after the close, seconds included.
instants = st.integers(-3600, 7 * 3600).map(lambda s: OPEN + timedelta(seconds=s))
minutes = st.integers(0, 40).map(lambda m: OPEN + m * MINUTE)


def covered(windows: tuple[Window, ...] | list[Window]) -> set[datetime]:
    out = set()
    for s, e in windows:
        t = s
        while t <= e:
            out.add(t)
            t += MINUTE
    return out


def session_minutes(start: datetime, end: datetime) -> set[datetime]:
    s = start.astimezone(IST).replace(second=0, microsecond=0)
    e = end.astimezone(IST).replace(second=0, microsecond=0)
    out = set()
    t = s
    while t <= e:
        if OPEN <= t < CLOSE:
            out.add(t)
        t += MINUTE
    return out


def well_formed(windows: tuple[Window, ...]) -> bool:
    ordered = all(s <= e for s, e in windows)
    apart = all(a[1] + MINUTE < b[0] for a, b in pairwise(windows))
    return ordered and apart


@settings(max_examples=150, deadline=None)
@given(marks=st.lists(st.tuples(instants, instants), max_size=8))
def test_added_windows_stay_merged_sorted_and_cover_exactly_the_marked_session_minutes(
    marks: list[tuple[datetime, datetime]],
) -> None:
    windows: tuple[Window, ...] = ()
    expected: set[datetime] = set()
    for start, end in marks:
        windows = add_window(windows, start, end, NSE)
        expected |= session_minutes(start, end)
        assert well_formed(windows)
    # Merging may only bridge a one-minute hole between adjacent ranges: nothing else is added.
    got = covered(windows)
    assert expected <= got
    assert all(t - MINUTE in got or t in expected for t in got - expected)
    assert all(t >= OPEN for t in got)


@settings(max_examples=150, deadline=None)
@given(
    marks=st.lists(st.tuples(minutes, minutes).map(sorted), max_size=6),
    cut=st.tuples(minutes, minutes).map(sorted),
)
def test_subtracting_a_repaired_range_leaves_exactly_the_other_minutes(
    marks: list[list[datetime]], cut: list[datetime]
) -> None:
    windows: tuple[Window, ...] = ()
    for s, e in marks:
        windows = add_window(windows, s, e, NSE)
    s, e = cut
    left = subtract(windows, s, e)
    assert covered(left) == {t for t in covered(windows) if not s <= t <= e}
    assert left == tuple(sorted(left))


@settings(max_examples=100, deadline=None)
@given(marks=st.lists(st.tuples(minutes, minutes).map(sorted), max_size=6), last=minutes)
def test_clipping_forgets_only_the_minutes_after_the_last_one(
    marks: list[list[datetime]], last: datetime
) -> None:
    windows: tuple[Window, ...] = ()
    for s, e in marks:
        windows = add_window(windows, s, e, NSE)
    assert covered(clip(windows, last)) == {t for t in covered(windows) if t <= last}


@settings(max_examples=150, deadline=None)
@given(start=st.integers(-3 * 24 * 60, 6 * 24 * 60).map(lambda m: OPEN + m * MINUTE))
def test_the_first_session_minute_is_the_earliest_session_minute_not_before_the_start(
    start: datetime,
) -> None:
    first = first_session_minute(NSE, start)
    assert first is not None and first >= start
    assert NSE.is_trading_day(first.date())
    assert NSE.session_open(first.date()) <= first < NSE.session_close(first.date())
    # No session minute lies between the start and the answer.
    t = start
    while t < first:
        assert not (NSE.is_trading_day(t.date()) and NSE.is_open(t))
        t += MINUTE if t.date() == first.date() else timedelta(hours=1)


def bar(minute: int, price: float) -> Bar:
    t = OPEN + minute * MINUTE
    return Bar(Candle(TOKEN, Timeframe.M1, t, price, price + 1, price - 1, price, 100, None, "live"))


prices = st.sampled_from([100.0, 101.0])


@st.composite
def repair_cases(draw: st.DrawFn) -> tuple[int, int, list[Bar], list[HeldBar], list[Bar], int | None]:
    """A window [s, e], the REST bars in it, the bars held behind it and the bars already processed."""
    n_processed = draw(st.integers(0, 20))
    done = sorted(draw(st.sets(st.integers(0, 30), max_size=n_processed)))
    processed = [bar(m, draw(prices)) for m in done]
    last = done[-1] if done else None
    s = draw(st.integers(0, 30))
    e = draw(st.integers(s, 35))
    rest = [bar(m, draw(prices)) for m in sorted(draw(st.sets(st.integers(s, e))))]
    after = (last + 1) if last is not None else 0
    held_minutes = sorted(draw(st.sets(st.integers(max(after, s), 40), max_size=8)))
    held = [HeldBar(bar(m, draw(prices)), 1.0) for m in held_minutes]
    next_start = draw(st.none() | st.integers(e + 2, 45))
    return s, e, rest, held, processed, next_start


def replay(
    processed: list[Bar], since: datetime | None, plan_rewind: tuple[Bar, ...], plan_process: list[Bar]
) -> list[Bar]:
    """What the engine ends up with: rewind truncates and replays; process appends newer bars."""
    out = list(processed)
    if since is not None:
        out = [b for b in out if b.time < since]
    for b in [*plan_rewind, *plan_process]:
        if not out or b.time > out[-1].time:
            out.append(b)
    return out


@settings(max_examples=300, deadline=None)
@given(case=repair_cases())
def test_a_replay_plan_leaves_the_rest_bars_inside_the_window_and_everything_else_in_order(
    case: tuple[int, int, list[Bar], list[HeldBar], list[Bar], int | None],
) -> None:
    s_m, e_m, rest, held, processed, next_m = case
    s, e = OPEN + s_m * MINUTE, OPEN + e_m * MINUTE
    next_start = OPEN + next_m * MINUTE if next_m is not None else None
    last = processed[-1].time if processed else None
    plan = replay_plan(s, e, rest, held, processed, last, next_start, 2.0)
    assert plan.rewind_from is None or not plan.process

    final = replay(processed, plan.rewind_from, plan.rewind, [h.bar for h in plan.process])
    released = [
        h.bar for h in held if not s <= h.bar.time <= e and (next_start is None or h.bar.time < next_start)
    ]
    expected = sorted(
        [*(b for b in processed if not s <= b.time <= e), *rest, *released], key=lambda b: b.time
    )
    assert [(b.time, b.close) for b in final] == [(b.time, b.close) for b in expected]
    # Bars behind the next window stay held, untouched.
    assert [h.bar for h in plan.held] == [
        h.bar
        for h in held
        if next_start is not None and h.bar.time >= next_start and not s <= h.bar.time <= e
    ]
    # A processed bar is only replaced when REST disagrees with it (or lacks it).
    if plan.rewind_from is None:
        assert all(b.time > (last or s - MINUTE) for b in (h.bar for h in plan.process))
