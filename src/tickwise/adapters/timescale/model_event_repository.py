"""``model_events``: the append-only audit trail of model governance (migration 0006).

Status changes and their events are written in one transaction, so ``models.status`` never moves
without a matching event. The table itself refuses UPDATE and DELETE (a trigger), whoever asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

import asyncpg

from tickwise.domain.errors import ModelError
from tickwise.ports.model_events import ModelEvent, ModelEventKind, StatusChange, StatusName

_EVENTS = get_args(ModelEventKind)
_STATUSES = get_args(StatusName)
# clock_timestamp(), not now(): events appended in one transaction keep their order.
_INSERT = (
    "INSERT INTO model_events (time, model_version, event, reason, metrics, actor) "
    "VALUES (clock_timestamp(), $1, $2, $3, $4, $5)"
)


def _values(event: ModelEvent) -> list[Any]:
    if event.event not in _EVENTS:
        raise ModelError(f"model event {event.event!r} is not one of {', '.join(_EVENTS)}")
    return [event.model_version, event.event, event.reason, dict(event.metrics), event.actor]


def _event(row: asyncpg.Record) -> ModelEvent:
    return ModelEvent(
        model_version=row["model_version"],
        event=row["event"],
        reason=row["reason"],
        metrics=row["metrics"] or {},
        actor=row["actor"],
        time=row["time"],
    )


class TimescaleModelEventRepository:
    """ModelEventRepository on the ``model_events`` hypertable."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(self, event: ModelEvent) -> None:
        values = _values(event)
        async with self._pool.acquire() as conn:
            try:
                await conn.execute(_INSERT, *values)
            except asyncpg.ForeignKeyViolationError:
                raise ModelError(f"no model version {event.model_version!r} in the models table") from None

    async def history(
        self, model_version: str | None = None, *, limit: int | None = None
    ) -> list[ModelEvent]:
        """Events, newest first; ``limit`` None returns all of them."""
        params: list[Any] = []
        where = ""
        if model_version is not None:
            params.append(model_version)
            where = "WHERE model_version = $1"
        sql = f"SELECT time, model_version, event, reason, metrics, actor FROM model_events {where} ORDER BY time DESC"  # nosec B608: the WHERE clause is a constant; values are $n parameters
        if limit is not None:
            params.append(int(limit))
            sql += f" LIMIT ${len(params)}"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return [_event(r) for r in rows]

    async def apply(self, changes: Sequence[StatusChange]) -> None:
        """Apply status changes in order with their events, atomically.

        Order matters: demote the current champion before promoting another (one champion at a time).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            for change in changes:
                version = change.event.model_version
                values = _values(change.event)
                exists = await conn.fetchval(
                    "SELECT 1 FROM models WHERE model_version = $1 FOR UPDATE", version
                )
                if not exists:
                    raise ModelError(f"no model version {version!r} in the models table")
                if change.status is not None:
                    if change.status not in _STATUSES:
                        raise ModelError(
                            f"model status {change.status!r} is not one of {', '.join(_STATUSES)}"
                        )
                    await conn.execute(
                        "UPDATE models SET status = $2 WHERE model_version = $1", version, change.status
                    )
                await conn.execute(_INSERT, *values)
