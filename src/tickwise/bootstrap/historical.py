"""Composition root of the historical mode: database (migrated), repositories, calendar, model store.

The broker is opened separately (``bootstrap.broker.open_broker``) and only by the steps that need it
(sync and backfill), so ``tickwise train`` and ``tickwise predict`` work without Kite or the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tickwise.adapters.local.model_store import LocalModelStore
from tickwise.adapters.timescale.backfill_log_repository import TimescaleBackfillLogRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.adapters.timescale.label_repository import TimescaleLabelRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.bootstrap.calendar import calendar_of
from tickwise.bootstrap.database import database_url, migrate, migration_url, open_pool
from tickwise.config import Settings
from tickwise.domain.calendar import SessionCalendar


@dataclass
class HistoricalContext:
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


def models_dir(settings: Settings) -> Path:
    return Path(settings.system.data_dir).resolve() / "models"


@asynccontextmanager
async def open_historical(settings: Settings, *, url: str | None = None) -> AsyncIterator[HistoricalContext]:
    """Start/locate the database, apply migrations, and yield the wired repositories."""
    dsn: str = url if url else await asyncio.to_thread(database_url, settings)
    await asyncio.to_thread(migrate, url if url else await asyncio.to_thread(migration_url, settings))
    async with open_pool(settings, url=dsn) as pool:
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
        )
