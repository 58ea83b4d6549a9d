"""The simulated market of `tickwise bench live`, built in a process of its own.

A live shard holds its engine, its feed's current frame and its libraries; it never holds a simulated
market. When the bench built the market in the process that runs the engine, that process's resident
memory also held the market's imports (the simulator, ``scipy.signal``), its price paths and the allocator
pages they left behind after release (about 65 MB per 1,000 instruments, docs/benchmarks.md), and every
encoded frame of the replay at once, so its RSS was not a shard's (the fifth session could only derive a
shard's figure by subtraction).

:func:`prepare_market` builds the same market, the same stored histories and the same frames as before
(the functions of :mod:`tickwise.bench.live` do the work) and writes them to two scratch files:

* the histories: one float64 block per instrument (open, high, low, close, volume x bars), every
  instrument on the same bar instants, read back one instrument at a time (:meth:`MarketFiles.history`)
  as the engine opens it, as a shard reads each instrument's stored candles from the database;
* the frames: the encoded Kite frames back to back, read back one at a time while they are replayed
  (:class:`FrameFile`), as a shard holds the frame it is decoding.

With ``in_child`` (the default) that runs in a spawned child, so the replay process imports, allocates and
frees none of it: its RSS is the engine process's. Without it (``--market-in-process``, the fifth
session's layout, kept so the old rows stay comparable) it runs in the replay process and the frames are
held in memory, as before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The columns of a history block, in order (times are shared by all instruments and kept once).
HISTORY_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class FrameFile:
    """The replay's encoded frames in a file: ``(exchange second, frame bytes)`` read one at a time."""

    path: Path
    index: tuple[tuple[datetime, int, int], ...]  # (exchange second, offset, length) per frame

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[tuple[datetime, bytes]]:
        with self.path.open("rb") as f:
            for second, offset, length in self.index:
                f.seek(offset)
                yield second, f.read(length)


@dataclass(frozen=True)
class MarketFiles:
    """What :func:`prepare_market` produced: the instruments, the model and the files of the replay."""

    tokens: tuple[int, ...]
    model_strings: dict[int, tuple[str, str | None]]  # side -> (LightGBM model text, probe digest)
    label_spec: dict[str, Any]
    train_rows: int
    train_s: float  # the model's training, in the market's process
    n_ticks: int
    history_path: Path
    history_times_ns: np.ndarray  # the bar instants every instrument's history shares (UTC ns)
    frames: FrameFile

    def history(self, position: int) -> pd.DataFrame:
        """The stored history of ``tokens[position]``, as :func:`tickwise.bench.live.history_frame`
        returned it (the very values: written and read back as float64)."""
        n = len(self.history_times_ns)
        width = len(HISTORY_COLUMNS) * n
        with self.history_path.open("rb") as f:
            f.seek(position * width * 8)
            block = np.fromfile(f, dtype=np.float64, count=width).reshape(len(HISTORY_COLUMNS), n)
        return history_from_block(self.history_times_ns, block)


def history_from_block(times_ns: np.ndarray, block: np.ndarray) -> pd.DataFrame:
    """A history frame of the shape :func:`tickwise.bench.live.history_frame` builds."""
    return pd.DataFrame(
        {
            "time": pd.to_datetime(times_ns, utc=True),
            **{name: np.array(block[i], dtype=np.float64) for i, name in enumerate(HISTORY_COLUMNS)},
            "oi": None,
            "obi_5": np.nan,  # candles backfilled through REST carry no book
        }
    )


def prepare_market(
    directory: Path,
    *,
    instruments: int,
    seed: int,
    shard: tuple[int, int] | None,
    hist_days: list[date],
    frames_after: datetime,
    frames_until: datetime,
    in_child: bool = True,
) -> tuple[MarketFiles, list[tuple[datetime, bytes]] | None]:
    """Build the market and its files in ``directory``; in a spawned child unless ``in_child`` is False.

    Returns the files and, without ``in_child``, the frames read into memory (the fifth session's layout).
    """
    args = (directory, instruments, seed, shard, hist_days, frames_after, frames_until)
    if not in_child:
        files = _build(*args)
        return files, list(files.frames)
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_build, *args).result(), None


def _build(
    directory: Path,
    instruments: int,
    seed: int,
    shard: tuple[int, int] | None,
    hist_days: list[date],
    frames_after: datetime,
    frames_until: datetime,
) -> MarketFiles:
    """The market's work (in the child): the model, the histories and the frames, to files."""
    from tickwise.adapters.kite.simulator.market import Market
    from tickwise.adapters.kite.simulator.universe import Universe
    from tickwise.bench.live import (
        MARKET_DAY,
        PRODUCTION_ROUNDS,
        SHIFT,
        _frames,
        _train_model_strings,
        history_frame,
    )
    from tickwise.core.labels.spec import LabelSpec
    from tickwise.pipelines.live.shards import shard_tokens

    universe = Universe(instruments, today=MARKET_DAY)
    tokens = [m.token for m in universe.equities][:instruments]
    if shard is not None:  # this process replays one shard's instruments (run_sharded_live_bench)
        tokens = list(shard_tokens(tokens, *shard))
    train_tokens = tokens[: min(8, len(tokens))]
    t_train = time.perf_counter()
    strings, train_rows = _train_model_strings(instruments, seed, train_tokens, hist_days, PRODUCTION_ROUNDS)
    train_s = time.perf_counter() - t_train
    # A small path cache: as before, the market keeps at most 64 instruments' paths at a time.
    market = Market(universe, seed=seed, cache_size=64)
    history_path = directory / "histories.f64"
    times_ns = np.empty(0, dtype=np.int64)
    with history_path.open("wb") as f:
        for token in tokens:
            frame = history_frame(market, token, hist_days, SHIFT)
            times = frame["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
            if not len(times_ns):
                times_ns = times.copy()
            elif not np.array_equal(times, times_ns):  # the file format relies on shared instants
                raise ValueError("the bench's histories must share their bar instants")
            block = np.stack([frame[c].to_numpy(dtype=np.float64) for c in HISTORY_COLUMNS])
            block.tofile(f)
    frames, n_ticks = _frames(market, tokens, frames_after, frames_until, SHIFT)
    frames_path = directory / "frames.bin"
    index: list[tuple[datetime, int, int]] = []
    offset = 0
    with frames_path.open("wb") as f:
        for second, frame_bytes in frames:
            f.write(frame_bytes)
            index.append((second, offset, len(frame_bytes)))
            offset += len(frame_bytes)
        f.flush()
        os.fsync(f.fileno())
    return MarketFiles(
        tokens=tuple(tokens),
        model_strings=strings,
        label_spec=LabelSpec().to_dict(),
        train_rows=train_rows,
        train_s=train_s,
        n_ticks=n_ticks,
        history_path=history_path,
        history_times_ns=times_ns,
        frames=FrameFile(frames_path, tuple(index)),
    )


__all__: Sequence[str] = ("FrameFile", "MarketFiles", "history_from_block", "prepare_market")
