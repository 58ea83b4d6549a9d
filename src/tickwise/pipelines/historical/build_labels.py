"""Triple-barrier labels on both sides for one instrument (labeling.md), written to ``labels``.

Labels are computed over the instrument's whole history (ATR from the anchor) and upserted; the step is
skipped when the newest label the history allows is already stored (idempotent, resumable: a label
write is one transaction per instrument).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from tickwise.core.candle_flags import exclude_labels
from tickwise.core.labels import LabelSpec, label_both_sides
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import LabelRepository


def flags_on(
    flags: pd.DataFrame | None, timeframe: Timeframe, calendar: SessionCalendar
) -> pd.DataFrame | None:
    """The 1m candle flags as flags of ``timeframe``'s bars: each flag moves to the open of the
    session-aligned bar holding its minute, so an event whose window ``[time, t1]`` of that timeframe's
    bars holds an excluded minute is left out, as on 1m."""
    if flags is None or flags.empty or timeframe is Timeframe.M1:
        return flags
    times = pd.DatetimeIndex(pd.to_datetime(flags["time"], utc=True))
    local = times.tz_convert(IST)
    days = local.normalize()
    opens = pd.DatetimeIndex([calendar.session_open(d.date()) for d in days]).tz_convert(IST)
    step = pd.Timedelta(timeframe.delta)
    buckets = opens + ((local - opens) // step) * step
    return flags.assign(time=buckets.tz_convert("UTC"))


@dataclass
class LabelStepResult:
    instrument_token: int
    labelled: int
    written: int
    dropped: dict[int, dict[str, int]] = field(default_factory=dict)


async def build_labels(
    token: int,
    candles: pd.DataFrame,
    spec: LabelSpec,
    label_repo: LabelRepository,
    timeframe: Timeframe = Timeframe.M1,
    calendar: SessionCalendar = NSE,
    *,
    flags: pd.DataFrame | None = None,
) -> LabelStepResult:
    """Label ``candles``; events touching a bar ``flags`` excludes (data-quality policy) are left out."""
    if candles.empty:
        return LabelStepResult(token, 0, 0)
    frame, drops = label_both_sides(
        candles.reset_index(drop=True), spec, timeframe, calendar, instrument_token=token
    )
    if flags is not None:
        frame = exclude_labels(frame, flags)
    if frame.empty:
        return LabelStepResult(token, 0, 0, drops)
    newest = pd.Timestamp(frame["time"].max())
    stored = await label_repo.read_frame(token, timeframe, newest, None)
    if len(stored) >= 2:  # both sides of the newest event are stored: nothing new
        return LabelStepResult(token, len(frame), 0, drops)
    if "timeframe" not in frame.columns:
        frame["timeframe"] = str(timeframe)
    written = await label_repo.add_frame(frame)
    return LabelStepResult(token, len(frame), int(written), drops)
