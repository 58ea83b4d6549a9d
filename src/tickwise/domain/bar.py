"""A closed bar of the live path: one candle plus the order-book imbalance seen while it formed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from tickwise.domain.candle import Candle


@dataclass(frozen=True, slots=True)
class Bar:
    """A :class:`Candle` and ``obi_5``, the 5-level order-book imbalance of its last full-mode tick.

    The one shape a live bar has from the candle builder through the engine to the writer. Candles that
    come without a book (REST backfills, stored history, roll-ups) carry ``obi_5 = NaN``. The price
    fields are exposed directly so a bar can be fed to a feature stream as it is.
    """

    candle: Candle
    obi_5: float = math.nan

    @property
    def instrument_token(self) -> int:
        return self.candle.instrument_token

    @property
    def time(self) -> datetime:
        """Open instant of the bar (tz-aware)."""
        return self.candle.time

    @property
    def open(self) -> float:
        return self.candle.open

    @property
    def high(self) -> float:
        return self.candle.high

    @property
    def low(self) -> float:
        return self.candle.low

    @property
    def close(self) -> float:
        return self.candle.close

    @property
    def volume(self) -> int:
        return self.candle.volume

    @property
    def oi(self) -> int | None:
        return self.candle.oi

    def same_trades(self, other: Bar) -> bool:
        """Same instant, prices and volume (the source and the book may differ)."""
        a, b = self.candle, other.candle
        return (
            a.time == b.time
            and a.open == b.open
            and a.high == b.high
            and a.low == b.low
            and a.close == b.close
            and a.volume == b.volume
        )
