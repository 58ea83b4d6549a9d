"""One instrument's derive (roll-ups, features, labels): the unit a derive task runs, inline or in a
``compute.scheduler`` worker.

Kept apart from ``run.py`` so a derive worker imports only what the derive needs: not the training,
out-of-sample and prediction steps, and with them LightGBM and scikit-learn (issue 14: about 1 CPU-s
per worker).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tickwise.core.candle_flags import CandleCheckConfig, exclude_labels
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.chunked import ChunkedFeatures
from tickwise.core.labels import LabelSpec
from tickwise.core.labels.chunked import label_chunks
from tickwise.core.timeframe_features import calculator_for
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.backfill import IntegrityReport, integrity_report
from tickwise.pipelines.historical.build_features import build_features
from tickwise.pipelines.historical.build_labels import build_labels, flags_on
from tickwise.pipelines.historical.candle_checks import FlagCounts
from tickwise.pipelines.historical.date_chunks import session_cuts as chunk_bounds
from tickwise.pipelines.historical.rollups import roll_up
from tickwise.ports.repositories import CandleRepository, FeatureRepository, LabelRepository

if TYPE_CHECKING:  # the options only name what a spec is made of: their import brings the trainers
    from tickwise.pipelines.historical.options import HistoricalOptions

__all__ = ["DeriveJob", "DeriveSpec", "InstrumentDerived", "add_integrity", "derive_instrument"]


@dataclass(frozen=True)
class DeriveSpec:
    """What derive computes (from ``HistoricalOptions``): plain and picklable, so a task on another
    process or machine computes exactly what this one would."""

    timeframes: tuple[Timeframe, ...]
    signal_timeframe: Timeframe
    label_spec: LabelSpec
    signal_timeframes: tuple[Timeframe, ...] = ()  # all of them, the primary first (empty: the primary)
    chunk_sessions: int = 40  # sessions per chunk of one instrument's history (compute.chunk_sessions)

    @classmethod
    def of(cls, options: HistoricalOptions) -> DeriveSpec:
        return cls(
            tuple(options.timeframes),
            options.signal_timeframe,
            options.label_spec,
            options.all_signal_timeframes,
            options.chunk_sessions,
        )


@dataclass(frozen=True)
class DeriveJob:
    """One instrument's derive task: its stored history from the anchor, chunk after chunk."""

    instrument: Instrument
    first_day: date | None
    last_day: date | None
    # The candle checks' flags of the 1m bars (``candle_checks``), when the quality policy is on: the
    # labels leave out the bars it excludes.
    flags: pd.DataFrame | None = None
    # Or the checks' thresholds, when the task checks the candles itself (a pool worker: the checks
    # then run on every core too) and writes the flags before it derives.
    check: CandleCheckConfig | None = None


@dataclass(frozen=True)
class InstrumentDerived:
    """What one instrument's derive task wrote (and the integrity of its 1m candles)."""

    token: int
    integrity: IntegrityReport | None
    rollup_rows: dict[str, int]
    feature_rows: int
    label_rows: int
    rollup_seconds: float
    chunks: int = 1
    # What the task's own candle checks flagged (``DeriveJob.check``): the counts, and each
    # (check, action, bars) for the hooks of the process that merges the results.
    flag_counts: FlagCounts | None = None
    flagged: tuple[tuple[str, str, int], ...] = ()


def _days_of(start: datetime | None, end: datetime | None, job: DeriveJob) -> tuple[date, date] | None:
    """The job's integrity window cut to one chunk (None when the job has none)."""
    if job.first_day is None or job.last_day is None:
        return None
    lo = job.first_day if start is None else max(job.first_day, start.astimezone(IST).date())
    hi = job.last_day if end is None else min(job.last_day, (end - timedelta(days=1)).astimezone(IST).date())
    return lo, hi


def add_integrity(total: IntegrityReport, part: IntegrityReport) -> None:
    total.sessions += part.sessions
    total.complete_sessions += part.complete_sessions
    total.partial_sessions += part.partial_sessions
    total.empty_sessions += part.empty_sessions
    total.invalid_candles += part.invalid_candles


async def _write_new_features(
    token: int,
    frame: pd.DataFrame,
    calc: FeatureCalculator,
    feature_repo: FeatureRepository,
    start: datetime | None,
    end: datetime | None,
) -> int:
    """Write the chunk's rows newer than the newest row already stored in the chunk (resumable)."""
    stored = await feature_repo.read_frame(token, Timeframe.M1, calc.feature_set, start, end, columns=[])
    if len(stored):
        frame = frame[pd.DatetimeIndex(frame["time"]) > pd.DatetimeIndex(stored["time"]).max()]
    if frame.empty:
        return 0
    frame.insert(0, "timeframe", str(Timeframe.M1))
    frame.insert(0, "instrument_token", token)
    return int(await feature_repo.add_frame(frame, calc.feature_set))


async def _write_labels(
    token: int,
    history: pd.DataFrame,
    starts: list[int],
    spec: DeriveSpec,
    label_repo: LabelRepository,
    calendar: SessionCalendar,
    flags: pd.DataFrame | None,
) -> int:
    """Both sides' labels chunk by chunk (``core.labels.chunked``: equal to one pass over the history);
    a chunk whose newest event is stored on both sides is skipped (resumable, idempotent)."""
    written = 0
    for frame in label_chunks(
        history, starts, spec.label_spec, Timeframe.M1, calendar, instrument_token=token
    ):
        if flags is not None:
            frame = exclude_labels(frame, flags)
        if frame.empty:
            continue
        stored = await label_repo.read_frame(token, Timeframe.M1, pd.Timestamp(frame["time"].max()), None)
        if len(stored) >= 2:
            continue
        written += int(await label_repo.add_frame(frame))
    return written


async def _derive_chunked(
    candle_repo: CandleRepository,
    feature_repo: FeatureRepository,
    label_repo: LabelRepository,
    calendar: SessionCalendar,
    spec: DeriveSpec,
    job: DeriveJob,
) -> InstrumentDerived:
    """The 1m signal timeframe, one chunk of ``spec.chunk_sessions`` sessions at a time.

    Each chunk is read, rolled up (sessions never span chunks), and its features are computed from the
    previous chunk's carry (``core.features.chunked``: bit-identical to one pass from the anchor) and
    written; then the chunk's frames are dropped. The labels come last, from the carried 1m inputs, in
    the same chunks (``core.labels.chunked``: their ATR runs from the anchor and their weights are
    normalised over the whole history, so they equal the single pass too).
    """
    token = job.instrument.instrument_token
    first = await candle_repo.first_time(token, Timeframe.M1)
    last = await candle_repo.last_time(token, Timeframe.M1)
    integrity = IntegrityReport() if job.first_day and job.last_day else None
    rollup_rows: dict[str, int] = {}
    feature_rows = label_rows = chunks = 0
    rollup_seconds = 0.0
    calc = FeatureCalculator()
    chunked = ChunkedFeatures(calc)
    carry = chunked.start()
    times: list[pd.DatetimeIndex] = []
    cuts: list[datetime | None] = []
    if first is not None and last is not None:
        cuts = [None, *chunk_bounds(first, last, spec.chunk_sessions, calendar), None]
    elif integrity is not None and job.first_day and job.last_day:
        empty = await candle_repo.read_frame(token, Timeframe.M1, None, None)
        add_integrity(integrity, integrity_report(empty, [token], job.first_day, job.last_day, calendar))
    for start, end in itertools.pairwise(cuts):
        candles = await candle_repo.read_frame(token, Timeframe.M1, start, end)
        days = _days_of(start, end, job)
        if integrity is not None and days is not None:
            add_integrity(integrity, integrity_report(candles, [token], days[0], days[1], calendar))
        if candles.empty:
            continue
        chunks += 1
        began = time.perf_counter()
        for tf, n in (await roll_up(candles, spec.timeframes, candle_repo, calendar)).items():
            rollup_rows[str(tf)] = rollup_rows.get(str(tf), 0) + n
        rollup_seconds += time.perf_counter() - began
        frame, carry = chunked.compute(candles.reset_index(drop=True), carry)
        feature_rows += await _write_new_features(token, frame, calc, feature_repo, start, end)
        times.append(pd.DatetimeIndex(candles["time"]))
        del frame, candles
    if carry.bars:
        history = pd.DataFrame(dict(zip(("open", "high", "low", "close"), carry.inputs[:4], strict=True)))
        history.insert(0, "time", times[0].append(times[1:]) if len(times) > 1 else times[0])
        starts = np.cumsum([0, *(len(t) for t in times[:-1])]).tolist()
        label_rows = await _write_labels(token, history, starts, spec, label_repo, calendar, job.flags)
    return InstrumentDerived(
        token=token,
        integrity=integrity,
        rollup_rows=rollup_rows,
        feature_rows=feature_rows,
        label_rows=label_rows,
        rollup_seconds=rollup_seconds,
        chunks=chunks,
    )


async def derive_instrument(
    candle_repo: CandleRepository,
    feature_repo: FeatureRepository,
    label_repo: LabelRepository,
    calendar: SessionCalendar,
    spec: DeriveSpec,
    job: DeriveJob,
) -> InstrumentDerived:
    """Integrity check, roll-ups, then features and labels of one instrument for every signal timeframe
    (the unit a task runs).

    With the 1m primary timeframe (the default) the 1m history is derived in chunks of
    ``spec.chunk_sessions`` sessions, so a task's memory is bounded by the chunk, not the history; the
    5m/15m signal timeframes then read the roll-ups just written (5 and 15 times fewer bars), each with
    its own calculator (``core.timeframe_features``), and their labels leave out the events whose window
    holds an excluded 1m bar."""

    async def labels_of(token: int, base: pd.DataFrame, timeframe: Timeframe) -> int:
        flags = flags_on(job.flags, timeframe, calendar)
        labelled = await build_labels(
            token, base, spec.label_spec, label_repo, timeframe, calendar, flags=flags
        )
        return labelled.written

    if spec.signal_timeframe is Timeframe.M1:
        part = await _derive_chunked(candle_repo, feature_repo, label_repo, calendar, spec, job)
        token = job.instrument.instrument_token
        feature_rows, label_rows = part.feature_rows, part.label_rows
        for timeframe in spec.signal_timeframes:
            if timeframe is Timeframe.M1:
                continue
            base = await candle_repo.read_frame(token, timeframe, None, None)
            written = await build_features(token, base, calculator_for(timeframe), feature_repo, timeframe)
            feature_rows += written.written
            label_rows += await labels_of(token, base, timeframe)
        return replace(part, feature_rows=feature_rows, label_rows=label_rows)
    token = job.instrument.instrument_token
    candles = await candle_repo.read_frame(token, Timeframe.M1, None, None)
    integrity = None
    if job.first_day and job.last_day:
        integrity = integrity_report(candles, [token], job.first_day, job.last_day, calendar)
    began = time.perf_counter()
    rollup_rows = await roll_up(candles, spec.timeframes, candle_repo, calendar)
    rollup_seconds = time.perf_counter() - began
    feature_rows = label_rows = 0
    for timeframe in spec.signal_timeframes or (spec.signal_timeframe,):
        base = (
            candles
            if timeframe is Timeframe.M1
            else await candle_repo.read_frame(token, timeframe, None, None)
        )
        if timeframe is Timeframe.M1 or timeframe in spec.signal_timeframes:
            calculator = FeatureCalculator() if timeframe is Timeframe.M1 else calculator_for(timeframe)
            feature_rows += (await build_features(token, base, calculator, feature_repo, timeframe)).written
        label_rows += await labels_of(token, base, timeframe)
    return InstrumentDerived(
        token=token,
        integrity=integrity,
        rollup_rows={str(tf): n for tf, n in rollup_rows.items()},
        feature_rows=feature_rows,
        label_rows=label_rows,
        rollup_seconds=rollup_seconds,
    )
