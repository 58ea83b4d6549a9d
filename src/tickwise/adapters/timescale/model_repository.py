"""Trained model versions in the ``models`` table (at most one ``champion``)."""

from __future__ import annotations

from typing import get_args

import asyncpg

from tickwise.domain.errors import ModelError, StorageError
from tickwise.ports.repositories import ModelRecord, ModelStatus

_COLUMNS = (
    "model_version",
    "created_at",
    "trained_from",
    "trained_to",
    "feature_set",
    "feature_names",
    "params",
    "metrics",
    "mlflow_run_id",
    "status",
    "label_spec",
    "feature_spec",
    "artifact_path",
)
_STATUSES = get_args(ModelStatus)


def _record(row: asyncpg.Record) -> ModelRecord:
    return ModelRecord(
        model_version=row["model_version"],
        feature_set=row["feature_set"],
        feature_names=tuple(row["feature_names"]),
        params=row["params"] or {},
        metrics=row["metrics"] or {},
        status=row["status"],
        trained_from=row["trained_from"],
        trained_to=row["trained_to"],
        mlflow_run_id=row["mlflow_run_id"],
        label_spec=row["label_spec"],
        feature_spec=row["feature_spec"],
        artifact_path=row["artifact_path"],
        created_at=row["created_at"],
    )


class TimescaleModelRepository:
    """ModelRepository. Promoting a champion retires the previous one in the same transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, record: ModelRecord) -> None:
        """Insert a new model version (a champion insert retires the current champion)."""
        if record.status not in _STATUSES:
            raise ModelError(f"model status {record.status!r} is not one of {', '.join(_STATUSES)}")
        values: list[object] = [
            record.model_version,
            record.trained_from,
            record.trained_to,
            record.feature_set,
            list(record.feature_names),
            dict(record.params),
            dict(record.metrics),
            record.mlflow_run_id,
            record.status,
            None if record.label_spec is None else dict(record.label_spec),
            None if record.feature_spec is None else dict(record.feature_spec),
            record.artifact_path,
        ]
        cols = [c for c in _COLUMNS if c != "created_at"]
        sql = f"INSERT INTO models ({', '.join(cols)}) VALUES ({', '.join(f'${i}' for i in range(1, len(cols) + 1))})"  # nosec B608: column lists are module constants; every value is a bound $n parameter
        async with self._pool.acquire() as conn, conn.transaction():
            if record.status == "champion":
                await conn.execute("UPDATE models SET status = 'retired' WHERE status = 'champion'")
            try:
                await conn.execute(sql, *values)
            except asyncpg.UniqueViolationError:
                raise StorageError(f"model version {record.model_version!r} already exists") from None

    async def get(self, model_version: str) -> ModelRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {', '.join(_COLUMNS)} FROM models WHERE model_version = $1",  # nosec B608: column lists are module constants; every value is a bound $n parameter
                model_version,
            )
        return None if row is None else _record(row)

    async def champion(self) -> ModelRecord | None:
        """The current champion, or None when no model has been promoted."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {', '.join(_COLUMNS)} FROM models WHERE status = 'champion'")  # nosec B608: column lists are module constants; every value is a bound $n parameter
        return None if row is None else _record(row)

    async def list(self, *, status: ModelStatus | None = None) -> list[ModelRecord]:
        """Model versions, newest first."""
        async with self._pool.acquire() as conn:
            if status is None:
                rows = await conn.fetch(
                    f"SELECT {', '.join(_COLUMNS)} FROM models ORDER BY created_at DESC, model_version DESC"  # nosec B608: column lists are module constants; every value is a bound $n parameter
                )
            else:
                rows = await conn.fetch(
                    f"SELECT {', '.join(_COLUMNS)} FROM models WHERE status = $1 "  # nosec B608: column lists are module constants; every value is a bound $n parameter
                    "ORDER BY created_at DESC, model_version DESC",
                    status,
                )
        return [_record(r) for r in rows]

    async def set_status(self, model_version: str, status: ModelStatus) -> None:
        """Change a version's status; ``champion`` retires the previous champion atomically."""
        if status not in _STATUSES:
            raise ModelError(f"model status {status!r} is not one of {', '.join(_STATUSES)}")
        async with self._pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval(
                "SELECT 1 FROM models WHERE model_version = $1 FOR UPDATE", model_version
            )
            if not exists:
                raise ModelError(
                    f"no model version {model_version!r} in the models table (see `tickwise train`)"
                )
            if status == "champion":
                await conn.execute(
                    "UPDATE models SET status = 'retired' WHERE status = 'champion' AND model_version <> $1",
                    model_version,
                )
            await conn.execute(
                "UPDATE models SET status = $2 WHERE model_version = $1", model_version, status
            )
