"""Where a live run resumes after a crash: the newest bar whose every output is stored.

The writer flushes candles, features and signals independently, so a process killed mid-session can
leave a bar whose candle is stored but whose feature row or signal is not. Resuming after the newest
stored *candle* would then skip those outputs forever. A restart therefore resumes after the newest bar
for which the candle, the feature row and (when the model has written any that day) the signal all
exist (the signal only if the model has written any); bars after it are backfilled through REST and recomputed, and every write is an upsert, so the
rows already stored are overwritten with equal values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.time import IST

MINUTE = timedelta(minutes=1)


def resume_cutoff(
    last_candle: datetime | None,
    last_feature: datetime | None,
    last_signal: datetime | None,
    calendar: SessionCalendar,
) -> datetime | None:
    """Open instant of the newest 1m bar to keep from the stored history (None: keep nothing new).

    Only the day of the newest candle is reconsidered: an output missing on an earlier day is not a
    crash of this run (e.g. a model trained after those days' signals were predicted), and re-streaming
    days through REST is not the live mode's job. A missing feature row or signal older than that day's
    open therefore cuts the history just before the open (the whole day is recomputed).
    """
    if last_candle is None:
        return None
    day = last_candle.astimezone(IST).date()
    if not calendar.is_trading_day(day):
        return last_candle
    day_open = calendar.session_open(day)
    done = last_candle
    for t in (last_feature, last_signal):
        if t is not None and t < done:
            done = t
    if done < day_open:
        return day_open - MINUTE
    return done


def first_hole(times: Iterable[datetime], day_open: datetime) -> datetime | None:
    """The first minute since ``day_open`` missing before the newest stored 1m bar of that day.

    ``times``: one instrument's stored 1m open instants. A restart must not resume after a hole (a
    minute a dead session never stored): the hole becomes the start of the recomputed range.
    """
    day_close = day_open + timedelta(hours=7)
    expected = day_open
    for t in sorted(t for t in times if day_open <= t < day_close):
        if t > expected:
            return expected
        expected = t + MINUTE
    return None


def day_cutoff(
    cutoff: datetime | None,
    holes: Sequence[datetime | None],
    open_windows: Sequence[tuple[datetime, datetime]],
) -> datetime | None:
    """``cutoff`` moved back before the first hole and the first unrepaired window of the day, if earlier."""
    starts = [h for h in holes if h is not None] + [s for s, _ in open_windows]
    if cutoff is None or not starts:
        return cutoff
    return min(cutoff, min(starts) - MINUTE)
