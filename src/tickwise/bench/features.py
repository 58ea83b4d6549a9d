"""`tickwise bench features`: batch throughput of the full feature set and live per-bar update cost.

Figures (one JSON-able dict):
- ``candles_per_s``: 1m candles per second for the first ``FeatureCalculator.compute`` on one
  instrument in the process (it faults in the ~1 GB output, which on a VM can dominate);
- ``candles_per_s_warm``: the median of ``batch_repeats`` further calls (steady state of a pipeline
  computing instrument after instrument, where freed pages are recycled);
- ``chunked_candles_per_s_first``: the same 1M candles as the historical pipeline computes them,
  instrument by instrument (``instrument_bars`` each, 60 sessions by default, each from its own
  anchor), through one reused :class:`SlotBuffer`; measured FIRST in the process, before anything
  else has touched that much memory; ``chunked_candles_per_s_warm`` is the median of repeats;
- ``talib_seconds`` / ``talib_share``: the same run's time spent in the bare 1m TA-Lib calls it wraps
  (timed separately on the same arrays); ``talib_calls`` counts them, ``native_talib`` the TA-Lib
  features computed in the numba step instead (``kernels.NATIVE_TALIB``);
- ``live_update_ms_1000``: wall time to update 1000 instrument streams with one closed bar each
  (median of several bars), and ``live_update_us_per_instrument``;
- ``bank_update_ms_1000``: the same live update through a :class:`FeatureBank`, the bars handed as rows
  (``update_many``, each row read on its own as a bar that is not a domain ``Bar`` is), then one
  compiled step for all instruments; ``bank_update_bars_cpu_ms_1000``: the same with domain ``Bar``
  objects (read field by field across the bars);
- ``bank_update_columns_cpu_ms_1000``: the path the live engine takes since its candle close hands the
  minute's bars over as columns (``update_columns``: the checks on the columns, the compiled step, the
  rows gathered), the figure for issue #14's live-update target, with its 90th percentile;
  ``bank_update_columns_ctx_close_cpu_ms_1000`` and ``bank_update_columns_other_minutes_cpu_ms_1000``
  split it as below; ``bank_update_columns_rows_equal``: whether every feature row of every minute
  stepped through columns has the bytes of the same minute stepped through rows;
  ``bank_update_columns_wall_ms_1000``: the same updates in wall time;
- ``bank_update_columns_threads``: the same updates of ``bank_threads_instruments`` streams (3,000: a
  minute a live shard splits into row blocks, ``FeatureBank.run_on``; 1,000 rows are not split) on one
  thread and on ``bank_threads`` threads (the shard's scoring threads): ``wall_ms`` and ``cpu_ms`` (all
  threads) per minute for each, medians, not per 1,000; ``rows_equal``: the same bytes both ways;
- ``bank_update_ctx_close_cpu_ms_1000``: CPU time of one bank update at a minute that closes a 5, a 15
  and a 60-minute context bar (10:14, 11:14 ... IST: the slow minute of the live loop before the context
  indicators were compiled), median over ``live_bars`` such minutes; the minutes stepped in between
  give ``bank_update_other_minutes_cpu_ms_1000`` (the same loop, so the two compare directly);
- ``*_cpu_*``: the same runs in process CPU time (on a shared machine wall time includes waiting);
The streams are forks (``FeatureStream.copy``) of one stream opened on ``live_history`` bars, so each
has its own TA-Lib handles and kernel state, as independent instruments would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import talib

from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator, SlotBuffer
from tickwise.core.features.kernels import NATIVE_TALIB
from tickwise.core.features.stream import epoch_minute
from tickwise.core.features.talib_catalog import TalibCall
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe

SESSION_BARS = 375


def synthetic_candles(n: int, seed: int = 1) -> pd.DataFrame:
    """``n`` session-aligned 1m candles (09:15-15:29 IST, weekdays) of a geometric random walk."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-01", periods=n // SESSION_BARS + 1)
    opens = (days + pd.Timedelta(hours=9, minutes=15) - pd.Timedelta(hours=5, minutes=30)).asi8
    minute_ns = 60_000_000_000
    t = (opens[:, None] + np.arange(SESSION_BARS)[None, :] * minute_ns).ravel()[:n]
    time_col = pd.to_datetime(t, utc=True).tz_convert("Asia/Kolkata")
    close = 1000.0 * np.exp(np.cumsum(rng.normal(0.0, 5e-4, n)))
    opn = np.r_[close[0], close[:-1]]
    high = np.maximum(opn, close) * np.exp(np.abs(rng.normal(0.0, 3e-4, n)))
    low = np.minimum(opn, close) * np.exp(-np.abs(rng.normal(0.0, 3e-4, n)))
    volume = np.round(rng.gamma(2.0, 800.0, n)) + 1.0
    obi = np.tanh(rng.normal(0.0, 0.5, n))
    return pd.DataFrame(
        {
            "time": time_col,
            "open": opn,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "obi_5": obi,
        }
    )


def _bare_talib_seconds(candles: pd.DataFrame, calls: tuple[TalibCall, ...]) -> float:
    cols = {c: candles[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}
    start = time.perf_counter()
    for call in calls:
        getattr(talib, call.func)(*[cols[i] for i in call.inputs], **call.params)
    return time.perf_counter() - start


def _chunked(calc: FeatureCalculator, chunks: list[pd.DataFrame], buffer: SlotBuffer) -> tuple[float, float]:
    """Wall and CPU seconds to compute every chunk (one instrument each) through ``buffer``."""
    start, cpu0 = time.perf_counter(), time.process_time()
    for chunk in chunks:
        frame = calc.compute(chunk, buffer=buffer)
        del frame  # the pipeline writes it here, before the next instrument reuses the buffer
    return time.perf_counter() - start, time.process_time() - cpu0


def _context_close_rows(candles: pd.DataFrame, start: int, count: int) -> list[int]:
    """The first ``count`` rows from ``start`` whose minute closes an hour of the session (09:15-aligned
    minute 59, 119, ...): with the default timeframes they close a 5, a 15 and a 60-minute bar."""
    t = candles["time"].dt.tz_convert("Asia/Kolkata")
    since_open = (t.dt.hour * 60 + t.dt.minute - (9 * 60 + 15)).to_numpy()
    rows = np.flatnonzero((since_open % 60 == 59) & (np.arange(len(candles)) >= start))
    return [int(r) for r in rows[:count]]


def _bank_minutes_cpu_ms(
    calc: FeatureCalculator,
    base: Any,
    candles: pd.DataFrame,
    start: int,
    timed: list[int],
    instruments: int,
    *,
    columns: bool = False,
    threads: int = 1,
    wall_ms: list[float] | None = None,
) -> tuple[list[float], list[float], bytes]:
    """CPU ms of each bank update of ``instruments`` streams (forks of ``base``) from row ``start`` to the
    last of ``timed``: those at ``timed`` rows, and the others; and a digest of the bytes of every feature
    row the updates gave (the two ways of handing the bars over must give the same). ``columns``: each
    minute's bars handed over as the live engine hands them (``update_columns``, the columns built before
    the clock starts), else as rows (``update_many``). ``threads``: the bank steps in blocks on that many
    threads; ``wall_ms``: given, each update's wall ms is appended to it."""
    bank = FeatureBank(calc.layout, capacity=instruments)
    for key in range(instruments):
        bank.attach(key, base.copy())
    with ThreadPoolExecutor(max(threads - 1, 1), thread_name_prefix="bench-bank") as pool:
        bank.run_on(threads, pool if threads > 1 else None)
        return _bank_minutes(bank, candles, start, timed, instruments, columns, wall_ms)


def _bank_minutes(
    bank: FeatureBank,
    candles: pd.DataFrame,
    start: int,
    timed: list[int],
    instruments: int,
    columns: bool,
    wall_ms: list[float] | None,
) -> tuple[list[float], list[float], bytes]:
    keys = list(range(instruments))
    wanted = set(timed)
    at_close: list[float] = []
    others: list[float] = []
    digest = hashlib.sha256()
    for row, bar in enumerate(candles.iloc[start : timed[-1] + 1].itertuples(index=False), start=start):
        if columns:
            times = [bar.time] * instruments
            t_min = np.full(instruments, epoch_minute(bar.time), dtype=np.int64)
            values = np.tile(
                np.array([bar.open, bar.high, bar.low, bar.close, bar.volume, bar.obi_5], dtype=np.float64),
                (instruments, 1),
            )
            cpu0, wall0 = time.process_time(), time.perf_counter()
            rows, _ = bank.update_columns(keys, times, t_min, values)
        else:
            same = [bar] * instruments
            cpu0, wall0 = time.process_time(), time.perf_counter()
            rows, _ = bank.update_many(keys, same)
        (at_close if row in wanted else others).append((time.process_time() - cpu0) * 1e3)
        if wall_ms is not None:
            wall_ms.append((time.perf_counter() - wall0) * 1e3)
        digest.update(np.ascontiguousarray(rows).tobytes())
    return at_close, others, digest.digest()


def run_features_bench(
    n_candles: int = 1_000_000,
    instruments: int = 1000,
    live_history: int = 3000,
    live_bars: int = 5,
    batch_repeats: int = 2,
    instrument_bars: int = 60 * SESSION_BARS,
    bank_threads: int = 2,
    bank_threads_instruments: int = 3000,
) -> dict[str, Any]:
    """Measure batch throughput on ``n_candles`` and one live update of ``instruments`` streams
    (the bank's also for ``bank_threads_instruments`` streams on ``bank_threads`` threads)."""
    if bank_threads < 2:
        raise ValueError(
            f"bank_threads is the threaded figure's thread count (2 or more), got {bank_threads}"
        )
    calc = FeatureCalculator()
    candles = synthetic_candles(max(n_candles, live_history + 60 * live_bars + 60))
    batch_in = candles.iloc[:n_candles]
    calc.compute(batch_in.iloc[:5000])  # compile / load the numba kernels outside the timing

    # First in the process: instrument-sized chunks through one reused buffer (module doc).
    chunks = [
        batch_in.iloc[i : i + instrument_bars].reset_index(drop=True)
        for i in range(0, n_candles, instrument_bars)
    ]
    buffer = SlotBuffer()
    chunk_s, chunk_cpu = _chunked(calc, chunks, buffer)
    chunk_warm = [_chunked(calc, chunks, buffer) for _ in range(batch_repeats)]
    chunk_warm_s = float(np.median([w for w, _ in chunk_warm])) if chunk_warm else chunk_s
    buffer_mb = buffer.nbytes / 1e6
    del buffer

    start, cpu0 = time.perf_counter(), time.process_time()
    frame = calc.compute(batch_in)
    batch_s, batch_cpu = time.perf_counter() - start, time.process_time() - cpu0
    del frame
    warm_s, warm_cpu = [], []
    for _ in range(batch_repeats):
        start, cpu0 = time.perf_counter(), time.process_time()
        frame = calc.compute(batch_in)
        warm_s.append(time.perf_counter() - start)
        warm_cpu.append(time.process_time() - cpu0)
        del frame
    talib_s = _bare_talib_seconds(batch_in, calc.layout.talib_1m)
    warm_med = float(np.median(warm_s)) if warm_s else batch_s
    warm_cpu_med = float(np.median(warm_cpu)) if warm_cpu else batch_cpu

    base = calc.open_stream(candles.iloc[:live_history])
    streams = [base.copy() for _ in range(instruments)]
    bars = list(candles.iloc[live_history : live_history + live_bars].itertuples(index=False))
    per_bar_ms, per_bar_cpu_ms = [], []
    for bar in bars:
        start, cpu0 = time.perf_counter(), time.process_time()
        for s in streams:
            s.update(bar)
        per_bar_ms.append((time.perf_counter() - start) * 1e3)
        per_bar_cpu_ms.append((time.process_time() - cpu0) * 1e3)
    live_ms = float(np.median(per_bar_ms))
    live_cpu_ms = float(np.median(per_bar_cpu_ms))

    # The same update through a FeatureBank: one compiled step for all instruments (side by side).
    bank = FeatureBank(calc.layout, capacity=instruments)
    for key in range(instruments):
        bank.attach(key, base.copy())
    keys = list(range(instruments))
    bank_ms, bank_cpu_ms = [], []
    for bar in bars:
        same = [bar] * instruments
        start, cpu0 = time.perf_counter(), time.process_time()
        bank.update_many(keys, same)
        bank_ms.append((time.perf_counter() - start) * 1e3)
        bank_cpu_ms.append((time.process_time() - cpu0) * 1e3)
    bank_live_ms = float(np.median(bank_ms))
    bank_live_cpu_ms = float(np.median(bank_cpu_ms))
    # The same again with the bars as the live engine hands them (domain Bars, read as arrays).
    live_bank = FeatureBank(calc.layout, capacity=instruments)
    for key in range(instruments):
        live_bank.attach(key, base.copy())
    bars_cpu_ms = []
    for bar in bars:
        candle = Candle(
            0, Timeframe.M1, pd.Timestamp(bar.time).to_pydatetime(), float(bar.open), float(bar.high),
            float(bar.low), float(bar.close), int(bar.volume), source="live",
        )  # fmt: skip
        minute = [Bar(dataclasses.replace(candle, instrument_token=k), float(bar.obi_5)) for k in keys]
        cpu0 = time.process_time()
        live_bank.update_many(keys, minute)
        bars_cpu_ms.append((time.process_time() - cpu0) * 1e3)
    bank_bars_cpu_ms = float(np.median(bars_cpu_ms))
    # Minutes that close 5, 15 and 60-minute bars, and the minutes between them, in one loop.
    closing = _context_close_rows(candles, live_history, live_bars)
    at_close, others, rows_digest = _bank_minutes_cpu_ms(
        calc, base, candles, live_history, closing, instruments
    )
    col_wall: list[float] = []
    col_close, col_others, col_digest = _bank_minutes_cpu_ms(
        calc, base, candles, live_history, closing, instruments, columns=True, wall_ms=col_wall
    )
    col_every = col_close + col_others
    # A minute large enough to split (3,000 rows), on one thread and on ``bank_threads`` threads in row
    # blocks, as a live shard with that many scoring threads steps it.
    threaded: dict[str, Any] = {"instruments": bank_threads_instruments}
    digests = []
    for threads in (1, bank_threads):
        wall: list[float] = []
        close, other, digest = _bank_minutes_cpu_ms(
            calc, base, candles, live_history, closing, bank_threads_instruments, columns=True,
            threads=threads, wall_ms=wall,
        )  # fmt: skip
        threaded[f"wall_ms_threads{threads}"] = round(float(np.median(wall)), 3)
        threaded[f"cpu_ms_threads{threads}"] = round(float(np.median(close + other)), 3)
        digests.append(digest)
    threaded["rows_equal"] = digests[0] == digests[1]
    per_1000 = 1000 / instruments
    return {
        "feature_set": calc.feature_set,
        "features": len(calc.names),
        "n_candles": n_candles,
        "batch_seconds": round(batch_s, 4),
        "candles_per_s": round(n_candles / batch_s),
        "batch_cpu_seconds": round(batch_cpu, 4),
        "candles_per_cpu_s": round(n_candles / batch_cpu),
        "batch_seconds_warm": round(warm_med, 4),
        "candles_per_s_warm": round(n_candles / warm_med),
        "candles_per_cpu_s_warm": round(n_candles / warm_cpu_med),
        "instrument_bars": instrument_bars,
        "chunks": len(chunks),
        "chunked_seconds_first": round(chunk_s, 4),
        "chunked_candles_per_s_first": round(n_candles / chunk_s),
        "chunked_candles_per_cpu_s_first": round(n_candles / chunk_cpu),
        "chunked_candles_per_s_warm": round(n_candles / chunk_warm_s),
        "slot_buffer_mb": round(buffer_mb, 1),
        "talib_seconds": round(talib_s, 4),
        "talib_share": round(talib_s / batch_s, 3),
        "talib_calls": len(calc.layout.talib_1m),
        "native_talib": len(NATIVE_TALIB),
        "instruments": instruments,
        "live_update_ms_1000": round(live_ms * 1000 / instruments, 3),
        "live_update_us_per_instrument": round(live_ms * 1e3 / instruments, 2),
        "live_update_cpu_ms_1000": round(live_cpu_ms * 1000 / instruments, 3),
        "live_update_ms_samples": [round(x, 3) for x in per_bar_ms],
        "bank_update_ms_1000": round(bank_live_ms * 1000 / instruments, 3),
        "bank_update_cpu_ms_1000": round(bank_live_cpu_ms * 1000 / instruments, 3),
        "bank_update_ms_samples": [round(x, 3) for x in bank_ms],
        "bank_update_bars_cpu_ms_1000": round(bank_bars_cpu_ms * 1000 / instruments, 3),
        "bank_update_ctx_close_cpu_ms_1000": round(float(np.median(at_close)) * 1000 / instruments, 3),
        "bank_update_ctx_close_cpu_ms_samples": [round(x, 3) for x in at_close],
        "bank_update_other_minutes_cpu_ms_1000": round(float(np.median(others)) * 1000 / instruments, 3),
        # The live engine's own path (columns): every minute stepped, those closing context bars, the rest;
        # and whether it gave the very rows of the rows path.
        "bank_update_columns_rows_equal": col_digest == rows_digest,
        "bank_update_columns_cpu_ms_1000": round(float(np.median(col_every)) * 1000 / instruments, 3),
        "bank_update_columns_cpu_ms_p90_1000": round(
            float(np.percentile(col_every, 90)) * 1000 / instruments, 3
        ),
        "bank_update_columns_ctx_close_cpu_ms_1000": round(
            float(np.median(col_close)) * 1000 / instruments, 3
        ),
        "bank_update_columns_other_minutes_cpu_ms_1000": round(
            float(np.median(col_others)) * 1000 / instruments, 3
        ),
        "bank_update_columns_wall_ms_1000": round(float(np.median(col_wall)) * per_1000, 3),
        "bank_update_columns_threads": threaded,
        "target_candles_per_s": 1_000_000,
        "target_live_ms": 3.0,  # issue #14: live update of 1,000 instruments
    }
