"""`tickwise bench historical`: the historical pipeline's stages on a throw-away TimescaleDB cluster;
wall time, peak RSS of the process tree and rows/s per stage.

Stages (``stages``, in the order given; ``backfill`` first):

* ``backfill``: sync the instrument master from the simulator, then fill the 1m candles of
  ``sessions`` sessions. ``seed="rest"`` fetches them through the Kite REST client from the simulator
  (a child process, rate limits and all), logging in again when the simulator's daily session expires
  (its access token dies at the simulated 06:00 IST, as Kite's does; :class:`DailyLogin`).
  ``seed="direct"`` generates the same candles with the simulator's own market generator in this
  process (:class:`DirectSource`, instrument by instrument) and streams them through the same
  backfill manager and COPY path, without HTTP or JSON: it measures the rest of the pipeline at sizes
  where the REST fetch alone would take hours. The result says which seeding ran.
* ``checks``: the data-quality candle checks over every instrument's stored 1m history (what
  ``tickwise backfill`` runs after the fetch).
* ``derive``: roll-ups, features and labels, chunked (``compute.chunk_sessions``).
* ``train``: the champion training (``tickwise train`` without its incremental derive) with a lean model
  configuration (:data:`LEAN_MODEL`: 2 Optuna trials, no meta model, no regime layer, no ensemble),
  so that its cost is the data's, not the search's.
* ``predict``: batch signals of that model over the whole history.

The cluster lives in a fresh /tmp directory on a free port (durability off, like the test cluster) and
is removed afterwards. Peak RSS is sampled (every 0.2 s) over this process and all its descendants
(simulator, Dask workers); the database server is not a descendant and is not counted. Every stage
reports its own figures (wall, peak RSS during the stage, rows/s, load average) through ``on_stage`` as
soon as it ends, so a long run that is stopped still leaves the stages it finished (the CLI prints
them to stderr as JSON lines).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import psutil

from tickwise.adapters.kite.errors import KiteTokenError
from tickwise.adapters.kite.simulator.market import MINUTES, Market
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.adapters.timescale.cluster import EmbeddedCluster
from tickwise.bootstrap.broker import open_broker
from tickwise.bootstrap.compute import training_loads
from tickwise.bootstrap.database import migrate
from tickwise.bootstrap.historical import (
    HistoricalContext,
    HistoricalSummary,
    Reporter,
    candle_quality,
    derive_plan_of,
    open_historical,
    tracker_factory,
)
from tickwise.config import Settings, load_settings
from tickwise.domain.calendar import NSE
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.candle_checks import check_universe
from tickwise.pipelines.historical.instruments import InstrumentManager
from tickwise.pipelines.historical.run import derive, predict_step, sync_and_backfill, train_step

__all__ = [
    "LEAN_MODEL",
    "SEED_MODES",
    "STAGES",
    "DailyLogin",
    "DirectSource",
    "RssSampler",
    "backfill_stage",
    "parse_stages",
    "run_historical_bench",
]

_SERVER_OPTIONS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

_MINUTE_NS = 60 * 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
IST_ZONE = "Asia/Kolkata"  # the dtype the REST client's frames carry
SeedMode = Literal["rest", "direct"]
SEED_MODES: tuple[SeedMode, ...] = ("rest", "direct")
STAGES = ("backfill", "checks", "derive", "train", "predict")
DEFAULT_STAGES = ("backfill", "checks", "derive")
# What a stage needs run before it in the same bench (the cluster is new: nothing else provides it).
_NEEDS = {"checks": "backfill", "derive": "backfill", "train": "derive", "predict": "train"}

# The model configuration of the train and predict stages: the champion training's data path (load
# every feature row, build the training set, purged CV, holdout, final fit, MLflow, store) with the
# fewest trials and none of the optional layers, so the figures grow with the data, not the search.
LEAN_MODEL = {
    "model_training.trials": "2",
    "signals.meta.enabled": "false",
    "regimes.enabled": "false",
    "ensemble.enabled": "false",
}


def parse_stages(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"backfill,derive,train"`` -> the stage names, checked (known, once each, prerequisites first)."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}: choose from {', '.join(STAGES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a stage is named twice in {','.join(names)}")
    if not names or names[0] != "backfill":
        raise ValueError("the stages start with backfill (the bench's database starts empty)")
    for i, name in enumerate(names):
        need = _NEEDS.get(name)
        if need is not None and need not in names[:i]:
            raise ValueError(f"stage {name} needs {need} before it")
    return tuple(names)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RssSampler:
    """Peak resident memory of this process plus its descendants, sampled on a daemon thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.stage_peak_bytes = 0  # since the last ``stage_peak()``
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a child that just exited
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record(self._sample())
            self._stop.wait(self.interval_s)

    def _record(self, rss: int) -> None:
        self.peak_bytes = max(self.peak_bytes, rss)
        self.stage_peak_bytes = max(self.stage_peak_bytes, rss)

    def stage_peak(self) -> int:
        """The peak since the previous call (or the start), and start a new stage."""
        now = self._sample()
        self._record(now)
        peak, self.stage_peak_bytes = self.stage_peak_bytes, now
        return peak

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._record(self._sample())


class _Rest(Protocol):
    async def historical_frame(
        self, instrument_token: int, interval: Timeframe | str, start: datetime | date, end: datetime | date
    ) -> pd.DataFrame: ...

    def set_access_token(self, access_token: str | None) -> None: ...


class DailyLogin:
    """A ``HistoricalSource`` over the REST client that logs in again once the session has expired.

    Kite's (and the simulator's) access token dies at 06:00 IST; a user logs in again each morning. A
    bench whose simulated clock runs 60 x real time crosses that hour every 24 real minutes, so a
    long backfill does what the user does: on ``TokenException`` it logs in (once, whichever of the
    concurrent fetches saw it first) and repeats the request. The client itself still raises on an
    expired token (it must not hide a dead session from the commands)."""

    def __init__(self, rest: _Rest, relogin: Callable[[], Awaitable[str]]) -> None:
        self._rest = rest
        self._relogin = relogin
        self._lock = asyncio.Lock()
        self.relogins = 0

    async def historical_frame(
        self, instrument_token: int, interval: Timeframe | str, start: datetime | date, end: datetime | date
    ) -> pd.DataFrame:
        seen = self.relogins
        try:
            return await self._rest.historical_frame(instrument_token, interval, start, end)
        except KiteTokenError:
            async with self._lock:
                if self.relogins == seen:  # nobody logged in again since this request was sent
                    self._rest.set_access_token(await self._relogin())
                    self.relogins += 1
        return await self._rest.historical_frame(instrument_token, interval, start, end)


class DirectSource:
    """A ``HistoricalSource`` that serves the simulator's 1m candles straight from its generator.

    The same :class:`Market` (seed, universe, calendar, bad prints) and the same
    :meth:`Market.candles` the simulator's REST route serves, minus HTTP and JSON; one instrument's
    requested range at a time, and a small candle cache, so memory stays that of one range."""

    def __init__(self, market: Market, now: datetime) -> None:
        self.market = market
        self.now = now

    @classmethod
    def of(cls, settings: Settings, now: datetime) -> DirectSource:
        """The generator of the simulator that ``settings`` start (``broker.simulator``)."""
        sim = settings.broker.simulator
        universe = Universe(sim.instruments, NSE, today=now.astimezone(IST).date())
        return cls(Market(universe, sim.seed, NSE, cache_size=16, bad_prints=sim.bad_prints), now)

    async def historical_frame(
        self, instrument_token: int, interval: Timeframe | str, start: datetime | date, end: datetime | date
    ) -> pd.DataFrame:
        if Timeframe(interval) is not Timeframe.M1:
            raise ValueError(f"direct seeding serves 1m candles only, not {interval}")
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            raise TypeError("direct seeding takes datetime bounds")
        # Market.candles' rule for 1m bars (stamped in [start, end], ended by now), on whole arrays:
        # a 1m bucket's high/low/volume are the minute candle's own, so the values are the same floats.
        market = self.market
        parts: list[tuple[np.ndarray, ...]] = []
        last = min(end.astimezone(IST).date(), self.now.astimezone(IST).date())
        lo, hi, now = (_ns(x) for x in (start, end, self.now))
        for day in market.calendar.trading_days(start.astimezone(IST).date(), last):
            if not market.listed_on(instrument_token, day):
                continue
            c = market.minute_candles(instrument_token, day)
            opens = _ns(datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST))
            stamps = opens + np.arange(MINUTES, dtype=np.int64) * _MINUTE_NS
            keep = (stamps >= lo) & (stamps <= hi) & (stamps + _MINUTE_NS <= now)
            parts.append(
                (stamps[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep])
            )
        empty = (np.zeros(0, np.int64), *(np.zeros(0) for _ in range(4)), np.zeros(0, np.int64))
        times, o, h, low, c_, v = (
            (np.concatenate(cols) for cols in zip(*parts, strict=True)) if parts else empty
        )
        n = len(times)
        return pd.DataFrame(
            {
                "instrument_token": np.full(n, instrument_token, dtype=np.int64),
                "timeframe": pd.Series(["1m"] * n, dtype="object"),
                "time": pd.DatetimeIndex(times.astype("datetime64[ns]"), tz="UTC").tz_convert(IST_ZONE),
                "open": o.astype(np.float64),
                "high": h.astype(np.float64),
                "low": low.astype(np.float64),
                "close": c_.astype(np.float64),
                "volume": v.astype(np.int64),
                "oi": pd.Series([pd.NA] * n, dtype="Int64"),
                "source": pd.Series(["historical"] * n, dtype="object"),
            }
        )


def _ns(at: datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond (datetime's own resolution)."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


StageSink = Callable[[dict[str, Any]], None]


def bench_settings(
    tmp: Path,
    *,
    instruments: int,
    sessions: int,
    scheduler: str,
    workers: int,
    chunk_sessions: int = 40,
    extra: dict[str, str] | None = None,
) -> Settings:
    """Settings of one bench run: the simulator with ``instruments`` - 1 equities (the universe adds
    the NIFTY 50 index), ``sessions`` of backfill, everything under ``tmp``, free simulator ports;
    ``extra``: further ``section.key`` settings (e.g. :data:`LEAN_MODEL`)."""
    environ = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp / "data"),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__BROKER__SIMULATOR__INSTRUMENTS": str(max(instruments - 1, 1)),
        "TICKWISE__BROKER__SIMULATOR__PORT": str(_free_port()),
        "TICKWISE__BROKER__SIMULATOR__WS_PORT": str(_free_port()),
        "TICKWISE__TRADING__BACKFILL_DAYS": str(sessions),
        "TICKWISE__COMPUTE__SCHEDULER": scheduler,
        "TICKWISE__COMPUTE__WORKERS": str(workers),
        "TICKWISE__COMPUTE__CHUNK_SESSIONS": str(chunk_sessions),
        # The bench runs for an hour on a shared machine: a new connection may wait longer than the
        # default 5 s for a backend under load, which is the machine's state, not a failure.
        "TICKWISE__DATABASE__CONNECT_TIMEOUT_S": "60",
    }
    for key, value in (extra or {}).items():
        environ["TICKWISE__" + "__".join(part.upper() for part in key.split("."))] = value
    return load_settings(environ=environ, environment="development")


_SIZED = ("candles", "features", "labels")


async def _sizes(conn: Any) -> dict[str, int]:
    """Bytes on disk (table, indexes, TOAST; uncompressed) of each derived hypertable."""
    return {t: int(await conn.fetchval("SELECT hypertable_size($1::regclass)", t) or 0) for t in _SIZED}


def _stage_figures(name: str, seconds: float, rows: int, rss: RssSampler) -> dict[str, Any]:
    return {
        "stage": name,
        "seconds": round(seconds, 2),
        "rows": rows,
        "rows_per_s": _rate(rows, seconds),
        "peak_rss_mb": round(rss.stage_peak() / 2**20, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


async def backfill_stage(
    settings: Settings, ctx: HistoricalContext, seed: SeedMode, summary: HistoricalSummary
) -> tuple[list[Instrument], dict[str, Any]]:
    """The backfill stage: instrument sync from the simulator, then the 1m candles (module doc)."""
    quiet = Reporter(quiet=True)
    async with open_broker(settings) as broker:
        now = broker.now()
        if seed == "rest":
            daily = DailyLogin(broker.rest, broker.relogin) if broker.relogin is not None else None
            universe = await sync_and_backfill(ctx, broker.rest, daily or broker.rest, now, quiet, summary)
            return universe, {"relogins": daily.relogins if daily else 0}
        if not broker.simulated:
            raise ValueError(
                "direct seeding generates the simulator's market: run it without Kite credentials"
            )
        await InstrumentManager(broker.rest, ctx.instruments, today=lambda: now.date()).sync()
    # The simulator has exited: the candles come from its generator, here, one instrument at a time.
    universe = await sync_and_backfill(
        ctx, broker.rest, DirectSource.of(settings, now), now, quiet, summary, sync=False
    )
    return universe, {}


async def _stages(
    settings: Settings, url: str, rss: RssSampler, on_stage: StageSink, stages: Sequence[str], seed: SeedMode
) -> tuple[HistoricalSummary, dict[str, int], list[dict[str, Any]]]:
    quiet = Reporter(quiet=True)
    done: list[dict[str, Any]] = []
    summary = HistoricalSummary()
    model_version = ""

    def report(figures: dict[str, Any]) -> None:
        done.append(figures)
        on_stage(figures)

    async with open_historical(settings, url=url) as ctx:
        universe: list[Instrument] = []
        for stage in stages:
            rss.stage_peak()
            began = time.perf_counter()
            extra: dict[str, Any] = {}
            if stage == "backfill":
                universe, extra = await backfill_stage(settings, ctx, seed, summary)
                rows = summary.backfill.rows_written if summary.backfill else 0
                extra["seed"] = seed
            elif stage == "checks":
                quality = candle_quality(settings, ctx.pool)
                if quality is None:
                    raise ValueError("the checks stage needs data_quality.enabled")
                flags = await check_universe(ctx.candles, universe, quality, ctx.calendar)
                rows = summary.backfill.rows_written if summary.backfill else 0
                extra = {"flagged_bars": flags.flagged_bars}
            elif stage == "derive":
                async with derive_plan_of(ctx) as plan:
                    await derive(ctx, universe, quiet, summary, executor=plan.executor, task=plan.task)
                rows = summary.feature_rows
                extra = {"label_rows": summary.label_rows, "chunks": summary.derive_chunks}
            elif stage == "train":
                async with training_loads(settings) as loads:  # as `tickwise train` loads: spilled to disk
                    trained = await train_step(
                        ctx, quiet, tracker_factory=tracker_factory(settings), loads=loads
                    )
                model_version, rows = trained.model_version, trained.rows
                extra = {"features": trained.features, "model_version": model_version}
            else:  # predict
                predicted = await predict_step(ctx, quiet, version=model_version)
                rows = predicted.rows
            figures = _stage_figures(stage, time.perf_counter() - began, rows, rss)
            report(figures | extra)
        async with ctx.pool.acquire() as conn:
            sizes = await _sizes(conn)
    summary.instruments = len(universe)
    return summary, sizes, done


def _ignore(figures: dict[str, Any]) -> None:
    """The default stage sink: the figures are in the result anyway."""


def _rate(rows: int, seconds: float) -> int:
    return round(rows / seconds) if seconds > 0 else 0


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises ``SystemExit`` inside the block, as Ctrl-C raises ``KeyboardInterrupt``.

    Python's default SIGTERM ends the process without running ``finally``: a ``kill`` or a CI timeout
    then left the throw-away cluster running and its directory behind (17 GB after 40 minutes of a
    200 x 250 run). A second SIGTERM during the clean-up is ignored so the clean-up finishes; the
    previous handler is restored after it. Only the main thread can install handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_historical_bench(
    *,
    instruments: int,
    sessions: int,
    scheduler: str = "inline",
    workers: int = 2,
    chunk_sessions: int = 40,
    stages: Sequence[str] = DEFAULT_STAGES,
    seed: SeedMode = "rest",
    on_stage: StageSink = _ignore,
) -> dict[str, Any]:
    """Run the bench on a throw-away cluster; the figures as a dict (module doc). ``on_stage`` gets
    each stage's figures as soon as the stage ends."""
    if instruments < 1 or sessions < 1:
        raise ValueError("need at least one instrument and one session")
    if seed not in SEED_MODES:
        raise ValueError(f"seed is one of {', '.join(SEED_MODES)}, not {seed!r}")
    stages = parse_stages(stages)
    base = Path(tempfile.mkdtemp(prefix="tickwise-bench-hist-", dir="/tmp"))  # nosec B108: mkdtemp makes a new private (0700, then 0755 for the server user) directory with a random name
    base.chmod(0o755)  # the cluster may run as an unprivileged user (see EmbeddedCluster)
    cluster = EmbeddedCluster(base / "db", _free_port(), server_options=_SERVER_OPTIONS)
    load_before = os.getloadavg()
    lean = "train" in stages
    with _sigterm_as_exit():
        try:
            url = cluster.up()
            migrate(cluster.admin_url())
            settings = bench_settings(
                base,
                instruments=instruments,
                sessions=sessions,
                scheduler=scheduler,
                workers=workers,
                chunk_sessions=chunk_sessions,
                extra=LEAN_MODEL if lean else None,
            )
            began = time.perf_counter()
            with RssSampler() as rss:
                derived, sizes, done = asyncio.run(_stages(settings, url, rss, on_stage, stages, seed))
            wall_s = time.perf_counter() - began
        finally:
            try:
                cluster.down()
            finally:
                shutil.rmtree(base, ignore_errors=True)
    by_stage = {s["stage"]: s for s in done}
    figures: dict[str, Any] = {
        "bench": "historical",
        "instruments": derived.instruments,
        "sessions": sessions,
        "seed": seed,
        "stage_names": list(stages),
        "scheduler": scheduler,
        "workers": workers if scheduler != "inline" else 1,
        "chunk_sessions": chunk_sessions,
        "model": dict(LEAN_MODEL) if lean else None,
        "stages": done,
        "wall_s": round(wall_s, 2),
        "peak_rss_mb": round(rss.peak_bytes / 2**20, 1),
    }
    backfill = by_stage["backfill"]
    figures |= {
        "backfill_s": backfill["seconds"],
        "backfill_candles": backfill["rows"],
        "backfill_rows_per_s": backfill["rows_per_s"],
    }
    if "derive" in by_stage:
        rollup_rows = sum(derived.rollup_rows.values())
        rollup_s = derived.timings.get("rollups", 0.0)
        derive_s = by_stage["derive"]["seconds"]
        figures |= {
            "derive_s": derive_s,
            "rollup_rows": rollup_rows,
            "rollup_s_summed_over_tasks": rollup_s,
            "rollup_rows_per_s": _rate(rollup_rows, rollup_s),
            "feature_rows": derived.feature_rows,
            "feature_rows_per_s_of_derive": _rate(derived.feature_rows, derive_s),
            "label_rows": derived.label_rows,
            "label_rows_per_s_of_derive": _rate(derived.label_rows, derive_s),
            "derive_chunks": derived.derive_chunks,
        }
    figures |= {
        "table_bytes": sizes,
        "scratch_dir": str(base),  # removed by now, with the cluster in it
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    return figures
