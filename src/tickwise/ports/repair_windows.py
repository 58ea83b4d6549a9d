"""RepairWindowRepository: the live minutes still to be backfilled through REST, kept across runs.

A live session that ends (or dies) before it repaired a span records it here before it drops the bars
inside it; the next run of the day reads the open spans, repairs them first and marks them repaired.
Windows are inclusive ranges of 1m open instants (tz-aware).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol


class RepairWindowRepository(Protocol):
    async def record(self, day: date, start: datetime, end: datetime, reason: str) -> None:
        """Remember that the minutes ``[start, end]`` of ``day`` need a REST repair."""
        ...

    async def open_windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The unrepaired windows of ``day``, oldest first."""
        ...

    async def mark_repaired(
        self, day: date, start: datetime, end: datetime, *, recorded_before: datetime | None = None
    ) -> int:
        """Close every open window of ``day`` inside ``[start, end]`` (recorded before
        ``recorded_before``, if given); returns how many."""
        ...
