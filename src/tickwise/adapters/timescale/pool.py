"""asyncpg pool lifecycle: open, register JSON codecs, translate connection failures into StorageError."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from tickwise.domain.errors import StorageError
from tickwise.observability import logging as observability_logging


def redact_url(url: str) -> str:
    """The URL with any password (in the userinfo or a ``?password=`` parameter) replaced by ``***``."""
    return observability_logging.redact_url(url)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )


@asynccontextmanager
async def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    command_timeout_s: float = 60.0,
    connect_timeout_s: float = 5.0,
) -> AsyncIterator[asyncpg.Pool]:
    """Open an asyncpg pool on ``url`` (JSON/JSONB decoded to Python objects); close it on exit.

    An unreachable or refusing database raises StorageError naming the URL (without password).
    """
    try:
        pool: Any = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout_s,
            timeout=connect_timeout_s,
            init=_init_connection,
        )
    # InternalClientError ("cannot switch to state ...") is what asyncpg raises on a connection cut
    # mid-protocol: a connection failure like the others, not a bug of ours.
    except (
        TimeoutError,
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError,
    ) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot connect to the database at {redact_url(url)}: {reason} "
            "(start the embedded cluster with `tickwise db up`, or fix DATABASE_URL)"
        ) from None
    try:
        yield pool
    finally:
        await pool.close()
