"""The world guard on a real database: the first use records the world, another world is refused."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tickwise.bootstrap.world import ensure_world, recorded_world
from tickwise.config import Settings, load_settings
from tickwise.domain.errors import ConfigError, StorageError
from tickwise.domain.world import World

pytestmark = pytest.mark.db


def settings(tmp_path: Path, db_url: str, **env: str) -> Settings:
    return load_settings(
        environ={
            "DATABASE_URL": db_url,
            "TICKWISE__SYSTEM__DATA_DIR": str(tmp_path),
            "TICKWISE__BROKER__TOKEN_FILE": str(tmp_path / "kite_token.json"),
            **env,
        }
    )


async def test_the_first_use_records_the_world_and_a_second_use_of_it_passes(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    assert await recorded_world(clean_db) is None
    sim = settings(tmp_path, db_url)
    assert await ensure_world(clean_db, sim) == World("simulator", seed=42)
    assert await ensure_world(clean_db, sim) == World("simulator", seed=42)
    assert await recorded_world(clean_db) == World("simulator", seed=42)


async def test_kite_credentials_on_a_simulator_database_are_refused_with_the_fix(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await ensure_world(clean_db, settings(tmp_path, db_url))
    with pytest.raises(ConfigError, match=r"holds the simulator \(seed 42\), not a Kite account") as caught:
        await ensure_world(clean_db, settings(tmp_path, db_url, KITE_API_KEY="x"))
    assert "unset KITE_API_KEY" in str(caught.value)
    with pytest.raises(ConfigError, match=r"set broker\.simulator\.seed back to 42"):
        await ensure_world(clean_db, settings(tmp_path, db_url, TICKWISE__BROKER__SIMULATOR__SEED="7"))
    assert await recorded_world(clean_db) == World("simulator", seed=42)


async def test_a_simulator_on_a_kite_database_is_refused(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await ensure_world(clean_db, settings(tmp_path, db_url, KITE_API_KEY="x"))
    with pytest.raises(ConfigError, match=r"holds a Kite account \(api_key x\), not the simulator"):
        await ensure_world(clean_db, settings(tmp_path, db_url))


async def test_a_database_without_the_world_table_asks_for_the_migration(
    admin_pool: asyncpg.Pool, admin_db_url: str, db_url: str, tmp_path: Path
) -> None:
    async with admin_pool.acquire() as conn:  # an empty schema stands in for a database before 0008
        await conn.execute("CREATE SCHEMA IF NOT EXISTS before_0008")
    pool = await asyncpg.create_pool(
        admin_db_url, min_size=1, max_size=1, server_settings={"search_path": "before_0008"}
    )
    try:
        with pytest.raises(StorageError, match=r"run `tickwise db migrate`"):
            await ensure_world(pool, settings(tmp_path, db_url))
    finally:
        await pool.close()
        async with admin_pool.acquire() as conn:
            await conn.execute("DROP SCHEMA before_0008")
