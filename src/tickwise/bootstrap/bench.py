"""Wiring of `tickwise bench`: each benchmark with the database it needs (migrated), figures as a dict.

The benchmarks live in :mod:`tickwise.bench`; the CLI reaches them through here, like every other
command reaches its pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tickwise.bootstrap.database import database_url, migrate, migration_url
from tickwise.config import Settings

Figures = dict[str, Any]  # a benchmark's figures, printed as one JSON object


def ingest_bench(settings: Settings, *, rows: int, instruments: int) -> Figures:
    """Candle bulk write rows/s (fresh and re-written) vs a plain ``psql \\copy`` of the same rows."""
    from tickwise.bench.ingest import run_ingest_bench

    url = database_url(settings)
    migrate(migration_url(settings))
    return asyncio.run(run_ingest_bench(url, rows, instruments=instruments))


def labels_bench(*, events: int) -> Figures:
    """Triple-barrier kernel time for N long events on a random walk, and the label shares."""
    from tickwise.bench.labels import run_labels_bench

    return dict(run_labels_bench(n_events=events))


def codec_bench(*, ticks: int) -> Figures:
    """Kite binary decoder throughput (full-mode ticks/s on one core)."""
    from tickwise.bench.codec import run_codec_bench

    return run_codec_bench(ticks)


def features_bench(*, candles: int, instruments: int) -> Figures:
    """Full feature set candles/s and one live bar update for N instruments."""
    from tickwise.bench.features import run_features_bench

    return run_features_bench(n_candles=candles, instruments=instruments)


def live_bench(
    settings: Settings,
    *,
    instruments: int,
    minutes: int,
    db: bool,
    shards: int = 1,
    feed_close_margin_s: float | None = 0.3,
    freeze_gc: bool = True,
    market_in_process: bool = False,
    trace_memory: int = 0,
    predict_threads: int | None = None,
) -> Figures:
    """Live pipeline on the simulated market; with ``db`` through the table writers into the database."""
    from tickwise.bench.live import run_sharded_live_bench

    common = {
        "instruments": instruments,
        "minutes": minutes,
        "feed_close_margin_s": feed_close_margin_s,
        "freeze_gc": freeze_gc,
        "market_in_process": market_in_process,
        "trace_memory": trace_memory,
        "predict_threads": predict_threads if predict_threads is not None else settings.live.predict_threads,
    }
    if not db:
        return run_sharded_live_bench(shards, **common)
    url = database_url(settings)
    migrate(migration_url(settings))
    return run_sharded_live_bench(
        shards, **common, db=True, url=url, pool_size=settings.database.pool_max_size
    )


def historical_bench_options(stages: str | None, seed: str) -> tuple[tuple[str, ...], str]:
    """``--stages`` and ``--seed`` of `bench historical`, checked; ``ValueError`` says what is wrong."""
    from tickwise.bench.historical import DEFAULT_STAGES, SEED_MODES, parse_stages

    if seed not in SEED_MODES:
        raise ValueError(f"--seed is one of {', '.join(SEED_MODES)}, not {seed!r}")
    return (parse_stages(stages) if stages else DEFAULT_STAGES), seed


def historical_bench(
    settings: Settings,
    *,
    instruments: int,
    sessions: int,
    scheduler: str | None,
    chunk_sessions: int | None = None,
    stages: str | None = None,
    seed: str = "rest",
    on_stage: Callable[[Figures], None] | None = None,
) -> Figures:
    """The historical stages of N instruments x D sessions on a throw-away cluster (``bench.historical``);
    the scheduler and chunk size default to ``compute.scheduler`` and ``compute.chunk_sessions``,
    ``stages`` (comma-separated) to backfill,checks,derive; ``seed`` is rest or direct
    (:func:`historical_bench_options`); ``on_stage`` gets each stage's figures as soon as it ends."""
    from tickwise.bench.historical import run_historical_bench

    names, mode = historical_bench_options(stages, seed)
    return run_historical_bench(
        instruments=instruments,
        sessions=sessions,
        scheduler=scheduler or settings.compute.scheduler,
        workers=settings.compute.workers,
        chunk_sessions=chunk_sessions or settings.compute.chunk_sessions,
        stages=names,
        seed="direct" if mode == "direct" else "rest",
        on_stage=on_stage or (lambda figures: None),
    )
