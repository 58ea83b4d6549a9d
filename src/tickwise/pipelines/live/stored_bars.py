"""An instrument's stored 1m history, held compactly while a live session runs.

The engine opens each instrument's feature stream on its stored 1m candles from the anchor, and keeps
them for the rare rewind (a late-tick or REST repair re-opens the stream on the history plus the
session's bars before the wrong one). As the candle repository returns it, that frame holds eleven
columns, three of them Python objects per row (the timeframe and source strings, the nullable ``oi``):
about 200 bytes a row, 300 KB for 1,500 bars and 4.5 MB for 60 sessions, per instrument.

:class:`StoredBars` keeps only what a rewind reads, one array per column, each in the narrowest form
that gives back every value bit for bit (checked on every value when it is packed):

* the open instants as whole minutes (1m bars open on whole minutes), else nanoseconds, after the first
  bar;
* the four prices as whole paise when every price is a whole number of paise (every NSE tick size is),
  ``paise / 100`` being the float64 stored (an exact integer divided once rounds to the nearest double,
  which is the stored price); else float64;
* the volume as integers when it is integral, given back in the dtype it came in;
* ``oi`` and the book imbalance not at all when every row is NULL/NaN (REST history carries neither),
  else float64 (``oi`` NULL as NaN, exact below 2**53 contracts); the source as one byte per row, or
  nothing when every row has the same source.

An integer column (:class:`IntColumn`) is held as its values or, when those are narrower, as its steps
from one bar to the next (a minute, a few paise from one 1m bar to the next: int16 where the values
need int32), in the narrowest of int8/int16/int32 that holds them; the values are the running sum of
the steps in int64, exact. About 14 bytes a bar for REST history (it was 25 with every integer column
int32, 65 as plain float64 columns, plus the repository frame's float block that views into it kept
alive); :meth:`frame` and :meth:`candles` give back exactly the values it was given (tested), so the
re-opened stream and roll-ups are the ones the full frame gave. The arrays are copies: nothing of the
repository's frame outlives :meth:`StoredBars.of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe

_PRICES = ("open", "high", "low", "close")
_MINUTE_NS = 60_000_000_000
_INT32 = np.iinfo(np.int32)
_INT64_MAX = np.iinfo(np.int64).max
# Decimal scales a float column may be held at as int32 (whole units, whole paise), tried in order.
_SCALES = (1.0, 100.0)
_NARROW = (np.int8, np.int16, np.int32)


def _narrowest(v: np.ndarray, wide: bool = False) -> np.ndarray | None:
    """``v`` (int64) in the narrowest of int8/int16/int32 (and int64 if ``wide``) that holds every value,
    or None."""
    if not len(v):
        return v.astype(np.int8)
    lo, hi = int(v.min()), int(v.max())
    for dtype in (*_NARROW, np.int64) if wide else _NARROW:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return v.astype(dtype)
    return None


@dataclass(frozen=True, slots=True)
class IntColumn:
    """An exact int64 column held narrow: its values (``first`` unused), or with ``steps`` the differences
    from each value to the next (``data[i] = v[i + 1] - v[i]``, ``first = v[0]``) when those are narrower.
    """

    data: np.ndarray
    steps: bool
    first: int
    n: int

    @classmethod
    def of(cls, values: np.ndarray, wide: bool = False) -> IntColumn | None:
        """``values`` (integers) held narrow, or None when neither they nor their steps fit int32 (with
        ``wide``, int64 is the last form: never None)."""
        v = np.asarray(values, dtype=np.int64)
        n = len(v)
        plain = _narrowest(v, wide)
        if n > 1:
            stepped = _narrowest(np.diff(v))
            if stepped is not None and (plain is None or stepped.itemsize < plain.itemsize):
                return cls(stepped, True, int(v[0]), n)
        return None if plain is None else cls(plain, False, 0, n)

    @classmethod
    def wide(cls, values: np.ndarray) -> IntColumn:
        """``values`` held narrow, int64 at worst."""
        held = cls.of(values, wide=True)
        return held if held is not None else cls(np.array(values, dtype=np.int64), False, 0, len(values))

    def values(self, stop: int | None = None) -> np.ndarray:
        """The first ``stop`` values (default all) as int64."""
        k = self.n if stop is None else max(0, min(stop, self.n))
        if not self.steps:
            return self.data[:k].astype(np.int64)
        out = np.empty(k, dtype=np.int64)
        if k:
            out[0] = self.first
            np.cumsum(self.data[: k - 1], dtype=np.int64, out=out[1:])
            out[1:] += self.first
        return out

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Values ``start:stop`` as int64."""
        return self.values(stop)[max(0, start) :]

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


@dataclass(frozen=True, slots=True)
class Packed:
    """A float64 column of ``n`` values held as ``ints / scale`` (:class:`IntColumn`) when that gives back
    every value bit for bit, as float64 otherwise (``scale == 0``, ``floats``), or not at all when every
    value is NaN (both None)."""

    ints: IntColumn | None
    floats: np.ndarray | None
    scale: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> Packed:
        v = np.asarray(values, dtype=np.float64)
        n = len(v)
        if n and np.isnan(v).all():
            return cls(None, None, 0.0, n)
        if n and np.isfinite(v).all():
            for scale in _SCALES:
                q = np.rint(v * scale)
                if np.abs(q).max() > _INT32.max:
                    continue
                whole = q.astype(np.int64)
                if _same_bits(whole.astype(np.float64) / scale, v):  # what values() gives back (-0.0 fails)
                    ints = IntColumn.of(whole)
                    if ints is not None:
                        return cls(ints, None, scale, n)
        return cls(None, np.array(v, dtype=np.float64), 0.0, n)  # a copy: no view into the caller's frame

    @property
    def data(self) -> np.ndarray | None:
        """The array held (None when every value is NaN)."""
        return self.ints.data if self.ints is not None else self.floats

    def values(self, stop: int | None = None) -> np.ndarray:
        """The first ``stop`` values (default all) as float64, the very bits packed."""
        k = self.n if stop is None else min(stop, self.n)
        if self.ints is not None:
            return self.ints.values(k).astype(np.float64) / self.scale
        if self.floats is None:
            return np.full(k, np.nan)
        return self.floats[:k]

    @property
    def nbytes(self) -> int:
        data = self.data
        return 0 if data is None else int(data.nbytes)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


@dataclass(frozen=True, slots=True)
class StoredBars:
    """Stored 1m candles of one instrument (oldest first), packed per column; see the module doc."""

    start_ns: int  # UTC nanoseconds of the first bar's open instant (0 when empty)
    offsets: IntColumn  # minutes after start_ns, or ns after it when not whole minutes
    minutes: bool  # whether ``offsets`` counts minutes
    open: Packed
    high: Packed
    low: Packed
    close: Packed
    volume: IntColumn | None  # integral volumes; None: ``volume_other`` holds them as they came
    volume_other: np.ndarray  # float (or beyond int64) volumes; empty when ``volume`` holds them
    volume_dtype: np.dtype[np.generic]  # the dtype given back
    oi: Packed  # NaN where the stored value is NULL
    obi_5: Packed  # NaN where the candle carries no book
    source_codes: np.ndarray | None  # int8 index into ``sources``; None: every bar has ``sources[0]``
    sources: tuple[str, ...]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> StoredBars:
        """Hold ``frame`` (the candle repository's columns, at least time and OHLCV) compactly."""
        n = len(frame)
        if n:
            time_ns = pd.to_datetime(frame["time"], utc=True).to_numpy(dtype="datetime64[ns]").view(np.int64)
        else:
            time_ns = np.empty(0, dtype=np.int64)
        start = int(time_ns[0]) if n else 0
        delta = time_ns - start
        minutes = bool(n) and not (delta % _MINUTE_NS).any()
        offsets = IntColumn.wide(delta // _MINUTE_NS if minutes else delta)

        def floats(name: str) -> np.ndarray:
            if name not in frame.columns:
                return np.full(n, np.nan)
            column: np.ndarray = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            return column

        volume = frame["volume"].to_numpy() if "volume" in frame.columns else np.zeros(n)
        if volume.dtype.kind not in "iuf":  # an empty or object column: the stream reads floats
            volume = floats("volume")
        volume_dtype = volume.dtype
        held_volume: IntColumn | None = None
        volume_other = np.empty(0)
        if volume.dtype.kind == "i" or (volume.dtype.kind == "u" and (not n or volume.max() <= _INT64_MAX)):
            held_volume = IntColumn.wide(volume)
        else:
            volume_other = np.array(volume)  # a copy: no view into the frame
        if "source" in frame.columns and n:
            codes, uniques = pd.factorize(frame["source"].astype(str))
            sources = tuple(str(u) for u in uniques)
            source_codes = codes.astype(np.int8) if len(sources) > 1 else None
        else:
            source_codes, sources = None, ("historical",)
        return cls(
            start_ns=start,
            offsets=offsets,
            minutes=minutes,
            open=Packed.of(floats("open")),
            high=Packed.of(floats("high")),
            low=Packed.of(floats("low")),
            close=Packed.of(floats("close")),
            volume=held_volume,
            volume_other=volume_other,
            volume_dtype=volume_dtype,
            oi=Packed.of(floats("oi")),
            obi_5=Packed.of(floats("obi_5")),
            source_codes=source_codes,
            sources=sources,
        )

    def __len__(self) -> int:
        return self.offsets.n

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        packed = (self.open, self.high, self.low, self.close, self.oi, self.obi_5)
        ints = self.offsets.nbytes + (0 if self.volume is None else self.volume.nbytes)
        codes = 0 if self.source_codes is None else int(self.source_codes.nbytes)
        return sum(p.nbytes for p in packed) + ints + int(self.volume_other.nbytes) + codes

    def _volumes(self, stop: int) -> np.ndarray:
        return self.volume.values(stop) if self.volume is not None else self.volume_other[:stop]

    def _source_codes(self, start: int, stop: int) -> np.ndarray:
        if self.source_codes is None:
            return np.zeros(max(0, stop - start), dtype=np.int8)
        return self.source_codes[start:stop]

    def time_ns(self, stop: int | None = None) -> np.ndarray:
        """UTC nanoseconds of the first ``stop`` bars' open instants (default all)."""
        off = self.offsets.values(stop)
        return self.start_ns + (off * _MINUTE_NS if self.minutes else off)

    def before(self, t: datetime) -> int:
        """How many bars opened before ``t`` (tz-aware)."""
        return int(np.searchsorted(self.time_ns(), pd.Timestamp(t).value, side="left"))

    def last_time(self) -> datetime | None:
        """Open instant of the newest bar (UTC), or None when empty."""
        return _utc(int(self.time_ns()[-1])) if len(self) else None

    def frame(self, stop: int | None = None) -> pd.DataFrame:
        """The first ``stop`` bars (default all) as a candle frame: ``time`` (UTC), OHLCV, ``oi``
        (nullable Int64, as the repository returns it), ``obi_5`` and ``source``."""
        k = len(self) if stop is None else stop
        oi = pd.array(self.oi.values(k), dtype="Float64").astype("Int64")  # NaN -> <NA>
        return pd.DataFrame(
            {
                "time": pd.to_datetime(self.time_ns(k), utc=True),
                **{p: getattr(self, p).values(k) for p in _PRICES},
                "volume": self._volumes(k).astype(self.volume_dtype),
                "oi": oi,
                "obi_5": self.obi_5.values(k),
                "source": np.asarray(self.sources, dtype=object)[self._source_codes(0, k)],
            }
        )

    def candles(self, token: int, start: int, stop: int) -> list[Candle]:
        """Bars ``start:stop`` as 1m domain candles of ``token``."""
        start = max(0, start)
        if stop <= start:
            return []
        times = self.time_ns(stop)[start:]
        o, h, lo, c, oi = (
            p.values(stop)[start:] for p in (self.open, self.high, self.low, self.close, self.oi)
        )
        volume = self._volumes(stop)[start:]
        codes = self._source_codes(start, stop)
        out = []
        for i in range(stop - start):
            oi_i = float(oi[i])
            out.append(
                Candle(
                    instrument_token=token,
                    timeframe=Timeframe.M1,
                    time=_utc(int(times[i])),
                    open=float(o[i]),
                    high=float(h[i]),
                    low=float(lo[i]),
                    close=float(c[i]),
                    volume=int(volume[i]),
                    oi=None if oi_i != oi_i else int(oi_i),  # oi != oi: NaN, a NULL
                    source=self.sources[int(codes[i])],
                )
            )
        return out


def _utc(ns: int) -> datetime:
    when: datetime = pd.Timestamp(ns, tz="UTC").to_pydatetime()
    return when
