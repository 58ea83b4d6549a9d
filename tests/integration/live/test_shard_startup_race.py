"""Shards start at once: their start-up writes must not race each other into a dead shard.

Every shard of ``tickwise live --shards N`` records the whole universe for Grafana's picker
(``TimescaleWorldRepository.replace_universe``: DELETE then INSERT). Two of those transactions
overlapping made the later one fail on the primary key (its DELETE's snapshot does not see the rows the
first one inserted), the shard exited non-zero and the supervisor restarted it: the
``[1, 1, 0]`` restarts of the fresh-clone CI run (stop 18) in ``test_live_shards.py``. Reproduced here
deterministically: one transaction is held open after its INSERT while the other starts.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tickwise.adapters.timescale.world_repository import TimescaleWorldRepository
from tickwise.domain.instrument import Instrument

pytestmark = pytest.mark.db


def instrument(token: int, symbol: str) -> Instrument:
    return Instrument(token, token >> 8, symbol, symbol, "NSE", "NSE", "EQ", 0.05, 1)


UNIVERSE = [instrument(408065, "INFY"), instrument(2953217, "TCS"), instrument(738561, "RELIANCE")]


async def test_a_shard_replacing_the_universe_while_another_does_succeeds(
    clean_db: asyncpg.Pool, db_url: str
) -> None:
    repo = TimescaleWorldRepository(clean_db)
    await repo.replace_universe(UNIVERSE)  # an earlier run's universe
    first = await asyncpg.connect(db_url)
    try:
        tx = first.transaction()
        await tx.start()
        # Another writer's replace (the statements of the unlocked version), stopped before its commit.
        await first.execute("DELETE FROM universe")
        await first.executemany(
            "INSERT INTO universe (instrument_token, tradingsymbol, exchange) VALUES ($1, $2, $3)",
            [(i.instrument_token, i.tradingsymbol, i.exchange) for i in UNIVERSE],
        )
        second = asyncio.create_task(repo.replace_universe(UNIVERSE))
        await asyncio.sleep(0.5)
        assert not second.done()  # it waits for the first shard's transaction
        await tx.commit()
        assert await asyncio.wait_for(second, 30) == len(UNIVERSE)
    finally:
        await first.close()
    async with clean_db.acquire() as conn:
        tokens = sorted(
            r["instrument_token"] for r in await conn.fetch("SELECT instrument_token FROM universe")
        )
    assert tokens == sorted(i.instrument_token for i in UNIVERSE)


async def test_three_shards_replacing_the_universe_at_once_all_succeed(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleWorldRepository(clean_db)
    for _ in range(20):
        written = await asyncio.gather(*(repo.replace_universe(UNIVERSE) for _ in range(3)))
        assert written == [3, 3, 3]
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM universe") == 3
