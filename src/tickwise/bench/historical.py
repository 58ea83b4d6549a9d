"""`tickwise bench historical`: backfill from the simulator and derive (roll-ups, features, labels) into a
throw-away TimescaleDB cluster; wall time, peak RSS of the process tree and rows/s per stage.

The cluster lives in a fresh /tmp directory on a free port (durability off, like the test cluster) and
is removed afterwards; the simulator runs as the usual child process on free ports. Training and the
out-of-sample history are not part of this bench (their cost depends on trials and folds, not only on
the data size): it measures the data stages whose memory and time grow with instruments x sessions.
Peak RSS is sampled (every 0.2 s) over this process and all its descendants (simulator, Dask workers);
the database server is not a descendant and is not counted. Every stage reports its own figures (wall,
peak RSS during the stage, rows/s, load average) through ``on_stage`` as soon as it ends, so a long run
that is stopped still leaves the stages it finished (the CLI prints them to stderr as JSON lines).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tickwise.adapters.timescale.cluster import EmbeddedCluster
from tickwise.bootstrap.database import migrate
from tickwise.bootstrap.historical import (
    HistoricalSummary,
    Reporter,
    derive_plan_of,
    open_historical,
    run_backfill,
)
from tickwise.config import Settings, load_settings
from tickwise.pipelines.historical.run import derive
from tickwise.pipelines.universe import select_universe

__all__ = ["RssSampler", "run_historical_bench"]

_SERVER_OPTIONS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


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


StageSink = Callable[[dict[str, Any]], None]


def bench_settings(
    tmp: Path, *, instruments: int, sessions: int, scheduler: str, workers: int, chunk_sessions: int = 40
) -> Settings:
    """Settings of one bench run: the simulator with ``instruments`` - 1 equities (the universe adds
    the NIFTY 50 index), ``sessions`` of backfill, everything under ``tmp``, free simulator ports."""
    return load_settings(
        environ={
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
        },
        environment="development",
    )


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


async def _stages(
    settings: Settings, url: str, rss: RssSampler, on_stage: StageSink
) -> tuple[HistoricalSummary, HistoricalSummary, float, float, dict[str, int], list[dict[str, Any]]]:
    quiet = Reporter(quiet=True)
    stages: list[dict[str, Any]] = []

    def report(figures: dict[str, Any]) -> None:
        stages.append(figures)
        on_stage(figures)

    rss.stage_peak()
    began = time.perf_counter()
    with quiet:
        backfilled = await run_backfill(settings, quiet, url=url)
    backfill_s = time.perf_counter() - began
    rows = backfilled.backfill.rows_written if backfilled.backfill else 0
    report(_stage_figures("backfill", backfill_s, rows, rss))
    # run_backfill also rolled up; derive then writes the features and labels (and no roll-up rows),
    # so roll-ups are timed inside derive by re-deriving them from scratch.
    summary = HistoricalSummary(first_day=backfilled.first_day, last_day=backfilled.last_day)
    async with open_historical(settings, url=url) as ctx:
        async with ctx.pool.acquire() as conn:
            await conn.execute("DELETE FROM candles WHERE timeframe <> '1m'")
        universe = await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
        began = time.perf_counter()
        async with derive_plan_of(ctx) as plan:
            await derive(ctx, universe, Reporter(quiet=True), summary, executor=plan.executor, task=plan.task)
        derive_s = time.perf_counter() - began
        figures = _stage_figures("derive", derive_s, summary.feature_rows, rss)
        figures["label_rows"] = summary.label_rows
        figures["chunks"] = summary.derive_chunks
        report(figures)
        async with ctx.pool.acquire() as conn:
            sizes = await _sizes(conn)
    summary.instruments = len(universe)
    return backfilled, summary, backfill_s, derive_s, sizes, stages


def _ignore(figures: dict[str, Any]) -> None:
    """The default stage sink: the figures are in the result anyway."""


def _rate(rows: int, seconds: float) -> int:
    return round(rows / seconds) if seconds > 0 else 0


def run_historical_bench(
    *,
    instruments: int,
    sessions: int,
    scheduler: str = "inline",
    workers: int = 2,
    chunk_sessions: int = 40,
    on_stage: StageSink = _ignore,
) -> dict[str, Any]:
    """Run the bench on a throw-away cluster; the figures as a dict (module doc). ``on_stage`` gets
    each stage's figures as soon as the stage ends."""
    if instruments < 1 or sessions < 1:
        raise ValueError("need at least one instrument and one session")
    base = Path(tempfile.mkdtemp(prefix="tickwise-bench-hist-", dir="/tmp"))  # nosec B108: mkdtemp makes a new private (0700, then 0755 for the server user) directory with a random name
    base.chmod(0o755)  # the cluster may run as an unprivileged user (see EmbeddedCluster)
    cluster = EmbeddedCluster(base / "db", _free_port(), server_options=_SERVER_OPTIONS)
    load_before = os.getloadavg()
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
        )
        began = time.perf_counter()
        with RssSampler() as rss:
            backfilled, derived, backfill_s, derive_s, sizes, stages = asyncio.run(
                _stages(settings, url, rss, on_stage)
            )
        wall_s = time.perf_counter() - began
    finally:
        try:
            cluster.down()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    candles_1m = backfilled.backfill.rows_written if backfilled.backfill else 0
    rollup_rows = sum(derived.rollup_rows.values())
    rollup_s = derived.timings.get("rollups", 0.0)
    return {
        "bench": "historical",
        "instruments": derived.instruments,
        "sessions": sessions,
        "scheduler": scheduler,
        "workers": workers if scheduler != "inline" else 1,
        "chunk_sessions": chunk_sessions,
        "stages": stages,
        "wall_s": round(wall_s, 2),
        "peak_rss_mb": round(rss.peak_bytes / 2**20, 1),
        "backfill_s": round(backfill_s, 2),
        "backfill_candles": candles_1m,
        "backfill_rows_per_s": _rate(candles_1m, backfill_s),
        "derive_s": round(derive_s, 2),
        "rollup_rows": rollup_rows,
        "rollup_s_summed_over_tasks": rollup_s,
        "rollup_rows_per_s": _rate(rollup_rows, rollup_s),
        "feature_rows": derived.feature_rows,
        "feature_rows_per_s_of_derive": _rate(derived.feature_rows, derive_s),
        "label_rows": derived.label_rows,
        "label_rows_per_s_of_derive": _rate(derived.label_rows, derive_s),
        "derive_chunks": derived.derive_chunks,
        "table_bytes": sizes,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
