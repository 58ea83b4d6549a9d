"""What the train stage holds at its peak, by allocation site (issue 15), on a kept bench database.

    PYTHONPATH=<checkout>/src python scripts/trace_training_memory.py prep    11 60 [DIR]
    PYTHONPATH=<checkout>/src python scripts/trace_training_memory.py train   11 60 [DIR] [trace]
    PYTHONPATH=<checkout>/src python scripts/trace_training_memory.py predict 11 60 [DIR]

``prep`` runs the bench's backfill (direct seed) and derive stages into a TimescaleDB cluster under
``DIR`` (default ``/tmp/tickwise-trainmem/db-<N>x<D>``) and keeps it; ``train`` starts that cluster
again, forgets any registered model (so the champion is trained, not skipped) and runs the bench's train
stage (``train_step``, lean model, labels and features spilled as ``tickwise train`` does). It prints
the rows, the model version and this process's peak RSS; with ``trace`` it also runs ``tracemalloc``
and prints the 25 largest allocation sites (8 frames) of the snapshot taken at the fit with the most
traced memory, each with its bytes per training row. Python and numpy allocations are traced;
LightGBM's own (C++) memory is not. Run the checkout whose code you want to measure on ``PYTHONPATH``:
the same database serves old and new code.

``predict`` (after ``train``, which leaves its model registered) empties ``signals`` and
runs the bench's predict stage (``predict_step``: the model ``train`` registered last, over every
instrument's whole history),
printing the signals written (and a SHA-256 of their rows in key order, so that runs of old and new code
can be compared), this process's peak RSS and the highest RSS of each phase.

The per-phase peaks come from the bench's own sampler (``bench.historical.RssSampler``: this process and
its children, every 0.2 s; the figures ``tickwise bench historical`` reports), asked for the peak since
the previous phase whenever the step's progress names a new one, so each phase's peak is its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import TaskID


def main(argv: list[str]) -> None:
    from tickwise.adapters.timescale.cluster import EmbeddedCluster
    from tickwise.bench import historical as bench
    from tickwise.bootstrap.database import migrate

    mode, instruments, sessions = argv[0], int(argv[1]), int(argv[2])
    if mode not in ("prep", "train", "predict"):
        raise SystemExit(f"mode {mode!r}: prep, train or predict")
    rest = [a for a in argv[3:] if a != "trace"]
    base = Path(rest[0]) if rest else Path(f"/tmp/tickwise-trainmem/db-{instruments}x{sessions}")
    port_file = base / "port"
    if mode == "prep":
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)  # the cluster may run as an unprivileged user (EmbeddedCluster)
        port_file.write_text(str(bench._free_port()))
    cluster = EmbeddedCluster(base / "db", int(port_file.read_text()), server_options=bench._SERVER_OPTIONS)
    url = cluster.up()
    # a traced run is several times slower: a label read may take longer than the default 60 s
    extra = {**bench.LEAN_MODEL, "database.command_timeout_s": "900"}
    # The bench's settings do not read this process's environment: pass the fit pool's size on, so
    # ``TICKWISE__COMPUTE__FIT_WORKERS=1`` fits in this process (a pool's workers are other processes,
    # whose memory ``getrusage(RUSAGE_SELF)`` does not count).
    workers = os.environ.get("TICKWISE__COMPUTE__FIT_WORKERS")
    if workers:
        extra["compute.fit_workers"] = workers
    settings = bench.bench_settings(
        base, instruments=instruments, sessions=sessions, scheduler="inline", workers=1, extra=extra
    )
    try:  # the cluster is stopped whatever fails after it started (a failed migrate too)
        migrate(cluster.admin_url())
        if mode == "prep":
            with bench.RssSampler() as rss:
                asyncio.run(bench._stages(settings, url, rss, print, ["backfill", "derive"], "direct"))
        elif mode == "predict":
            _predict(settings, url, cluster.admin_url())
        else:
            _train(settings, url, cluster.admin_url(), "trace" in argv)
    finally:
        cluster.down()


def _train(settings: Any, url: str, admin_url: str, trace: bool) -> None:
    import asyncpg

    import tickwise.core.fit_jobs as fit_jobs
    from tickwise.bootstrap.compute import training_loads
    from tickwise.bootstrap.historical import open_historical, tracker_factory
    from tickwise.pipelines.historical.run import train_step

    peak: list[Any] = [0, None]
    if trace:
        tracemalloc.start(8)
        fit_booster = getattr(fit_jobs, "fit_booster")  # noqa: B009 (what every fit calls, patched)

        def traced_fit(*args: Any, **kwargs: Any) -> Any:
            current, _ = tracemalloc.get_traced_memory()
            if current > peak[0]:
                peak[0], peak[1] = current, tracemalloc.take_snapshot()
            return fit_booster(*args, **kwargs)

        setattr(fit_jobs, "fit_booster", traced_fit)  # noqa: B010 (a module's import, patched)

    async def forget_models() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute("TRUNCATE models CASCADE")
        finally:
            await conn.close()

    phases = _Phases()

    async def train() -> Any:
        async with open_historical(settings, url=url) as ctx, training_loads(settings) as loads:
            return await train_step(ctx, phases, tracker_factory=tracker_factory(settings), loads=loads)

    asyncio.run(forget_models())
    began, load_before, cpu_before = time.perf_counter(), os.getloadavg(), _cpu_seconds(0.0)
    with phases.sampling():
        out = asyncio.run(train())
    figures = {
        "rows": out.rows,
        "model_version": out.model_version,
        "seconds": round(time.perf_counter() - began, 1),
        "cpu_seconds": _cpu_seconds(cpu_before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fit_workers": settings.compute.fit_workers,
        "load_average_start": [round(x, 2) for x in load_before],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb_by_phase": phases.peaks,
    }
    print(json.dumps(figures))
    if trace and peak[1] is not None:
        print(f"traced at the largest fit: {peak[0] / 2**20:.1f} MB = {peak[0] / out.rows:.0f} B/row")
        for stat in peak[1].statistics("traceback")[:25]:
            print(f"{stat.size / 2**20:8.1f} MB {stat.size / out.rows:7.1f} B/row  blocks={stat.count}")
            for line in stat.traceback.format()[-8:]:
                print("      " + line)


def _predict(settings: Any, url: str, admin_url: str) -> None:
    import asyncpg

    from tickwise.bootstrap.historical import open_historical
    from tickwise.pipelines.historical.run import predict_step

    async def forget_signals() -> str:
        """Empty ``signals`` (every run inserts, none updates) and name the model ``train`` left: the
        newest registered (the bench's train stage may register it as a challenger)."""
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute("TRUNCATE signals")
            version = await conn.fetchval("SELECT model_version FROM models ORDER BY created_at DESC LIMIT 1")
        finally:
            await conn.close()
        if version is None:
            raise SystemExit("no registered model: run `train` on this database first")
        return str(version)

    phases = _Phases()

    async def predict(version: str) -> Any:
        async with open_historical(settings, url=url) as ctx:
            return await predict_step(ctx, phases, version=version)

    async def signals_digest() -> str:
        """SHA-256 of every written signal row, in key order: old and new code must write the same."""
        conn = await asyncpg.connect(admin_url)
        try:
            rows = await conn.fetch(
                "SELECT instrument_token, timeframe, time, model_version, available_at, direction, "
                "confidence, mode, feature_set, latency_ms, size, meta_prob, meta_size, sample FROM signals "
                "ORDER BY instrument_token, timeframe, time, model_version"
            )
        finally:
            await conn.close()
        return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()

    version = asyncio.run(forget_signals())
    began, load_before, cpu_before = time.perf_counter(), os.getloadavg(), _cpu_seconds(0.0)
    with phases.sampling():
        out = asyncio.run(predict(version))
    figures = {
        "rows": out.rows,
        "instruments": out.instruments,
        "model_version": out.model_version,
        "chunk_sessions": settings.compute.chunk_sessions,
        "seconds": round(time.perf_counter() - began, 1),
        "cpu_seconds": _cpu_seconds(cpu_before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_start": [round(x, 2) for x in load_before],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb_by_phase": phases.peaks,
        "signals_sha256": asyncio.run(signals_digest()),
    }
    print(json.dumps(figures))


def _cpu_seconds(since: float) -> float:
    """User and system CPU seconds of this process and its waited-for children, less ``since``: on a
    shared machine the wall time says how busy it was, the CPU time what the step cost."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return round(total - since, 1)


class _Phases:
    """The step's progress reporter (``pipelines.historical.progress.StepProgress``) that keeps which
    phase runs (load, tune, holdout, final fit, ...; predict) and the highest RSS seen in each, from the
    bench's sampler: where the peak is, not only how high."""

    def __init__(self) -> None:
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self._names: dict[int, str] = {}
        self._rss: Any = None  # the bench's RssSampler while sampling

    def _enter(self, phase: str) -> None:
        if phase != self.phase and self._rss is not None:
            self._close_phase()
        self.phase = phase

    def _close_phase(self) -> None:
        mb = round(self._rss.stage_peak() / 2**20, 1)
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), mb)

    def task(self, description: str, total: float | None) -> TaskID:
        self._names[len(self._names)] = description
        self._enter(description)
        return TaskID(len(self._names) - 1)

    def update(
        self,
        task: TaskID,
        *,
        completed: float | None = None,
        total: float | None = None,
        advance: float | None = None,
        info: str | None = None,
    ) -> None:
        self._enter(self._names[task])

    def log(self, message: str) -> None:
        pass

    @contextmanager
    def sampling(self) -> Iterator[None]:
        from tickwise.bench.historical import RssSampler

        with RssSampler() as rss:
            rss.stage_peak()  # the phases count from here
            self._rss = rss
            try:
                yield
            finally:
                self._close_phase()
                self._rss = None


if __name__ == "__main__":
    main(sys.argv[1:])
