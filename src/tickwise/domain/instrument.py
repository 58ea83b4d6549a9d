"""A tradable (or index) instrument from Kite's instrument dump."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Price divisor per segment (instrument_token & 0xFF); see kite-protocol.md section 2.6.
SEGMENT_DIVISORS: dict[int, float] = {3: 10_000_000.0, 6: 10_000.0, 12: 10_000.0}
INDEX_SEGMENT = 9


def segment_of(instrument_token: int) -> int:
    return instrument_token & 0xFF


def price_divisor(instrument_token: int) -> float:
    return SEGMENT_DIVISORS.get(instrument_token & 0xFF, 100.0)


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    exchange: str
    segment: str
    instrument_type: str
    tick_size: float
    lot_size: int
    expiry: date | None = None
    strike: float = 0.0
    last_price: float = 0.0

    @property
    def tradable(self) -> bool:
        return segment_of(self.instrument_token) != INDEX_SEGMENT
