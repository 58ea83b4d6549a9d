"""`tickwise instruments sync`: the broker's instrument dump into the ``instruments`` table."""

from __future__ import annotations

from collections.abc import Sequence

from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.bootstrap.broker import open_broker
from tickwise.bootstrap.database import open_pool
from tickwise.bootstrap.world import ensure_world
from tickwise.config import Settings
from tickwise.pipelines.historical.instruments import InstrumentManager, SyncResult


async def sync_instruments(settings: Settings, *, exchanges: Sequence[str] | None = None) -> SyncResult:
    """Sync the instrument dump of the configured broker (or the simulator) into the database."""
    async with open_pool(settings) as pool:
        await ensure_world(pool, settings)  # before the broker: a refused world starts nothing
        async with open_broker(settings) as broker:
            today = broker.now().date()
            manager = InstrumentManager(
                broker.rest, TimescaleInstrumentRepository(pool), exchanges=exchanges, today=lambda: today
            )
            return await manager.sync()
