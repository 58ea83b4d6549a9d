"""Kite payloads <-> domain types: instrument CSV rows, historical candle rows, IST wall-clock strings."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from tickwise.domain.candle import Candle
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

INSTRUMENT_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)

# Kite's historical interval names, and the widest span (days) one request may cover (section 3.4).
MAX_SPAN_DAYS: dict[str, int] = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}
KITE_WALL_CLOCK = "%Y-%m-%d %H:%M:%S"
_IST_OFFSET = timedelta(hours=5, minutes=30)


@dataclass(slots=True)
class InstrumentDump:
    """A parsed instrument dump: the rows that parsed, and a reason for each row that did not."""

    instruments: list[Instrument] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def maybe_gunzip(body: bytes) -> bytes:
    """Decompress a gzip body that arrived without a Content-Encoding header (httpx decodes the rest)."""
    if body[:2] == b"\x1f\x8b":
        return gzip.decompress(body)
    return body


def parse_instruments_csv(text: str) -> InstrumentDump:
    """Parse Kite's instrument CSV into typed Instruments; malformed rows are rejected with a reason."""
    dump = InstrumentDump()
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    missing = [c for c in INSTRUMENT_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"instrument dump lacks columns {missing} (header: {list(header)})")
    for line_no, row in enumerate(reader, start=2):
        try:
            dump.instruments.append(instrument_from_row(row))
        except (ValueError, TypeError) as exc:
            dump.rejected.append(f"line {line_no}: {exc}")
    return dump


def instrument_from_row(row: Mapping[str, str]) -> Instrument:
    expiry_text = (row.get("expiry") or "").strip()
    return Instrument(
        instrument_token=int(row["instrument_token"]),
        exchange_token=int(row["exchange_token"]),
        tradingsymbol=_required(row, "tradingsymbol"),
        name=(row.get("name") or "").strip(),
        exchange=_required(row, "exchange"),
        segment=_required(row, "segment"),
        instrument_type=_required(row, "instrument_type"),
        tick_size=float(row["tick_size"]),
        lot_size=int(float(row["lot_size"])),
        expiry=date.fromisoformat(expiry_text) if expiry_text else None,
        strike=float(row["strike"] or 0.0),
        last_price=float(row["last_price"] or 0.0),
    )


def _required(row: Mapping[str, str], key: str) -> str:
    value = (row.get(key) or "").strip()
    if not value:
        raise ValueError(f"empty {key}")
    return value


def to_kite_wall_clock(instant: datetime | date, *, end_of_day: bool = False) -> str:
    """Format an instant as Kite's IST wall clock ``%Y-%m-%d %H:%M:%S``.

    A tz-aware datetime is converted to Asia/Kolkata first (the official client does not convert, so
    a UTC datetime would be read as IST). A bare date means the start of that IST day, or its last
    second when ``end_of_day``. Naive datetimes are refused: their zone would be a guess.
    """
    return as_ist(instant, end_of_day=end_of_day).strftime(KITE_WALL_CLOCK)


def as_ist(instant: datetime | date, *, end_of_day: bool = False) -> datetime:
    if isinstance(instant, datetime):
        if instant.tzinfo is None:
            raise ValueError(f"naive datetime {instant.isoformat()} (pass a tz-aware datetime)")
        return instant.astimezone(IST)
    return datetime.combine(instant, time(23, 59, 59) if end_of_day else time(0, 0), tzinfo=IST)


def parse_candle_time(text: str) -> datetime:
    """Parse a historical timestamp such as ``2017-12-15T09:15:00+0530`` to a tz-aware IST datetime."""
    parsed = datetime.fromisoformat(text)
    # Kite always sends +0530; if the offset is ever missing, the wall clock is IST. IST has no DST,
    # so swapping the fixed offset for the zone is exact (and much cheaper than astimezone).
    if parsed.tzinfo is None or parsed.utcoffset() == _IST_OFFSET:
        return parsed.replace(tzinfo=IST)
    return parsed.astimezone(IST)


@dataclass(frozen=True, slots=True)
class CandleRow:
    """One historical candle as Kite sends it, for any interval (including ones without a Timeframe)."""

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None = None


def candle_row(raw: Sequence[Any]) -> CandleRow:
    if not isinstance(raw, list | tuple) or len(raw) < 6:
        raise ValueError(f"candle row needs [time, o, h, l, c, v(, oi)], got {raw!r}")
    return CandleRow(
        time=parse_candle_time(str(raw[0])),
        open=float(raw[1]),
        high=float(raw[2]),
        low=float(raw[3]),
        close=float(raw[4]),
        volume=int(raw[5]),
        oi=int(raw[6]) if len(raw) > 6 and raw[6] is not None else None,
    )


def to_candle(row: CandleRow, instrument_token: int, timeframe: Timeframe) -> Candle:
    return Candle(
        instrument_token=instrument_token,
        timeframe=timeframe,
        time=row.time,
        open=row.open,
        high=row.high,
        low=row.low,
        close=row.close,
        volume=row.volume,
        oi=row.oi,
        source="historical",
    )


def interval_name(interval: Timeframe | str) -> str:
    """Kite's interval name for a Timeframe, a timeframe string (``1m``) or a Kite name (``minute``)."""
    if isinstance(interval, Timeframe):
        return interval.kite_interval
    if interval in MAX_SPAN_DAYS:
        return interval
    try:
        return Timeframe(interval).kite_interval
    except ValueError:
        allowed = ", ".join([*(t.value for t in Timeframe), *MAX_SPAN_DAYS])
        raise ValueError(f"unknown historical interval {interval!r} (expected one of {allowed})") from None


def timeframe_for(interval: str) -> Timeframe | None:
    for tf in Timeframe:
        if tf.kite_interval == interval:
            return tf
    return None
