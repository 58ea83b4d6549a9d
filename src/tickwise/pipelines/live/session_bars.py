"""An instrument's bars of the running session, held as columns; :class:`Bar` objects built only when read.

The engine keeps every 1m bar it folds in for the session, for the rare rewind (a late-tick or REST
repair re-opens the stream on the history plus the session's bars before the wrong one) and the repair
planner (``LiveEngine.session_bars``). As objects, a bar is a :class:`Bar`, its :class:`Candle`, a
datetime and six boxed numbers: about 400 bytes, 150 KB per instrument by 15:30 and 150 MB per 1,000
instruments, none of it read on the hot path. :class:`SessionBars` appends each bar's fields to typed
arrays instead (the open instant in microseconds, the four prices and the book imbalance as float64, the
volume and ``oi`` as int64, the timeframe, source and time zone as one-byte codes into short tuples):
67 bytes a bar, in arrays that grow by doubling.

Reading gives back the very objects appended, field for field: float64 holds a Python float's bits,
int64 any volume or open interest a candle validates, the microseconds a datetime's instant, and the
time zone object itself is kept (tested: equal, same types, same ``tzinfo``). The one rule it relies on
is the engine's: an instrument's session bars are appended in strictly increasing time (a bar at or
before the newest is a duplicate the engine drops), which makes "the bars before ``t``" a binary search.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TypeVar

import numpy as np

from tickwise.core.slotted import positional
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INT64 = np.iinfo(np.int64)
_NO_OI = _INT64.min  # ``oi`` is None (no instrument has that many contracts open)
_FIRST_CAPACITY = 64
_new_candle: Callable[..., Candle] = positional(Candle)  # Candle(...) without the frozen __init__
_new_bar: Callable[..., Bar] = positional(Bar)
T = TypeVar("T")


class SessionBars:
    """The session's 1m bars of one instrument, oldest first (see the module doc)."""

    __slots__ = (
        "_codes",
        "_n",
        "_obi",
        "_odd",
        "_oi",
        "_prices",
        "_sources",
        "_timeframes",
        "_token",
        "_us",
        "_volume",
        "_zones",
    )

    def __init__(self) -> None:
        self._n = 0
        self._token: int | None = None
        self._us = np.empty(0, dtype=np.int64)  # open instant, microseconds since the epoch (UTC)
        self._prices = np.empty((0, 4), dtype=np.float64)  # open, high, low, close
        self._obi = np.empty(0, dtype=np.float64)
        self._volume = np.empty(0, dtype=np.int64)
        self._oi = np.empty(0, dtype=np.int64)  # _NO_OI: None
        self._codes = np.empty((0, 3), dtype=np.int8)  # timeframe, source, time zone
        self._timeframes: list[Timeframe] = []
        self._sources: list[str] = []
        self._zones: list[tzinfo] = []
        self._odd: dict[int, Bar] = {}  # bars kept as objects (see append), by position

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (their capacity, not only the bars held)."""
        arrays = (self._us, self._prices, self._obi, self._volume, self._oi, self._codes)
        return sum(int(a.nbytes) for a in arrays)

    def append(self, bar: Bar) -> None:
        """Add ``bar``, which must open after the newest bar held (``ValueError`` otherwise, and for a bar
        of another instrument). A bar the columns cannot give back exactly (an unusual type in a field:
        :func:`_plain`) is kept as the object itself."""
        candle = bar.candle
        if self._token is None:
            self._token = candle.instrument_token
        elif candle.instrument_token != self._token:
            raise ValueError(f"bar of {candle.instrument_token} added to the session bars of {self._token}")
        us = (candle.time - _EPOCH) // _US
        if self._n and us <= self._us[self._n - 1]:
            raise ValueError(f"session bar at {candle.time} does not open after the newest held")
        if self._n == len(self._us):
            self._grow()
        i = self._n
        self._us[i] = us
        zone = candle.time.tzinfo
        if zone is not None and _plain(bar):
            self._odd.pop(i, None)
            self._volume[i] = candle.volume
            self._oi[i] = _NO_OI if candle.oi is None else candle.oi
            self._prices[i] = (candle.open, candle.high, candle.low, candle.close)
            self._obi[i] = bar.obi_5
            self._codes[i] = (
                _code(self._timeframes, candle.timeframe),
                _code(self._sources, candle.source),
                _code(self._zones, zone, identical=True),
            )
        else:
            self._odd[i] = bar
        self._n = i + 1

    def _grow(self) -> None:
        size = max(_FIRST_CAPACITY, 2 * len(self._us))
        self._us = _resized(self._us, size)
        self._prices = _resized(self._prices, size)
        self._obi = _resized(self._obi, size)
        self._volume = _resized(self._volume, size)
        self._oi = _resized(self._oi, size)
        self._codes = _resized(self._codes, size)

    def before(self, t: datetime) -> int:
        """How many bars opened before ``t`` (tz-aware)."""
        return int(np.searchsorted(self._us[: self._n], (t - _EPOCH) // _US, side="left"))

    def truncate(self, n: int) -> None:
        """Keep the oldest ``n`` bars only."""
        self._n = max(0, min(n, self._n))
        self._odd = {i: bar for i, bar in self._odd.items() if i < self._n}

    def bars(self, start: int = 0, stop: int | None = None) -> list[Bar]:
        """Bars ``start:stop`` (default all), built now."""
        stop = self._n if stop is None else max(0, min(stop, self._n))
        return [self._bar(i) for i in range(max(0, start), stop)]

    def candles(self, start: int = 0, stop: int | None = None) -> list[Candle]:
        """The candles of bars ``start:stop`` (default all), built now."""
        return [bar.candle for bar in self.bars(start, stop)]

    def _bar(self, i: int) -> Bar:
        odd = self._odd.get(i)
        if odd is not None:
            return odd
        tf, source, zone = (int(c) for c in self._codes[i])
        when = _EPOCH + timedelta(microseconds=int(self._us[i]))
        tz = self._zones[zone]
        o, h, lo, c = (float(p) for p in self._prices[i])
        oi = int(self._oi[i])
        candle = _new_candle(
            self._token,
            self._timeframes[tf],
            when.astimezone(tz),
            o,
            h,
            lo,
            c,
            int(self._volume[i]),
            None if oi == _NO_OI else oi,
            self._sources[source],
        )
        return _new_bar(candle, float(self._obi[i]))


def _code(values: list[T], value: T, *, identical: bool = False) -> int:
    """The index of ``value`` in ``values`` (appended when new; with ``identical`` the very object, so a
    time zone comes back as itself); at most 127 distinct values."""
    for i, held in enumerate(values):
        if held is value or (not identical and held == value):
            return i
    if len(values) >= np.iinfo(np.int8).max:
        raise ValueError(f"more than {len(values)} distinct values in one column: {value!r}")
    values.append(value)
    return len(values) - 1


def _plain(bar: Bar) -> bool:
    """Whether the columns give ``bar`` back field for field: exact types (a float price, an int volume,
    a ``datetime`` that is not a subclass, with a time zone), values the int64 columns hold."""
    c = bar.candle
    return (
        type(c.time) is datetime
        and c.time.tzinfo is not None
        and c.time.fold == 0
        and type(c.open) is float
        and type(c.high) is float
        and type(c.low) is float
        and type(c.close) is float
        and type(bar.obi_5) is float
        and type(c.volume) is int
        and _INT64.min < c.volume <= _INT64.max
        and (c.oi is None or (type(c.oi) is int and _INT64.min < c.oi <= _INT64.max))
        and type(c.source) is str
        and type(c.instrument_token) is int
    )


def _resized(a: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((size, *a.shape[1:]), dtype=a.dtype)
    out[: len(a)] = a
    return out
