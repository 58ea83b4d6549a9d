"""Time vocabulary: the exchange time zone and half-open time ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open interval ``[start, end)`` of tz-aware instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeRange needs tz-aware datetimes")
        if self.end < self.start:
            raise ValueError(f"TimeRange end {self.end} is before start {self.start}")

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end
