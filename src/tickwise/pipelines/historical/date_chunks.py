"""One instrument's stored history in date-range chunks of whole sessions (issue 15).

The derive stage reads each instrument ``compute.chunk_sessions`` sessions at a time; the predict stage
and the training load do too, so what they hold at once is bounded by the chunk, not by the history
(a 5-year instrument has about 465,000 1m bars). The cuts fall at midnight IST before a trading day, so
a session is never split: the regime layer, which restarts at each session's open, sees every session
whole in one chunk.

The cuts are computed from the instrument's stored candles of the timeframe (the bars its features and
labels belong to). The first chunk is open at its start and the last one ends at the caller's ``end``,
so every stored row in ``[start, end)`` lies in exactly one chunk, even a row outside the candles'
range; an instrument without candles is one chunk.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import CandleRepository

DateChunk = tuple[datetime | None, datetime | None]  # [start, end); None: open on that side


def session_cuts(first: datetime, last: datetime, sessions: int, calendar: SessionCalendar) -> list[datetime]:
    """Midnight (IST) before every ``sessions``-th trading session after ``first``'s, up to ``last``'s
    (the derive's chunks too, as ``run.chunk_bounds``): the first chunk starts at the anchor and the
    last runs to the newest candle, so every stored candle is in exactly one chunk."""
    if sessions < 1:
        raise ValueError(f"a chunk holds at least one session, not {sessions}")
    days = calendar.trading_days(first.astimezone(IST).date(), last.astimezone(IST).date())
    return [
        datetime.combine(days[i], datetime.min.time(), tzinfo=IST)
        for i in range(sessions, len(days), sessions)
    ]


def chunks_between(
    first: datetime | None,
    last: datetime | None,
    sessions: int,
    calendar: SessionCalendar,
    start: datetime | None,
    end: datetime | None,
) -> list[DateChunk]:
    """``[start, end)`` cut into chunks of ``sessions`` sessions of the stored range ``[first, last]``
    (``None``: nothing stored, one chunk). Every cut lies strictly inside ``(start, end)``."""
    cuts: list[datetime] = []
    if first is not None and last is not None:
        lo = first if start is None else max(first, start)
        hi = last if end is None else min(last, end)
        if lo <= hi:
            cuts = [
                c
                for c in session_cuts(lo, hi, sessions, calendar)
                if (start is None or c > start) and (end is None or c < end)
            ]
    return list(itertools.pairwise([start, *cuts, end]))


async def history_chunks(
    candles: CandleRepository,
    calendar: SessionCalendar,
    token: int,
    timeframe: Timeframe,
    sessions: int,
    start: datetime | None,
    end: datetime | None,
) -> list[DateChunk]:
    """The chunks of instrument ``token``'s ``timeframe`` history in ``[start, end)``, oldest first."""
    first = await candles.first_time(token, timeframe)
    last = await candles.last_time(token, timeframe)
    return chunks_between(first, last, sessions, calendar, start, end)
