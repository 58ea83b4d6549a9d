"""The wired database side every mode opens (``open_historical``), and the settings both modes map the
same way (signal options, candle checks), without importing the training stack.

Split out of ``bootstrap/historical.py`` (which re-exports every name here) because a live shard opens
this context too: importing the historical mode's module pulls LightGBM, scikit-learn, Dask, Optuna's
storage (SQLAlchemy) and the training pipeline into every live process, about 100 MB resident a shard
never uses (docs/benchmarks.md, "Live memory per 1,000 instruments"). ``HistoricalContext.options`` (the
training options) is therefore built on first use, by the historical mode only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from tickwise.adapters.local.model_store import LocalModelStore
from tickwise.adapters.timescale.backfill_log_repository import TimescaleBackfillLogRepository
from tickwise.adapters.timescale.candle_flag_repository import TimescaleCandleFlagRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.adapters.timescale.label_repository import TimescaleLabelRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.adapters.timescale.signal_member_repository import TimescaleSignalMemberRepository
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.bootstrap.calendar import calendar_of
from tickwise.bootstrap.database import database_url, migrate, migration_url, open_pool
from tickwise.config import Settings
from tickwise.core.candle_flags import CandleCheckConfig, fit_compiled_model
from tickwise.core.candle_flags_minute import FitRequest
from tickwise.core.isolation_pack import CompiledForest
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import ConfigError
from tickwise.pipelines import models as model_use
from tickwise.pipelines.live.candle_checks import LiveCandleChecker
from tickwise.pipelines.models import SignalOptions
from tickwise.ports.hooks import PipelineHooks

if TYPE_CHECKING:
    from tickwise.core.model import ModelArtifact
    from tickwise.core.signals import SignalGenerator
    from tickwise.pipelines.historical.options import HistoricalOptions


@dataclass
class HistoricalContext:
    """The wired ports (satisfies ``pipelines.historical.context.HistoricalPorts``) plus the pool and
    settings for wiring code that needs more (the live mode)."""

    settings: Settings
    url: str
    pool: asyncpg.Pool
    instruments: TimescaleInstrumentRepository
    candles: TimescaleCandleRepository
    features: TimescaleFeatureRepository
    labels: TimescaleLabelRepository
    signals: TimescaleSignalRepository
    models: TimescaleModelRepository
    backfill_log: TimescaleBackfillLogRepository
    store: LocalModelStore
    calendar: SessionCalendar
    signal_members: TimescaleSignalMemberRepository

    @cached_property
    def options(self) -> HistoricalOptions:
        """``historical_options(settings)``, built on first use: it imports the training configuration
        (LightGBM and what it imports), which the live mode never reads (module doc)."""
        from tickwise.bootstrap.historical import historical_options

        return historical_options(self.settings)


def models_dir(settings: Settings) -> Path:
    return Path(settings.system.data_dir).resolve() / "models"


def signal_options_of(settings: Settings) -> SignalOptions:
    mt = settings.model_training
    meta = settings.signals.meta
    regime_filter = settings.signals.regime_filter
    return SignalOptions(
        threshold=mt.signal_threshold,
        kelly_fraction=mt.kelly_fraction,
        max_position=mt.max_position,
        suppress_states=regime_filter.suppress_states,
        max_change_prob=regime_filter.max_change_prob,
        meta_step=meta.step if meta.enabled else None,
    )


def signal_generator(settings: Settings, artifact: ModelArtifact) -> SignalGenerator:
    """The generator for ``artifact`` with the configured thresholds (both modes)."""
    return model_use.signal_generator(signal_options_of(settings), artifact)


def candle_check_config(settings: Settings) -> CandleCheckConfig:
    """``data_quality`` settings -> the thresholds and exclusion policy of ``core.candle_flags``."""
    dq = settings.data_quality
    try:
        return CandleCheckConfig(
            window=dq.window,
            min_history=dq.min_history,
            return_z=dq.return_z,
            range_iqr=dq.range_iqr,
            wick_iqr=dq.wick_iqr,
            volume_z=dq.volume_z,
            session_gap=dq.session_gap,
            anomaly=dq.anomaly,
            anomaly_threshold=dq.anomaly_threshold,
            anomaly_fit_sessions=dq.anomaly_fit_sessions,
            exclude=frozenset(dq.exclude),
        )
    except ValueError as exc:
        raise ConfigError(f"data_quality: {exc}") from None


def live_candle_checks(
    settings: Settings, pool: asyncpg.Pool, calendar: SessionCalendar, hooks: PipelineHooks
) -> tuple[LiveCandleChecker, TimescaleCandleFlagRepository] | None:
    """The live mode's candle checker and where its flags go (None when the checks are disabled)."""
    if not settings.data_quality.enabled:
        return None
    checker = LiveCandleChecker(candle_check_config(settings), calendar, hooks, fit_many=fit_in_child)
    return checker, TimescaleCandleFlagRepository(pool)


def fit_in_child(requests: list[FitRequest]) -> list[CompiledForest | None]:
    """The week's anomaly models fitted in a short-lived spawned child, returned compiled: the fit needs
    scikit-learn (about 50 MB resident with the scipy.stats it imports), scoring does not, and a live
    process fits once before its session. The same function fits them in process: the same models."""
    if not requests:
        return []
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fit_compiled_models, requests).result()


def fit_compiled_models(requests: list[FitRequest]) -> list[CompiledForest | None]:
    return [fit_compiled_model(*request) for request in requests]


def migrate_to_head(url: str) -> None:
    """``migrate(url)`` without its report: what a migration child process runs (picklable by name)."""
    migrate(url)


async def _migrate(url: str, *, in_child: bool) -> None:
    if not in_child:
        await asyncio.to_thread(migrate, url)
        return
    # Alembic, SQLAlchemy and psycopg2 cost a process about 30 MB resident that it keeps once imported;
    # a live shard migrates once and then never again, so it does so in a short-lived child (spawned:
    # nothing of this process is copied into it). An error there is raised here, as it would have been.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        await asyncio.get_running_loop().run_in_executor(pool, migrate_to_head, url)


@asynccontextmanager
async def open_historical(
    settings: Settings, *, url: str | None = None, migrate_in_child: bool = False
) -> AsyncIterator[HistoricalContext]:
    """Start/locate the database, apply migrations, check its world, and yield the wired repositories.

    ``migrate_in_child``: run the migrations in a child process (the live mode: see :func:`_migrate`).
    """
    from tickwise.bootstrap.world import ensure_world

    dsn: str = url if url else await asyncio.to_thread(database_url, settings)
    admin = url if url else await asyncio.to_thread(migration_url, settings)
    await _migrate(admin, in_child=migrate_in_child)
    async with open_pool(settings, url=dsn) as pool:
        await ensure_world(pool, settings)  # every user of this context writes market data
        yield HistoricalContext(
            settings=settings,
            url=dsn,
            pool=pool,
            instruments=TimescaleInstrumentRepository(pool),
            candles=TimescaleCandleRepository(pool),
            features=TimescaleFeatureRepository(pool),
            labels=TimescaleLabelRepository(pool),
            signals=TimescaleSignalRepository(pool),
            models=TimescaleModelRepository(pool),
            backfill_log=TimescaleBackfillLogRepository(pool),
            store=LocalModelStore(models_dir(settings)),
            calendar=calendar_of(settings),
            signal_members=TimescaleSignalMemberRepository(pool),
        )
