"""Where a live run resumes after a crash: the newest bar whose every output is stored.

The writer flushes candles, features and signals independently, so a process killed mid-session can
leave a bar whose candle is stored but whose feature row or signal is not. Resuming after the newest
stored *candle* would then skip those outputs forever. A restart therefore resumes after the newest bar
for which the candle, the feature row and (when the model has written any that day) the signal all
exist (the signal only if the model has written any); bars after it are backfilled through REST and recomputed, and every write is an upsert, so the
rows already stored are overwritten with equal values.
"""

from __future__ import annotations

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
