"""An instrument's stored 1m history, held compactly while a live session runs.

The engine opens each instrument's feature stream on its stored 1m candles from the anchor, and keeps
them for the rare rewind (a late-tick or REST repair re-opens the stream on the history plus the
session's bars before the wrong one). As the candle repository returns it, that frame holds eleven
columns, three of them Python objects per row (the timeframe and source strings, the nullable ``oi``):
about 200 bytes a row, 300 KB for 1,500 bars and 4.5 MB for 60 sessions, per instrument.

:class:`StoredBars` keeps only what a rewind reads, one contiguous array per column: the open instant
(int64 ns, UTC), the four prices, the volume and the book imbalance as stored (float64: exact, they
feed the features), ``oi`` as float64 with NaN for NULL (exact below 2**53 contracts), and the source as
one byte per row. About 65 bytes a row; :meth:`frame` and :meth:`candles` give back exactly the values
it was given (tested), so the re-opened stream and roll-ups are the ones the full frame gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe

_PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class StoredBars:
    """Stored 1m candles of one instrument (oldest first) as column arrays; see the module doc."""

    time_ns: np.ndarray  # int64, UTC nanoseconds of each bar's open instant
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # as stored: int64 from the repository, float64 from a frame of floats
    oi: np.ndarray  # float64, NaN where the stored value is NULL
    obi_5: np.ndarray  # float64, NaN where the candle carries no book
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

        def floats(name: str) -> np.ndarray:
            if name not in frame.columns:
                return np.full(n, np.nan)
            return np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))

        volume = frame["volume"].to_numpy() if "volume" in frame.columns else np.zeros(n)
        if volume.dtype.kind not in "iuf":  # an empty or object column: the stream reads floats
            volume = floats("volume")
        if "source" in frame.columns and n:
            codes, uniques = pd.factorize(frame["source"].astype(str))
            source_codes, sources = codes.astype(np.int8), tuple(str(u) for u in uniques)
        else:
            source_codes, sources = np.zeros(n, dtype=np.int8), ("historical",)
        return cls(
            np.ascontiguousarray(time_ns, dtype=np.int64),
            floats("open"),
            floats("high"),
            floats("low"),
            floats("close"),
            np.ascontiguousarray(volume),
            floats("oi"),
            floats("obi_5"),
            source_codes,
            sources,
        )

    def __len__(self) -> int:
        return len(self.time_ns)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.time_ns, self.open, self.high, self.low, self.close, self.volume, self.oi, self.obi_5)
        return sum(a.nbytes for a in arrays) + self.source_codes.nbytes

    def before(self, t: datetime) -> int:
        """How many bars opened before ``t`` (tz-aware)."""
        return int(np.searchsorted(self.time_ns, pd.Timestamp(t).value, side="left"))

    def last_time(self) -> datetime | None:
        """Open instant of the newest bar (UTC), or None when empty."""
        return _utc(int(self.time_ns[-1])) if len(self) else None

    def frame(self, stop: int | None = None) -> pd.DataFrame:
        """The first ``stop`` bars (default all) as a candle frame: ``time`` (UTC), OHLCV, ``oi``
        (nullable Int64, as the repository returns it), ``obi_5`` and ``source``."""
        k = len(self) if stop is None else stop
        oi = pd.array(self.oi[:k], dtype="Float64").astype("Int64")  # NaN -> <NA>
        return pd.DataFrame(
            {
                "time": pd.to_datetime(self.time_ns[:k], utc=True),
                **{p: getattr(self, p)[:k] for p in _PRICES},
                "volume": self.volume[:k],
                "oi": oi,
                "obi_5": self.obi_5[:k],
                "source": np.asarray(self.sources, dtype=object)[self.source_codes[:k]],
            }
        )

    def candles(self, token: int, start: int, stop: int) -> list[Candle]:
        """Bars ``start:stop`` as 1m domain candles of ``token``."""
        out = []
        for i in range(max(0, start), stop):
            oi = float(self.oi[i])
            out.append(
                Candle(
                    instrument_token=token,
                    timeframe=Timeframe.M1,
                    time=_utc(int(self.time_ns[i])),
                    open=float(self.open[i]),
                    high=float(self.high[i]),
                    low=float(self.low[i]),
                    close=float(self.close[i]),
                    volume=int(self.volume[i]),
                    oi=None if oi != oi else int(oi),  # oi != oi: NaN, a NULL
                    source=self.sources[int(self.source_codes[i])],
                )
            )
        return out


def _utc(ns: int) -> datetime:
    when: datetime = pd.Timestamp(ns, tz="UTC").to_pydatetime()
    return when
