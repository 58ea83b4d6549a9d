"""Separate worlds: which market the configuration talks to, where its embedded data lives, and the
guard that keeps one database to one market.

* :func:`configured_world`: the simulator (with ``broker.simulator.seed``) when there are no Kite
  credentials, else the Kite account of ``KITE_API_KEY`` (or of the stored login).
* :func:`world_settings`: with the embedded database (no ``DATABASE_URL``), each world has its own data
  directory and cluster. The simulator keeps ``system.data_dir`` itself (``.data/``, so the cluster of
  an older checkout stays the simulator's, untouched); a Kite account gets ``<data_dir>/kite-<api_key>/``
  with its own cluster on ``database.port + 1``, models, MLflow runs, spill files and live status. The
  token file stays where it is: it is what tells the worlds apart.
* :func:`ensure_world`: every command that writes market data records the world at the database's first
  use and refuses (``ConfigError``, exit 2, one line naming the fix) to write into another world's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tickwise.adapters.timescale.world_repository import TimescaleWorldRepository
from tickwise.bootstrap.credentials import token_store, uses_simulator
from tickwise.config import Settings
from tickwise.domain.errors import BrokerError, ConfigError, StorageError
from tickwise.domain.world import World

KITE_PORT_OFFSET = 1  # a Kite world's embedded cluster listens on database.port + 1


def configured_world(settings: Settings) -> World:
    """The market ``settings`` talk to (the user id comes from the stored login, when there is one)."""
    if uses_simulator(settings):
        return World("simulator", seed=settings.broker.simulator.seed)
    try:
        stored = token_store(settings).load()
    except BrokerError:
        stored = None
    if stored is not None and stored.simulated:
        stored = None
    api_key = settings.broker.api_key or (stored.api_key if stored else "") or "unknown"
    user_id = stored.user_id if stored is not None and stored.api_key == api_key else ""
    return World("kite", api_key=api_key, user_id=user_id or None)


def world_root(settings: Settings) -> Path:
    """The configured ``system.data_dir`` (the simulator world's directory, parent of the Kite worlds)."""
    data_dir = Path(settings.system.data_dir)
    world = configured_world(settings)
    if world.kind == "kite" and data_dir.name == world.name:
        return data_dir.parent
    return data_dir


def world_settings(settings: Settings) -> Settings:
    """``settings`` with the configured world's data directory and port (embedded database only)."""
    if settings.database.url.get_secret_value():
        return settings  # an external database: the guard alone keeps worlds apart
    world = configured_world(settings)
    root = Path(settings.system.data_dir)
    if world.kind == "simulator" or root.name == world.name:
        return settings
    home = root / world.name
    live = settings.live
    spill = live.spill_dir
    if Path(spill) == root / "spill":  # the default follows the world; an explicit one is kept
        spill = home / "spill"
    return settings.model_copy(
        update={
            "system": settings.system.model_copy(update={"data_dir": home}),
            "database": settings.database.model_copy(
                update={"port": settings.database.port + KITE_PORT_OFFSET}
            ),
            "live": live.model_copy(update={"spill_dir": spill}),
        }
    )


@dataclass(frozen=True, slots=True)
class WorldOnDisk:
    """An embedded world found under the data directory (for ``tickwise status``)."""

    name: str
    data_dir: Path
    has_database: bool


def worlds_on_disk(settings: Settings) -> list[WorldOnDisk]:
    """The simulator world (the root) and every ``kite-*`` directory under it, with or without a cluster."""
    root = world_root(settings)
    found = [WorldOnDisk("simulator", root, (root / "pg" / "PG_VERSION").is_file())]
    if root.is_dir():
        for entry in sorted(root.glob("kite-*")):
            if entry.is_dir():
                found.append(WorldOnDisk(entry.name, entry, (entry / "pg" / "PG_VERSION").is_file()))
    return found


def mismatch_message(held: World, wanted: World, *, external: bool) -> str:
    """The one line that refuses to mix ``wanted``'s data into a database that holds ``held``."""
    where = "this database (DATABASE_URL)" if external else "this data directory's database"
    if held.kind == wanted.kind == "simulator":
        fix = f"set broker.simulator.seed back to {held.seed} (TICKWISE__BROKER__SIMULATOR__SEED)"
        if not external:
            fix += ", or use another data directory (TICKWISE__SYSTEM__DATA_DIR)"
    elif held.kind == "simulator":
        fix = (
            "point DATABASE_URL at another database for Kite (or unset it to use the embedded one)"
            if external
            else "use another data directory (TICKWISE__SYSTEM__DATA_DIR)"
        ) + ", or unset KITE_API_KEY and KITE_ACCESS_TOKEN to work in the simulator"
    else:
        fix = (
            "point DATABASE_URL at another database"
            if external
            else "use another data directory (TICKWISE__SYSTEM__DATA_DIR)"
        ) + f", or configure {held.describe()} again"
    return f"{where} holds {held.describe()}, not {wanted.describe()}: refusing to mix them; {fix}"


async def ensure_world(pool: asyncpg.Pool, settings: Settings) -> World:
    """Record the configured world at first use; refuse (ConfigError) when the database holds another."""
    wanted = configured_world(settings)
    try:
        held = await TimescaleWorldRepository(pool).claim(wanted)
    except asyncpg.UndefinedTableError:
        raise StorageError(
            "the database has no `world` table (migrations missing): run `tickwise db migrate`"
        ) from None
    if not held.same_market(wanted):
        raise ConfigError(
            mismatch_message(held, wanted, external=bool(settings.database.url.get_secret_value()))
        )
    return held


async def recorded_world(pool: asyncpg.Pool) -> World | None:
    """The world the database holds, without recording one (``tickwise status``)."""
    return await TimescaleWorldRepository(pool).recorded()
