"""SignalMemberRepository: what each member contributed to an ensemble signal (``signal_members``).

A member frame has the columns of :data:`MEMBER_ROW_COLUMNS`: the ensemble signal's key
(``instrument_token, timeframe, time, model_version, mode``; ``model_version`` is the ensemble version)
and per member its ``member_timeframe``, ``member_version``, ``member_time`` (open of the member bar
used) and ``p_long`` / ``p_short``. Implemented by ``adapters.timescale.signal_member_repository``; the
in-memory fake is in ``tests/fakes.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import pandas as pd

MEMBER_ROW_COLUMNS = (
    "instrument_token",
    "timeframe",
    "time",
    "model_version",
    "mode",
    "member_timeframe",
    "member_version",
    "member_time",
    "p_long",
    "p_short",
)


class SignalMemberRepository(Protocol):
    async def add_frame(self, frame: pd.DataFrame) -> int:
        """Store member rows; a stored key (signal key + member timeframe) is overwritten. Rows written."""
        ...

    async def read_frame(
        self,
        model_version: str,
        *,
        mode: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """The member rows of the ensemble version's signals with ``start <= time < end``, ordered by
        time, instrument and member timeframe."""
        ...
