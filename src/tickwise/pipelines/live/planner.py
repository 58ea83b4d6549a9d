"""Repair-window planning: which minutes the live feed cannot be trusted for, and how to replay them.

Pure functions over immutable values (no I/O, no clock), so every rule here is property-tested
(``tests/unit/live/test_repair_planner.py``):

* A **window** is an inclusive range of whole minutes ``(start, end)`` to backfill through REST. Windows
  are kept sorted and merged: :func:`add_window` merges overlapping and adjacent ranges and starts a
  window at its first session minute (:func:`first_session_minute`); minutes with no session are never
  repaired.
* :func:`subtract` removes a repaired range (a window that grew while it was fetched keeps its later
  part).
* :func:`replay_plan` decides, for one instrument, what a repaired range changes: the REST bars replace
  the feed's bars inside the range; bars held behind the window are released (or stay held behind the
  next window); and if REST contradicts a bar already processed (or lacks one that was), the instrument
  is rewound from the first wrong bar and the corrected sequence is replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwise.domain.bar import Bar
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.time import IST

MINUTE = timedelta(minutes=1)
Window = tuple[datetime, datetime]  # inclusive range of minute open instants, IST


def minute_of(t: datetime) -> datetime:
    """The open instant (IST) of the minute containing ``t``."""
    return t.astimezone(IST).replace(second=0, microsecond=0)


def first_session_minute(calendar: SessionCalendar, start: datetime) -> datetime | None:
    """The first session minute at or after ``start`` (looking at most 30 trading days ahead)."""
    day = start.date()
    s = start
    for _ in range(30):
        if calendar.is_trading_day(day):
            open_, close = calendar.session_open(day), calendar.session_close(day)
            if s < close:
                return max(s, open_)
        day = calendar.next_trading_day(day)
        s = calendar.session_open(day)
    return None


def add_window(
    windows: Sequence[Window], start: datetime, end: datetime, calendar: SessionCalendar
) -> tuple[Window, ...]:
    """``windows`` plus the minutes ``[minute(start), minute(end)]``, merged and sorted.

    The new range starts at its first session minute; a range with no session minute adds nothing.
    Ranges that overlap or touch (one minute apart) become one window.
    """
    s, e = minute_of(start), minute_of(end)
    if e < s:
        return tuple(windows)
    first = first_session_minute(calendar, s)
    if first is None or first > e:
        return tuple(windows)
    merged = (first, e)
    rest = []
    for w in windows:
        if w[0] <= merged[1] + MINUTE and merged[0] <= w[1] + MINUTE:
            merged = (min(w[0], merged[0]), max(w[1], merged[1]))
        else:
            rest.append(w)
    rest.append(merged)
    return tuple(sorted(rest))


def subtract(windows: Sequence[Window], start: datetime, end: datetime) -> tuple[Window, ...]:
    """``windows`` without the minutes ``[start, end]``.

    A window that grew while ``[start, end]`` was fetched keeps its other minutes: the later part, and
    an earlier part when a mark reached back before ``start`` meanwhile.
    """
    remaining = []
    for w in windows:
        if w[1] < start or w[0] > end:
            remaining.append(w)
            continue
        if w[0] < start:
            remaining.append((w[0], start - MINUTE))
        if w[1] > end:
            remaining.append((end + MINUTE, w[1]))
    return tuple(sorted(remaining))


def clip(windows: Sequence[Window], last: datetime) -> tuple[Window, ...]:
    """``windows`` without the minutes after ``last`` (minutes outside the run are not repaired)."""
    out = []
    for s, e in windows:
        if s <= last:
            out.append((s, min(e, last)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class HeldBar:
    """A closed bar waiting behind a repair window, with the real instant it closed (unix seconds)."""

    bar: Bar
    closed_at: float


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What to do with one instrument once the range ``[start, end]`` is repaired.

    Either ``rewind_from`` is set (re-open the instrument before that instant and replay ``rewind``,
    the full corrected sequence from there on, possibly empty) or ``process`` lists the bars to fold
    in, in order. ``held`` stays behind the next window; ``repaired`` counts the REST bars that take
    effect.
    """

    rewind_from: datetime | None
    rewind: tuple[Bar, ...]
    process: tuple[HeldBar, ...]
    held: tuple[HeldBar, ...]
    repaired: int


def replay_plan(
    start: datetime,
    end: datetime,
    rest_bars: Sequence[Bar],
    held: Sequence[HeldBar],
    processed: Sequence[Bar],
    last: datetime | None,
    next_start: datetime | None,
    closed_at: float,
) -> ReplayPlan:
    """Plan the replay of one instrument after the REST backfill of ``[start, end]``.

    ``rest_bars``: the REST bars inside the range, in time order; ``held``: the instrument's bars held
    behind windows; ``processed``: its bars already folded in this session and ``last`` the newest
    folded-in instant (history included); ``next_start``: the start of the next window still pending;
    ``closed_at``: the instant stamped on repaired bars.
    """
    keep: list[HeldBar] = []
    release: list[HeldBar] = []
    for h in held:
        if start <= h.bar.time <= end:
            continue  # replaced by the REST bar
        if next_start is not None and h.bar.time >= next_start:
            keep.append(h)
        else:
            release.append(h)
    done = {b.time: b for b in processed}
    # Bars already processed that REST contradicts, or lacks: rewind from the first of them.
    bad: list[datetime] = []
    if last is not None:
        for b in rest_bars:
            if b.time <= last:
                mine = done.get(b.time)
                if mine is None or not mine.same_trades(b):
                    bad.append(b.time)
                    break
        rest_times = {b.time for b in rest_bars}
        bad += [t for t in done if start <= t <= end and t not in rest_times]
    first_bad = min(bad, default=None)
    if first_bad is not None:
        fixed = [b for b in rest_bars if b.time >= first_bad]
        later = [b for b in processed if b.time > end]
        seq = sorted([*fixed, *later, *(h.bar for h in release)], key=lambda b: b.time)
        return ReplayPlan(first_bad, tuple(seq), (), tuple(keep), len(fixed))
    new = [HeldBar(b, closed_at) for b in rest_bars if last is None or b.time > last]
    process = sorted([*new, *release], key=lambda h: h.bar.time)
    return ReplayPlan(None, (), tuple(process), tuple(keep), len(new))
