"""Candle timeframes as the contract spells them (``1m``, ``5m``, ``15m``, ``60m``, ``1d``)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class Timeframe(StrEnum):
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M60 = "60m"
    D1 = "1d"

    @property
    def minutes(self) -> int:
        return _MINUTES[self]

    @property
    def delta(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    @property
    def kite_interval(self) -> str:
        """The interval name Kite's historical API uses for this timeframe."""
        return _KITE[self]

    @classmethod
    def parse(cls, value: str) -> Timeframe:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown timeframe {value!r} (expected one of {allowed})") from None


_MINUTES = {
    Timeframe.M1: 1,
    Timeframe.M5: 5,
    Timeframe.M15: 15,
    Timeframe.M60: 60,
    Timeframe.D1: 375,
}
_KITE = {
    Timeframe.M1: "minute",
    Timeframe.M5: "5minute",
    Timeframe.M15: "15minute",
    Timeframe.M60: "60minute",
    Timeframe.D1: "day",
}
INTRADAY = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M60)
