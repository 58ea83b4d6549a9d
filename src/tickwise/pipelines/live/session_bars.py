"""An instrument's bars of the running session, held as columns; :class:`Bar` objects built only when read.

The engine keeps every 1m bar it folds in for the session, for the rare rewind (a late-tick or REST
repair re-opens the stream on the history plus the session's bars before the wrong one) and the repair
planner (``LiveEngine.session_bars``). As objects, a bar is a :class:`Bar`, its :class:`Candle`, a
datetime and six boxed numbers: about 400 bytes, 150 KB per instrument by 15:30 and 150 MB per 1,000
instruments, none of it read on the hot path. :class:`SessionBars` packs them into typed arrays instead (the
open instant in microseconds, the four prices and the book imbalance as float64, the volume and ``oi`` as
int64, the timeframe, source and time zone as one-byte codes into short tuples): 67 bytes a bar, in
arrays that grow by doubling.

Packing costs a few microseconds a bar, too much for the minute's hot path (1,000 bars before the
signals), so :meth:`SessionBars.append` only keeps the bar, and :meth:`SessionBars.pack` moves the
pending bars into the columns in one go: the engine packs each instrument every
:data:`PACK_EVERY` minutes in the deferred part of a minute (after its signals are written), a
sixteenth of the instruments each minute, so at most that many bars per instrument wait as objects.
Every read packs first.

Reading gives back the very objects appended, field for field: float64 holds a Python float's bits,
int64 any volume or open interest a candle validates, the microseconds a datetime's instant, and the
time zone object itself is kept (tested: equal, same types, same ``tzinfo``). The one rule it relies on
is the engine's: an instrument's session bars are appended in strictly increasing time (a bar at or
before the newest is a duplicate the engine drops), which makes "the bars before ``t``" a binary search.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import chain
from operator import attrgetter
from typing import TypeVar

import numpy as np

from tickwise.core.slotted import positional
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_NO_OI = _INT64_MIN  # ``oi`` is None (no instrument has that many contracts open)
_FIRST_CAPACITY = 64
PACK_EVERY = 16  # minutes between an instrument's packs in the engine (see the module doc)
_new_candle: Callable[..., Candle] = positional(Candle)  # Candle(...) without the frozen __init__
_new_bar: Callable[..., Bar] = positional(Bar)
_CANDLE_FIELDS = attrgetter("time", "open", "high", "low", "close", "volume", "oi", "source", "timeframe")
T = TypeVar("T")


class SessionBars:
    """The session's 1m bars of one instrument, oldest first (see the module doc)."""

    __slots__ = (
        "_codes",
        "_n",
        "_obi",
        "_odd",
        "_oi",
        "_pending",
        "_prices",
        "_sources",
        "_timeframes",
        "_token",
        "_us",
        "_volume",
        "_zones",
    )

    def __init__(self) -> None:
        self._n = 0  # bars packed into the columns
        self._token: int | None = None
        self._pending: list[Bar] = []  # added since the last pack, as they came
        self._us = np.empty(0, dtype=np.int64)  # open instant, microseconds since the epoch (UTC)
        self._prices = np.empty((0, 4), dtype=np.float64)  # open, high, low, close
        self._obi = np.empty(0, dtype=np.float64)
        self._volume = np.empty(0, dtype=np.int64)
        self._oi = np.empty(0, dtype=np.int64)  # _NO_OI: None
        self._codes = np.empty((0, 3), dtype=np.int8)  # timeframe, source, time zone
        self._timeframes: list[Timeframe] = []
        self._sources: list[str] = []
        self._zones: list[tzinfo] = []
        self._odd: dict[int, Bar] = {}  # bars kept as objects (see pack), by position

    def __len__(self) -> int:
        return self._n + len(self._pending)

    @property
    def pending(self) -> int:
        """Bars added and not packed yet."""
        return len(self._pending)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (their capacity, not only the bars held); pending bars not counted."""
        arrays = (self._us, self._prices, self._obi, self._volume, self._oi, self._codes)
        return sum(int(a.nbytes) for a in arrays)

    def append(self, bar: Bar) -> None:
        """Add ``bar``, which must open after the newest bar added (``ValueError`` otherwise, and for a bar
        of another instrument). It is kept as it is until :meth:`pack`."""
        candle = bar.candle
        if self._token is None:
            self._token = candle.instrument_token
        elif candle.instrument_token != self._token:
            raise ValueError(f"bar of {candle.instrument_token} added to the session bars of {self._token}")
        newest = self._newest()
        if newest is not None and candle.time <= newest:
            raise ValueError(f"session bar at {candle.time} does not open after the newest held")
        self._pending.append(bar)

    def push(self, bar: Bar) -> None:
        """:meth:`append` without its checks, for the engine's hot path: the engine adds an instrument's
        own bars only, each after the newest it folded in (a bar at or before it is a duplicate it drops)."""
        if self._token is None:
            self._token = bar.candle.instrument_token
        self._pending.append(bar)

    def _newest(self) -> datetime | None:
        if self._pending:
            return self._pending[-1].candle.time
        return _EPOCH + timedelta(microseconds=int(self._us[self._n - 1])) if self._n else None

    def pack(self) -> None:
        """Move the pending bars into the columns, all at once. A bar the columns cannot give back
        exactly (an unusual type in a field: :func:`_plain`) is kept as the object itself."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        i0, k = self._n, len(pending)
        if i0 + k > len(self._us):
            self._grow(i0 + k)
        if not self._pack_uniform(pending):
            self._pack_each(pending)
        self._n = i0 + k

    def _pack_uniform(self, pending: list[Bar]) -> bool:
        """Pack ``pending`` column by column when every bar has the plain types and shares its timeframe,
        source and time zone (what the engine's bars have); False (nothing written) otherwise."""
        candles = [b.candle for b in pending]
        times, o, h, lo, c, volume, oi, source, timeframe = zip(*map(_CANDLE_FIELDS, candles), strict=True)
        obi = [b.obi_5 for b in pending]
        zone = times[0].tzinfo
        if not (
            set(map(type, times)) == {datetime}
            and zone is not None
            and all(t.tzinfo is zone and not t.fold for t in times)
            and set(map(type, chain(o, h, lo, c, obi))) == {float}
            and set(map(type, volume)) == {int}
            and set(map(type, oi)) <= {int, type(None)}
            and len(set(source)) == 1
            and type(source[0]) is str
            and len(set(timeframe)) == 1
        ):
            return False
        try:
            volumes = np.array(volume, dtype=np.int64)
            ois = np.array([_NO_OI if v is None else v for v in oi], dtype=np.int64)
        except OverflowError:
            return False
        if (ois == _NO_OI).sum() != oi.count(None):
            return False  # an open interest equal to the None marker
        i0 = self._n
        stop = i0 + len(pending)
        self._us[i0:stop] = [(t - _EPOCH) // _US for t in times]
        self._prices[i0:stop] = np.array((o, h, lo, c), dtype=np.float64).T
        self._obi[i0:stop] = obi
        self._volume[i0:stop] = volumes
        self._oi[i0:stop] = ois
        self._codes[i0:stop] = (
            _code(self._timeframes, timeframe[0]),
            _code(self._sources, source[0]),
            _code(self._zones, zone, identical=True),
        )
        return True

    def _pack_each(self, pending: list[Bar]) -> None:
        """Pack ``pending`` bar by bar; a bar the columns cannot give back exactly is kept as itself."""
        i0, k = self._n, len(pending)
        us, prices, obi, volume, oi, codes = [], [], [], [], [], []
        timeframes, sources, zones = self._timeframes, self._sources, self._zones
        last: tuple[object, object, object, tuple[int, int, int]] | None = None  # the previous bar's codes
        for j, bar in enumerate(pending):
            c = bar.candle
            t = c.time
            us.append((t - _EPOCH) // _US)
            zone = t.tzinfo
            if zone is None or not _plain(bar):
                self._odd[i0 + j] = bar
                prices.append((0.0, 0.0, 0.0, 0.0))
                obi.append(0.0)
                volume.append(0)
                oi.append(0)
                codes.append((0, 0, 0))
                continue
            prices.append((c.open, c.high, c.low, c.close))
            obi.append(bar.obi_5)
            volume.append(c.volume)
            oi.append(_NO_OI if c.oi is None else c.oi)
            # An instrument's bars share their timeframe, source and zone: look them up on a change only.
            if last is None or last[0] is not c.timeframe or last[1] != c.source or last[2] is not zone:
                code = (
                    _code(timeframes, c.timeframe),
                    _code(sources, c.source),
                    _code(zones, zone, identical=True),
                )
                last = (c.timeframe, c.source, zone, code)
            codes.append(last[3])
        stop = i0 + k
        self._us[i0:stop] = us
        self._prices[i0:stop] = prices
        self._obi[i0:stop] = obi
        self._volume[i0:stop] = volume
        self._oi[i0:stop] = oi
        self._codes[i0:stop] = codes

    def _grow(self, need: int) -> None:
        size = max(_FIRST_CAPACITY, 2 * len(self._us))
        while size < need:
            size *= 2
        self._us = _resized(self._us, size)
        self._prices = _resized(self._prices, size)
        self._obi = _resized(self._obi, size)
        self._volume = _resized(self._volume, size)
        self._oi = _resized(self._oi, size)
        self._codes = _resized(self._codes, size)

    def before(self, t: datetime) -> int:
        """How many bars opened before ``t`` (tz-aware)."""
        self.pack()
        return int(np.searchsorted(self._us[: self._n], (t - _EPOCH) // _US, side="left"))

    def truncate(self, n: int) -> None:
        """Keep the oldest ``n`` bars only."""
        self.pack()
        self._n = max(0, min(n, self._n))
        self._odd = {i: bar for i, bar in self._odd.items() if i < self._n}

    def bars(self, start: int = 0, stop: int | None = None) -> list[Bar]:
        """Bars ``start:stop`` (default all), built now."""
        self.pack()
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
    if not (
        type(c.time) is datetime
        and c.time.fold == 0
        and type(c.open) is float
        and type(c.high) is float
        and type(c.low) is float
        and type(c.close) is float
        and type(bar.obi_5) is float
        and type(c.volume) is int
        and type(c.source) is str
    ):
        return False
    oi = c.oi
    return _INT64_MIN < c.volume <= _INT64_MAX and (
        oi is None or (type(oi) is int and _INT64_MIN < oi <= _INT64_MAX)
    )


def _resized(a: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((size, *a.shape[1:]), dtype=a.dtype)
    out[: len(a)] = a
    return out
