"""Instrument sync from the simulator's dump into the real TimescaleDB ``instruments`` table."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import asyncpg
import pytest

from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.bootstrap.broker import open_simulated_broker
from tickwise.bootstrap.instruments import sync_instruments
from tickwise.config import BrokerSettings, DatabaseSettings, Settings
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.pipelines.historical.instruments import InstrumentManager

pytestmark = pytest.mark.db


class ShrinkingSource:
    """The simulator's dump with one instrument removed (as on the day after its delisting)."""

    def __init__(self, dump: list[Instrument], drop: int) -> None:
        self.dump = [i for i in dump if i.instrument_token != drop]

    async def instruments(self, exchange: str | None = None) -> list[Instrument]:
        return list(self.dump)


async def test_sync_upserts_the_dump_then_applies_a_daily_delta(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleInstrumentRepository(clean_db)
    start = datetime(2026, 3, 2, 9, 14, 50, tzinfo=IST)
    async with open_simulated_broker(Settings(), rest_port=0, ws_port=0, start=start) as broker:
        manager = InstrumentManager(broker.rest, repo, today=lambda: date(2026, 3, 2))
        first = await manager.sync()
        dump = await broker.rest.instruments()
    assert first.inserted == first.total == len(dump) and first.expired == 0
    assert await repo.count(active_only=True) == len(dump)

    again = await InstrumentManager(
        ShrinkingSource(dump, drop=dump[0].instrument_token), repo, today=lambda: date(2026, 3, 2)
    ).sync()
    assert (again.inserted, again.updated, again.expired) == (0, 0, 1)
    assert await repo.count(active_only=True) == len(dump) - 1

    renamed = [
        replace(i, tradingsymbol="RENAMED") if i.instrument_token == dump[1].instrument_token else i
        for i in dump
    ]
    delta = await InstrumentManager(
        ShrinkingSource(renamed, drop=-1), repo, today=lambda: date(2026, 3, 2)
    ).sync()
    assert (delta.inserted, delta.updated, delta.expired) == (0, 2, 0)  # renamed + reactivated
    symbols = await manager.symbol_map()
    assert symbols.symbol(dump[1].instrument_token).endswith(":RENAMED")
    assert symbols.token("NSE:NIFTY 50") == 256265


async def test_instruments_sync_wiring_uses_the_simulator_without_credentials(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database=DatabaseSettings(url=db_url),
        broker=BrokerSettings(token_file=tmp_path / "kite_token.json"),
    )
    result = await sync_instruments(settings)
    assert result.inserted == result.total > 0
    assert await TimescaleInstrumentRepository(clean_db).count(active_only=True) == result.total
