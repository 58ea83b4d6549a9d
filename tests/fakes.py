"""Shared fakes for the ports (``InMemory<Role>`` stores, ``Fake<Role>`` sources, ``Recording<Role>``).

Each fake implements its ``tickwise.ports`` protocol with plain Python containers, so pipeline tests run
without a database, a broker or MLflow and without mocks. They keep the contract's semantics that
pipelines rely on (key uniqueness with ``on_conflict``, ``start <= time < end`` ranges, oldest first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.candle import Candle
from tickwise.domain.errors import ModelError, StorageError
from tickwise.domain.instrument import Instrument
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.options import HistoricalOptions
from tickwise.ports.model_events import ModelEvent, StatusChange
from tickwise.ports.model_store import ModelStore
from tickwise.ports.repositories import (
    FeatureMatrix,
    ModelRecord,
    ModelRepository,
    ModelStatus,
    OnConflict,
)

CANDLE_COLUMNS = [
    "instrument_token",
    "timeframe",
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "oi",
    "source",
]


# --- time -----------------------------------------------------------------------------------------


class FakeClock:
    """``ports.Clock`` (``now``, ``monotonic``) plus an ``async sleep`` that advances time instantly.

    ``sleeps`` records every requested sleep; ``advance`` moves both scales together.
    """

    def __init__(self, start: float = 0.0, at: datetime | None = None) -> None:
        self.monotonic_now = start
        self.wall = at or datetime(2026, 1, 5, 3, 45, tzinfo=UTC)  # 09:15 IST
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.monotonic_now

    def advance(self, seconds: float) -> None:
        self.monotonic_now += seconds
        self.wall += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


# --- broker sources ---------------------------------------------------------------------------------


class FakeInstrumentSource:
    """``ports.InstrumentSource`` over a fixed dump."""

    def __init__(self, dump: Sequence[Instrument]) -> None:
        self.dump = list(dump)

    async def instruments(self, exchange: str | None = None) -> list[Instrument]:
        return [i for i in self.dump if exchange is None or i.exchange == exchange]


FrameMaker = Callable[[int, datetime, datetime], pd.DataFrame]


class FakeHistoricalSource:
    """``ports.HistoricalSource`` whose candles come from ``make_frame(token, start, end)``; records calls."""

    def __init__(self, make_frame: FrameMaker) -> None:
        self.make_frame = make_frame
        self.calls: list[tuple[int, datetime, datetime]] = []

    async def historical_frame(
        self, instrument_token: int, interval: Timeframe | str, start: datetime | date, end: datetime | date
    ) -> pd.DataFrame:
        assert isinstance(start, datetime) and isinstance(end, datetime)
        self.calls.append((instrument_token, start, end))
        return self.make_frame(instrument_token, start, end)


# --- repositories -----------------------------------------------------------------------------------


def _in_range(times: pd.Series, start: datetime | None, end: datetime | None) -> pd.Series:
    ok = pd.Series(True, index=times.index)
    if start is not None:
        ok &= times >= pd.Timestamp(start)
    if end is not None:
        ok &= times < pd.Timestamp(end)
    return ok


class _FrameTable:
    """Rows keyed by ``key`` columns; ``add`` honours ``on_conflict`` like the Timescale upserts."""

    def __init__(self, key: Sequence[str]) -> None:
        self.key = list(key)
        self.rows: dict[tuple[object, ...], dict[str, object]] = {}

    def add(self, frame: pd.DataFrame, on_conflict: OnConflict) -> int:
        written = 0
        for record in frame.to_dict("records"):
            row = {str(k): v for k, v in record.items()}
            if "time" in row:
                row["time"] = pd.Timestamp(row["time"]).tz_convert("UTC")
            key = tuple(row[k] for k in self.key)
            if key in self.rows and on_conflict == "nothing":
                continue
            self.rows[key] = {**self.rows.get(key, {}), **row}
            written += 1
        return written

    def frame(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(list(self.rows.values()))
        if frame.empty:
            return pd.DataFrame(columns=list(columns or self.key))
        frame = frame.sort_values([*self.key[:1], "time"] if "time" in frame else self.key, kind="mergesort")
        return (
            frame.reset_index(drop=True)
            if columns is None
            else frame.loc[:, list(columns)].reset_index(drop=True)
        )


class InMemoryInstrumentRepository:
    """``ports.InstrumentRepository``."""

    def __init__(self, instruments: Sequence[Instrument] = ()) -> None:
        self.rows: dict[int, Instrument] = {}
        self.active: set[int] = set()
        self.upserts = 0
        for ins in instruments:
            self.rows[ins.instrument_token] = ins
            self.active.add(ins.instrument_token)

    async def upsert_many(self, instruments: Sequence[Instrument]) -> int:
        self.upserts += len(instruments)
        for ins in instruments:
            self.rows[ins.instrument_token] = ins
            self.active.add(ins.instrument_token)
        return len(instruments)

    async def deactivate_missing(
        self, present_tokens: Sequence[int], *, exchanges: Sequence[str] | None = None
    ) -> int:
        present = set(present_tokens)
        gone = {
            t
            for t in self.active
            if t not in present and (exchanges is None or self.rows[t].exchange in exchanges)
        }
        self.active -= gone
        return len(gone)

    async def all(self, *, active_only: bool = True) -> list[Instrument]:
        return [i for t, i in sorted(self.rows.items()) if not active_only or t in self.active]

    async def by_symbols(self, exchange: str, symbols: Sequence[str]) -> list[Instrument]:
        return [i for i in await self.all() if i.exchange == exchange and i.tradingsymbol in symbols]


class InMemoryCandleRepository:
    """``ports.CandleRepository``."""

    def __init__(self) -> None:
        self.table = _FrameTable(["instrument_token", "timeframe", "time"])

    async def add_many(self, candles: Sequence[Candle], *, on_conflict: OnConflict = "update") -> int:
        frame = pd.DataFrame(
            [
                {
                    "instrument_token": c.instrument_token,
                    "timeframe": str(c.timeframe),
                    "time": c.time,
                    "open": c.open,
                    "high": c.high,
                    "low": c.low,
                    "close": c.close,
                    "volume": c.volume,
                    "oi": c.oi,
                    "source": "live",
                }
                for c in candles
            ]
        )
        return await self.add_frame(frame, on_conflict=on_conflict)

    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = "nothing") -> int:
        return self.table.add(frame, on_conflict)

    def _select(self, tokens: Sequence[int] | None, timeframe: Timeframe | None) -> pd.DataFrame:
        frame = self.table.frame()
        if frame.empty:
            return pd.DataFrame(columns=CANDLE_COLUMNS)
        ok = pd.Series(True, index=frame.index)
        if tokens is not None:
            ok &= frame["instrument_token"].isin(list(tokens))
        if timeframe is not None:
            ok &= frame["timeframe"] == str(timeframe)
        return frame[ok]

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        frame = self._select([instrument_token], timeframe)
        return frame[_in_range(frame["time"], start, end)].loc[:, CANDLE_COLUMNS].reset_index(drop=True)

    async def read_many(
        self,
        instrument_tokens: Sequence[int] | None,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        frame = self._select(instrument_tokens, timeframe)
        frame = frame[_in_range(frame["time"], start, end)].loc[:, CANDLE_COLUMNS]
        return frame.sort_values(["instrument_token", "time"], kind="mergesort").reset_index(drop=True)

    async def latest(self, instrument_token: int, timeframe: Timeframe, n: int) -> pd.DataFrame:
        return (await self.read_frame(instrument_token, timeframe)).tail(n).reset_index(drop=True)

    async def last_time(self, instrument_token: int | None, timeframe: Timeframe) -> datetime | None:
        frame = self._select(None if instrument_token is None else [instrument_token], timeframe)
        return None if frame.empty else pd.Timestamp(frame["time"].max()).to_pydatetime()

    async def first_time(self, instrument_token: int, timeframe: Timeframe) -> datetime | None:
        frame = self._select([instrument_token], timeframe)
        return None if frame.empty else pd.Timestamp(frame["time"].min()).to_pydatetime()

    async def count(self, instrument_token: int | None = None, timeframe: Timeframe | None = None) -> int:
        return len(self._select(None if instrument_token is None else [instrument_token], timeframe))


class InMemoryBackfillLogRepository:
    """``ports.BackfillLogRepository``."""

    def __init__(self) -> None:
        self.days: dict[tuple[int, str, date], int] = {}

    async def record(self, instrument_token: int, timeframe: Timeframe, day: date, rows: int) -> None:
        self.days[(instrument_token, str(timeframe), day)] = rows

    async def done_days(
        self, instrument_token: int, timeframe: Timeframe, start: date, end: date
    ) -> set[date]:
        return {
            d
            for (t, tf, d) in self.days
            if t == instrument_token and tf == str(timeframe) and start <= d <= end
        }


class InMemoryModelRepository:
    """``ports.ModelRepository``: a champion insert or promotion retires the previous champion."""

    def __init__(self) -> None:
        self.records: dict[str, ModelRecord] = {}
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    async def insert(self, record: ModelRecord) -> None:
        if record.model_version in self.records:
            raise StorageError(f"model version {record.model_version!r} already exists")
        if record.status == "champion":
            self._retire_champion()
        self._clock += timedelta(seconds=1)
        self.records[record.model_version] = replace(record, created_at=self._clock)

    def _retire_champion(self) -> None:
        for version, rec in self.records.items():
            if rec.status == "champion":
                self.records[version] = replace(rec, status="retired")

    async def get(self, model_version: str) -> ModelRecord | None:
        return self.records.get(model_version)

    async def champion(self) -> ModelRecord | None:
        return next((r for r in self.records.values() if r.status == "champion"), None)

    async def list(self, *, status: ModelStatus | None = None) -> list[ModelRecord]:
        chosen = [r for r in self.records.values() if status is None or r.status == status]
        return sorted(chosen, key=lambda r: (r.created_at, r.model_version), reverse=True)

    async def set_status(self, model_version: str, status: ModelStatus) -> None:
        if model_version not in self.records:
            raise ModelError(f"no model version {model_version!r} in the models table")
        if status == "champion":
            self._retire_champion()
        self.records[model_version] = replace(self.records[model_version], status=status)


class InMemoryFeatureRepository:
    """``ports.FeatureRepository``: rows keyed by (instrument, timeframe, time, feature set)."""

    def __init__(self) -> None:
        self.table = _FrameTable(["instrument_token", "timeframe", "time", "feature_set"])
        self.names: dict[str, list[str]] = {}

    async def add_frame(
        self, frame: pd.DataFrame, feature_set: str, *, on_conflict: OnConflict = "update"
    ) -> int:
        if frame.empty:
            return 0
        names = [
            c for c in frame.columns if c not in ("instrument_token", "timeframe", "time", "feature_set")
        ]
        known = self.names.setdefault(feature_set, [])
        known.extend(n for n in names if n not in known)
        return self.table.add(frame.assign(feature_set=feature_set), on_conflict)

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        names = list(columns) if columns is not None else list(self.names.get(feature_set, []))
        wanted = ["instrument_token", "timeframe", "time", *names]
        frame = self.table.frame()
        if frame.empty:
            return pd.DataFrame(columns=wanted)
        ok = (
            (frame["instrument_token"] == instrument_token)
            & (frame["timeframe"] == str(timeframe))
            & (frame["feature_set"] == feature_set)
            & _in_range(frame["time"], start, end)
        )
        return frame[ok].reindex(columns=wanted).reset_index(drop=True)

    async def read_matrix(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: Sequence[str],
    ) -> FeatureMatrix:
        frame = await self.read_frame(instrument_token, timeframe, feature_set, start, end, columns=columns)
        frame = frame.sort_values("time", kind="stable")
        times = pd.DatetimeIndex(pd.to_datetime(frame["time"], utc=True)).as_unit("ns").asi8
        values = np.ascontiguousarray(frame.loc[:, list(columns)].to_numpy(dtype=np.float64))
        return FeatureMatrix(times, values.reshape(len(frame), len(columns)), tuple(columns))


class InMemoryLabelRepository:
    """``ports.LabelRepository``: rows keyed by (instrument, timeframe, time, side)."""

    def __init__(self) -> None:
        self.table = _FrameTable(["instrument_token", "timeframe", "time", "side"])

    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = "update") -> int:
        return self.table.add(frame, on_conflict)

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        side: int | None = None,
    ) -> pd.DataFrame:
        frame = self.table.frame()
        if frame.empty:
            return frame
        ok = (
            (frame["instrument_token"] == instrument_token)
            & (frame["timeframe"] == str(timeframe))
            & _in_range(frame["time"], start, end)
        )
        if side is not None:
            ok &= frame["side"] == side
        return frame[ok].sort_values(["time", "side"], kind="mergesort").reset_index(drop=True)

    async def replace_meta(
        self,
        timeframe: Timeframe,
        instrument_tokens: Sequence[int],
        start: datetime,
        end: datetime | None,
        meta: pd.DataFrame,
    ) -> int:
        wanted = {
            (int(t), pd.Timestamp(when).tz_convert("UTC"), int(side)): int(m)
            for t, when, side, m in zip(
                meta["instrument_token"], meta["time"], meta["side"], meta["meta"], strict=True
            )
        }
        tokens = {int(t) for t in instrument_tokens}
        written = 0
        for row in self.table.rows.values():
            when = pd.Timestamp(row["time"])
            if row["timeframe"] != str(timeframe) or int(row["instrument_token"]) not in tokens:  # type: ignore[call-overload]
                continue
            if when < pd.Timestamp(start) or (end is not None and when >= pd.Timestamp(end)):
                continue
            value = wanted.get((int(row["instrument_token"]), when, int(row["side"])))  # type: ignore[call-overload]
            row["meta"] = value
            written += value is not None
        return written


class InMemoryCandleFlagRepository:
    """``ports.candle_flags.CandleFlagRepository``: rows keyed by (instrument, timeframe, check, time)."""

    def __init__(self) -> None:
        self.table = _FrameTable(["instrument_token", "timeframe", "check", "time"])

    async def add_frame(self, frame: pd.DataFrame) -> int:
        return self.table.add(frame, "update")

    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        frame = self.table.frame()
        if frame.empty:
            return frame
        ok = (
            (frame["instrument_token"] == instrument_token)
            & (frame["timeframe"] == str(timeframe))
            & _in_range(frame["time"], start, end)
        )
        return frame[ok].sort_values(["time", "check"], kind="mergesort").reset_index(drop=True)

    async def counts(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> dict[tuple[str, str], int]:
        frame = self.table.frame()
        if frame.empty:
            return {}
        frame = frame[_in_range(frame["time"], start, end)]
        return {(str(c), str(a)): int(n) for (c, a), n in frame.groupby(["check", "action"]).size().items()}


class InMemorySignalRepository:
    """``ports.SignalRepository``: rows keyed like the ``signals`` table's unique key."""

    KEY = ("instrument_token", "timeframe", "time", "model_version", "mode")

    def __init__(self) -> None:
        self.table = _FrameTable(self.KEY)

    async def add_many(self, signals: Sequence[Signal], latency_ms: Sequence[float] | None = None) -> int:
        frame = pd.DataFrame(
            [
                {
                    "instrument_token": s.instrument_token,
                    "timeframe": str(s.timeframe),
                    "time": s.time,
                    "model_version": s.model_version,
                    "direction": s.direction,
                    "confidence": s.confidence,
                    "mode": s.mode,
                }
                for s in signals
            ]
        )
        return await self.add_frame(frame)

    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: OnConflict = "update") -> int:
        return self.table.add(frame, on_conflict)

    async def read_frame(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        mode: str | None = None,
        model_version: str | None = None,
        instrument_token: int | None = None,
        timeframe: Timeframe | None = None,
    ) -> pd.DataFrame:
        frame = self.table.frame()
        if frame.empty:
            return frame
        ok = _in_range(frame["time"], start, end)
        for column, value in (
            ("mode", mode),
            ("model_version", model_version),
            ("instrument_token", instrument_token),
            ("timeframe", None if timeframe is None else str(timeframe)),
        ):
            if value is not None:
                ok &= frame[column] == value
        return frame[ok].sort_values(["time", "instrument_token"], kind="mergesort").reset_index(drop=True)


class InMemorySignalMemberRepository:
    """``ports.SignalMemberRepository``: rows keyed like the ``signal_members`` primary key."""

    KEY = ("instrument_token", "timeframe", "model_version", "mode", "member_timeframe", "time")

    def __init__(self) -> None:
        self.table = _FrameTable(self.KEY)

    async def add_frame(self, frame: pd.DataFrame) -> int:
        return self.table.add(frame, "update")

    async def read_frame(
        self,
        model_version: str,
        *,
        mode: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        frame = self.table.frame()
        if frame.empty:
            return frame
        ok = _in_range(frame["time"], start, end) & (frame["model_version"] == model_version)
        if mode is not None:
            ok &= frame["mode"] == mode
        order = ["time", "instrument_token", "member_timeframe"]
        return frame[ok].sort_values(order, kind="mergesort").reset_index(drop=True)


# --- models and experiments -------------------------------------------------------------------------


class InMemoryModelStore:
    """``ports.ModelStore`` keeping bundles in a dict (location = ``mem://<version>``)."""

    def __init__(self) -> None:
        self.bundles: dict[str, dict[str, bytes]] = {}

    async def exists(self, version: str) -> bool:
        return version in self.bundles

    async def save(self, version: str, files: Mapping[str, bytes]) -> str:
        self.bundles[version] = dict(files)
        return f"mem://{version}"

    async def load(self, version: str, location: str | None = None) -> dict[str, bytes]:
        key = location.removeprefix("mem://") if location else version
        if key not in self.bundles:
            raise ModelError(f"model {version} has no bundle at {location or key}")
        return dict(self.bundles[key])


@dataclass
class RecordedRun:
    run_name: str
    params: dict[str, object]
    metrics: dict[str, float]
    tags: dict[str, str]
    files: dict[str, bytes]
    documents: dict[str, object]


class RecordingTracker:
    """``ports.ExperimentTracker`` that keeps every run in ``runs`` (ids ``run-1``, ``run-2``...)."""

    def __init__(self) -> None:
        self.runs: list[RecordedRun] = []

    async def log_run(
        self,
        *,
        run_name: str,
        params: Mapping[str, object],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        files: Mapping[str, bytes],
        documents: Mapping[str, object],
    ) -> str:
        await asyncio.sleep(0)
        self.runs.append(
            RecordedRun(run_name, dict(params), dict(metrics), dict(tags), dict(files), dict(documents))
        )
        return f"run-{len(self.runs)}"


@dataclass(frozen=True)
class ModelSourceOf:
    """``pipelines.models.ModelSource`` from a repository and a store."""

    models: ModelRepository
    store: ModelStore


@dataclass
class InMemoryHistoricalContext:
    """``pipelines.historical.context.HistoricalPorts`` made of the in-memory fakes above."""

    options: HistoricalOptions = field(default_factory=HistoricalOptions)
    calendar: SessionCalendar = NSE
    instruments: InMemoryInstrumentRepository = field(default_factory=InMemoryInstrumentRepository)
    candles: InMemoryCandleRepository = field(default_factory=InMemoryCandleRepository)
    features: InMemoryFeatureRepository = field(default_factory=InMemoryFeatureRepository)
    labels: InMemoryLabelRepository = field(default_factory=InMemoryLabelRepository)
    signals: InMemorySignalRepository = field(default_factory=InMemorySignalRepository)
    models: InMemoryModelRepository = field(default_factory=InMemoryModelRepository)
    backfill_log: InMemoryBackfillLogRepository = field(default_factory=InMemoryBackfillLogRepository)
    store: InMemoryModelStore = field(default_factory=InMemoryModelStore)
    signal_members: InMemorySignalMemberRepository = field(default_factory=InMemorySignalMemberRepository)


class InMemoryModelEventRepository:
    """``ports.ModelEventRepository`` over an ``InMemoryModelRepository``: append-only, and ``apply``
    checks every change before making any (all or nothing, like the database transaction)."""

    def __init__(self, models: InMemoryModelRepository) -> None:
        self.models = models
        self.events: list[ModelEvent] = []
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    def _stamp(self, event: ModelEvent) -> ModelEvent:
        if event.model_version not in self.models.records:
            raise ModelError(f"no model version {event.model_version!r} in the models table")
        self._clock += timedelta(seconds=1)
        return replace(event, time=self._clock)

    async def append(self, event: ModelEvent) -> None:
        self.events.append(self._stamp(event))

    async def history(
        self, model_version: str | None = None, *, limit: int | None = None
    ) -> list[ModelEvent]:
        chosen = [
            e for e in reversed(self.events) if model_version is None or e.model_version == model_version
        ]
        return chosen if limit is None else chosen[:limit]

    async def apply(self, changes: Sequence[StatusChange]) -> None:
        stamped = [self._stamp(c.event) for c in changes]  # raises before anything changes
        for change, event in zip(changes, stamped, strict=True):
            if change.status is not None:
                version = event.model_version
                self.models.records[version] = replace(self.models.records[version], status=change.status)
            self.events.append(event)


class InMemoryPaperRepository:
    """``ports.paper.PaperRepository`` in memory; ``fail_next`` makes the next writes raise (an outage)."""

    def __init__(self) -> None:
        self.opened: dict[str, list[pd.DataFrame]] = {}
        self.closed: dict[str, list[pd.DataFrame]] = {}
        self.taken: dict[str, list[pd.DataFrame]] = {}
        self.fail_next = 0
        self.calls = 0

    async def record(
        self, run_id: str, opened: pd.DataFrame, closed: pd.DataFrame, signals: pd.DataFrame | None = None
    ) -> None:
        await asyncio.sleep(0)
        self.calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise StorageError("database unavailable (fake outage)")
        self.opened.setdefault(run_id, []).append(opened.copy())
        self.closed.setdefault(run_id, []).append(closed.copy())
        if signals is not None:
            self.taken.setdefault(run_id, []).append(signals.copy())

    async def paper_signals(self, run_id: str) -> pd.DataFrame:
        """Like the table: the first record of a (token, time, model) is kept, ordered by available_at."""
        frames = [f for f in self.taken.get(run_id, []) if len(f)]
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames, ignore_index=True)
        out = out.drop_duplicates(["instrument_token", "time", "model_version"], keep="first")
        return out.sort_values(["available_at", "instrument_token"], kind="stable").reset_index(drop=True)

    async def trades(self, run_id: str) -> pd.DataFrame:
        frames = [f for f in self.closed.get(run_id, []) if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    async def positions(self, run_id: str) -> pd.DataFrame:
        frames = [f for f in self.opened.get(run_id, []) if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    async def close_interrupted(self, run_id: str, at: datetime) -> int:
        await asyncio.sleep(0)
        return 0


@dataclass
class RecordedWindow:
    day: date
    start: datetime
    end: datetime
    reason: str
    recorded_at: datetime
    repaired_at: datetime | None = None


class InMemoryRepairWindowRepository:
    """RepairWindowRepository in memory (``ports/repair_windows.py``)."""

    def __init__(self) -> None:
        self.rows: list[RecordedWindow] = []

    async def record(self, day: date, start: datetime, end: datetime, reason: str) -> None:
        self.rows.append(RecordedWindow(day, start, end, reason, datetime.now(UTC)))

    async def open_windows(self, day: date) -> list[tuple[datetime, datetime]]:
        return sorted((w.start, w.end) for w in self.rows if w.day == day and w.repaired_at is None)

    async def mark_repaired(
        self, day: date, start: datetime, end: datetime, *, recorded_before: datetime | None = None
    ) -> int:
        n = 0
        for w in self.rows:
            if (
                w.day == day
                and w.repaired_at is None
                and start <= w.start
                and w.end <= end
                and (recorded_before is None or w.recorded_at < recorded_before)
            ):
                w.repaired_at = datetime.now(UTC)
                n += 1
        return n


class _RecordedTask:
    """A recorded task's future: run when its result is first asked for, like the one-process path."""

    def __init__(self, task: Callable[[], object], runner: RecordingTaskRunner) -> None:
        self._task, self._runner = task, runner
        self._done: tuple[object] | None = None

    def result(self, timeout: float | None = None) -> object:
        if self._done is None:
            self._done = (self._task(),)
        return self._done[0]

    def cancel(self) -> bool:
        if self._done is not None:
            return False
        self._runner.cancelled.append(self._task)
        return True


class RecordingTaskRunner:
    """A ``core.fit_jobs.TaskRunner`` that records the tasks started (and cancelled), in order, and
    runs each in this process when its result is asked for."""

    def __init__(self) -> None:
        self.started: list[Callable[[], object]] = []
        self.cancelled: list[Callable[[], object]] = []

    def run_task(self, task: Callable[[], object]) -> _RecordedTask:
        self.started.append(task)
        return _RecordedTask(task, self)


@dataclass
class IdleDaskClient:
    """A Dask client with no futures: enough for ``adapters.dask.deadline`` when the work finishes in
    time (a client is asked for more only once the deadline has passed)."""

    futures: dict[object, object] = field(default_factory=dict)


class RecordingSignalWrites:
    """The write half of ``ports.SignalRepository`` that keeps each batch and its latencies as given."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Signal], list[float] | None]] = []

    async def add_many(self, signals: Sequence[Signal], latency_ms: Sequence[float] | None = None) -> int:
        self.batches.append((list(signals), None if latency_ms is None else list(latency_ms)))
        return len(signals)
