"""An instrument's stored 1m history, held compactly while a live session runs.

The engine opens each instrument's feature stream on its stored 1m candles from the anchor, and keeps
them for the rare rewind (a late-tick or REST repair re-opens the stream on the history plus the
session's bars before the wrong one). As the candle repository returns it, that frame holds eleven
columns, three of them Python objects per row (the timeframe and source strings, the nullable ``oi``):
about 200 bytes a row, 300 KB for 1,500 bars and 4.5 MB for 60 sessions, per instrument.

:class:`StoredBars` keeps only what a rewind reads, one array per column, each in the narrowest form
that gives back every value bit for bit (:class:`Packed`, checked on every value when it is packed):

* the open instants as int32 minutes after the first bar (1m bars open on whole minutes), else int64 ns;
* the four prices as int32 paise when every price is a whole number of paise (every NSE tick size is),
  ``paise / 100`` being the float64 stored (an exact integer divided once rounds to the nearest double,
  which is the stored price); else float64;
* the volume as int32 when it fits, given back in the dtype it came in;
* ``oi`` and the book imbalance not at all when every row is NULL/NaN (REST history carries neither),
  else float64 (``oi`` NULL as NaN, exact below 2**53 contracts); the source as one byte per row.

About 25 bytes a row for REST history (it was 65 as plain float64 columns, plus the repository frame's
float block that views into it kept alive); :meth:`frame` and :meth:`candles` give back exactly the values
it was given (tested), so the re-opened stream and roll-ups are the ones the full frame gave. The arrays
are copies: nothing of the repository's frame outlives :meth:`StoredBars.of`.
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
# Decimal scales a float column may be held at as int32 (whole units, whole paise), tried in order.
_SCALES = (1.0, 100.0)


@dataclass(frozen=True, slots=True)
class Packed:
    """A float64 column of ``n`` values held as ``data / scale`` (int32) when that gives back every value
    bit for bit, as float64 otherwise (``scale == 0``), or not at all when every value is NaN (``data``
    is None)."""

    data: np.ndarray | None
    scale: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> Packed:
        v = np.asarray(values, dtype=np.float64)
        n = len(v)
        if n and np.isnan(v).all():
            return cls(None, 0.0, n)
        if n and np.isfinite(v).all():
            for scale in _SCALES:
                q = np.rint(v * scale)
                if np.abs(q).max() > _INT32.max:
                    continue
                held = q.astype(np.int32)
                if _same_bits(held.astype(np.float64) / scale, v):  # what values() gives back (-0.0 fails)
                    return cls(held, scale, n)
        return cls(np.array(v, dtype=np.float64), 0.0, n)  # a copy: no view into the caller's frame

    def values(self, stop: int | None = None) -> np.ndarray:
        """The first ``stop`` values (default all) as float64, the very bits packed."""
        k = self.n if stop is None else min(stop, self.n)
        if self.data is None:
            return np.full(k, np.nan)
        if self.scale == 0.0:
            return self.data[:k]
        return self.data[:k].astype(np.float64) / self.scale

    @property
    def nbytes(self) -> int:
        return 0 if self.data is None else int(self.data.nbytes)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


@dataclass(frozen=True, slots=True)
class StoredBars:
    """Stored 1m candles of one instrument (oldest first), packed per column; see the module doc."""

    start_ns: int  # UTC nanoseconds of the first bar's open instant (0 when empty)
    offsets: np.ndarray  # int32 minutes after start_ns, or int64 ns after it when not whole minutes
    minutes: bool  # whether ``offsets`` counts minutes
    open: Packed
    high: Packed
    low: Packed
    close: Packed
    volume: np.ndarray  # int32/int64/float64 as packed; ``volume_dtype`` is the dtype given back
    volume_dtype: np.dtype[np.generic]
    oi: Packed  # NaN where the stored value is NULL
    obi_5: Packed  # NaN where the candle carries no book
    source_codes: np.ndarray  # int8 index into ``sources``
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
        minutes = bool(n) and not (delta % _MINUTE_NS).any() and int(delta.max()) // _MINUTE_NS <= _INT32.max
        offsets = (delta // _MINUTE_NS).astype(np.int32) if minutes else np.array(delta, dtype=np.int64)

        def floats(name: str) -> np.ndarray:
            if name not in frame.columns:
                return np.full(n, np.nan)
            column: np.ndarray = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            return column

        volume = frame["volume"].to_numpy() if "volume" in frame.columns else np.zeros(n)
        if volume.dtype.kind not in "iuf":  # an empty or object column: the stream reads floats
            volume = floats("volume")
        volume_dtype = volume.dtype
        if volume.dtype.kind in "iu" and n and _INT32.min <= volume.min() and volume.max() <= _INT32.max:
            held_volume = volume.astype(np.int32)
        else:
            held_volume = np.array(volume)  # a copy: no view into the frame
        if "source" in frame.columns and n:
            codes, uniques = pd.factorize(frame["source"].astype(str))
            source_codes, sources = codes.astype(np.int8), tuple(str(u) for u in uniques)
        else:
            source_codes, sources = np.zeros(n, dtype=np.int8), ("historical",)
        return cls(
            start_ns=start,
            offsets=offsets,
            minutes=minutes,
            open=Packed.of(floats("open")),
            high=Packed.of(floats("high")),
            low=Packed.of(floats("low")),
            close=Packed.of(floats("close")),
            volume=held_volume,
            volume_dtype=volume_dtype,
            oi=Packed.of(floats("oi")),
            obi_5=Packed.of(floats("obi_5")),
            source_codes=source_codes,
            sources=sources,
        )

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        packed = (self.open, self.high, self.low, self.close, self.oi, self.obi_5)
        arrays = (self.offsets, self.volume, self.source_codes)
        return sum(p.nbytes for p in packed) + sum(int(a.nbytes) for a in arrays)

    def time_ns(self, stop: int | None = None) -> np.ndarray:
        """UTC nanoseconds of the first ``stop`` bars' open instants (default all)."""
        off = self.offsets[: len(self) if stop is None else stop].astype(np.int64)
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
                "volume": self.volume[:k].astype(self.volume_dtype),
                "oi": oi,
                "obi_5": self.obi_5.values(k),
                "source": np.asarray(self.sources, dtype=object)[self.source_codes[:k]],
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
        volume = self.volume[start:stop]
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
                    source=self.sources[int(self.source_codes[start + i])],
                )
            )
        return out


def _utc(ns: int) -> datetime:
    when: datetime = pd.Timestamp(ns, tz="UTC").to_pydatetime()
    return when
