"""CandleFlagRepository: where the data-quality checks' flags are kept (the ``candle_flags`` table).

A flag frame has the columns ``instrument_token, timeframe, time, check, score, action``
(``core.candle_flags.FLAG_COLUMNS`` plus the policy's ``action``: ``kept`` or ``excluded``).
Implemented by ``adapters.timescale.candle_flag_repository``; the in-memory fake is in ``tests/fakes.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pandas as pd

from tickwise.domain.timeframe import Timeframe


class CandleFlagRepository(Protocol):
    async def add_frame(self, frame: pd.DataFrame) -> int:
        """Store flags; a stored (instrument, timeframe, check, time) is overwritten. Rows written."""
        ...

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Flags with ``start <= time < end``, ordered by time then check."""
        ...

    async def counts(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> dict[tuple[str, str], int]:
        """Number of flags per ``(check, action)`` with ``start <= time < end``."""
        ...
