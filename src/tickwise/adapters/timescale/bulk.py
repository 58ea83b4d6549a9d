"""Bulk writes: numpy-encoded binary COPY into a temp stage, then ``INSERT ... ON CONFLICT`` (one transaction).

COPY has no ``ON CONFLICT``, so every bulk write stages first (timescale.md §3.3)::

    CREATE TEMP TABLE _stage_t (LIKE t INCLUDING DEFAULTS) ON COMMIT DROP;
    COPY _stage_t (...) FROM STDIN (FORMAT binary);
    INSERT INTO t (...) SELECT ... FROM _stage_t ON CONFLICT (key) DO NOTHING | DO UPDATE SET ...;

The COPY payload is built column-wise with numpy instead of per-row Python tuples: rows are grouped by
their byte layout (which text value, which columns are NULL), each group becomes one packed structured
array, and the groups are concatenated. Row order does not matter to the staged insert. Float columns
that may hold "missing" are sent as NaN and turned into NULL by the INSERT (``NULLIF(c, 'NaN')``), so a
wide feature frame with scattered NaNs does not explode into many layouts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg
import numpy as np
import pandas as pd

from tickwise.domain.errors import StorageError

OnConflict = Literal["nothing", "update"]
Kind = Literal["int2", "int4", "int8", "float8", "bool", "timestamptz", "date", "text"]

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800 * 1_000_000
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
_FIXED: dict[str, tuple[str, int]] = {
    "int2": (">i2", 2),
    "int4": (">i4", 4),
    "int8": (">i8", 8),
    "float8": (">f8", 8),
    "bool": ("u1", 1),
    "timestamptz": (">i8", 8),
    "date": (">i4", 4),
}
_MAX_LAYOUTS = 4096


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a COPY payload: values already converted (see :func:`column_from_series`)."""

    name: str
    kind: Kind
    values: np.ndarray  # int/float/bool array, int64 µs (timestamptz), int days (date) or object (text)
    null: np.ndarray | None = None  # bool mask, True = NULL
    nan_to_null: bool = False  # float8: NaN becomes NULL in the target table


def timestamps_us(series: pd.Series) -> np.ndarray:
    """tz-aware datetimes -> int64 microseconds since the Unix epoch (UTC)."""
    index = pd.DatetimeIndex(series)
    if index.tz is None:
        raise ValueError("naive timestamps")
    return np.asarray(index.as_unit("us").asi8, dtype=np.int64)


class TooManyLayouts(StorageError):
    """The rows have too many distinct byte layouts to encode column-wise."""


def encode_copy_binary(columns: Sequence[Column], n: int, *, nan_as_null: bool = False) -> bytes:
    """Encode ``n`` rows of ``columns`` as one PostgreSQL binary COPY stream (header to trailer)."""
    return b"".join(encode_copy_parts(columns, n, nan_as_null=nan_as_null))


def encode_copy_parts(
    columns: Sequence[Column], n: int, *, nan_as_null: bool = False
) -> list[bytes | memoryview]:
    """The binary COPY stream for ``n`` rows as consecutive parts (no concatenation copy).

    ``nan_as_null``: send NaN of ``nan_to_null`` float columns as NULL (for a COPY straight into the
    target table; the staged path converts NaN in SQL instead).
    """
    if n == 0:
        return [_HEADER, _TRAILER]
    if nan_as_null:
        columns = [
            Column(c.name, c.kind, c.values, np.isnan(c.values))
            if c.nan_to_null and c.kind == "float8"
            else c
            for c in columns
        ]
    # Layout code per row: which text value / NULL-ness each varying column has (mixed radix).
    layout = np.zeros(n, dtype=np.int64)
    radix = 1
    text_values: dict[int, list[bytes]] = {}
    text_codes: dict[int, np.ndarray] = {}
    null_masks: dict[int, np.ndarray] = {}
    for i, col in enumerate(columns):
        if col.kind == "text":
            codes, uniques = pd.factorize(pd.Series(col.values, copy=False), use_na_sentinel=True)
            encoded = [str(u).encode() for u in uniques]
            codes = np.where(codes < 0, len(encoded), codes).astype(np.int64)  # NULL = last code
            text_values[i] = encoded
            text_codes[i] = codes
            layout += codes * radix
            radix *= len(encoded) + 1
        elif col.null is not None and col.null.any():
            null_masks[i] = col.null
            layout += col.null.astype(np.int64) * radix
            radix *= 2
        if radix > 2**62:
            raise TooManyLayouts("COPY payload has too many distinct text values to encode column-wise")
    keys, inverse = np.unique(layout, return_inverse=True)
    if len(keys) > _MAX_LAYOUTS:
        raise TooManyLayouts(f"COPY payload has {len(keys)} row layouts (too many distinct text values)")
    converted = [_fixed_values(col) if col.kind != "text" else None for col in columns]
    parts: list[bytes | memoryview] = [_HEADER]
    for g in range(len(keys)):
        rows = np.nonzero(inverse == g)[0] if len(keys) > 1 else slice(None)
        first = int(rows[0]) if isinstance(rows, np.ndarray) else 0
        m = len(rows) if isinstance(rows, np.ndarray) else n
        fields: list[tuple[str, str]] = [("nf", ">i2")]
        plan: list[tuple[int, int, bytes | None]] = []  # (column, length, constant text)
        for i, col in enumerate(columns):
            if col.kind == "text":
                code = int(text_codes[i][first])
                if code == len(text_values[i]):
                    plan.append((i, -1, None))
                    fields.append((f"l{i}", ">i4"))
                else:
                    value = text_values[i][code]
                    plan.append((i, len(value), value))
                    fields.append((f"l{i}", ">i4"))
                    if value:
                        fields.append((f"d{i}", f"S{len(value)}"))
            elif i in null_masks and null_masks[i][first]:
                plan.append((i, -1, None))
                fields.append((f"l{i}", ">i4"))
            else:
                dtype, width = _FIXED[col.kind]
                plan.append((i, width, None))
                fields += [(f"l{i}", ">i4"), (f"d{i}", dtype)]
        block = np.empty(m, dtype=np.dtype(fields))
        block["nf"] = len(columns)
        for i, length, constant in plan:
            block[f"l{i}"] = length
            if length <= 0:
                continue
            if constant is not None:
                block[f"d{i}"] = constant
            else:
                values = converted[i]
                assert values is not None
                block[f"d{i}"] = values[rows]
        parts.append(block.data.cast("B"))
    parts.append(_TRAILER)
    return parts


async def _stream(
    parts: Sequence[bytes | memoryview], chunk: int = 1 << 20
) -> AsyncIterator[bytes | memoryview]:
    for part in parts:
        view = memoryview(part)
        for offset in range(0, len(view), chunk):
            yield view[offset : offset + chunk]


def _fixed_values(col: Column) -> np.ndarray:
    values = np.asarray(col.values)
    if col.kind == "timestamptz":
        return values.astype(np.int64) - _PG_EPOCH_US
    if col.kind == "date":
        return values.astype(np.int64) - _PG_EPOCH_DAYS
    if col.kind == "bool":
        return values.astype(np.uint8)
    if col.kind == "float8":
        return values.astype(np.float64)
    if col.null is not None and values.dtype.kind == "f":
        # Integers arriving as floats with NaN for NULL: the NaN rows are never written.
        return np.where(col.null, 0, values).astype(np.int64)
    return values.astype(np.int64)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def copy_upsert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[Column],
    n: int,
    key: Sequence[str],
    *,
    on_conflict: OnConflict = "nothing",
    update_columns: Sequence[str] | None = None,
    direct: bool = False,
) -> int:
    """Stage ``columns`` by binary COPY and insert into ``table``; return rows inserted or updated.

    Runs in its own transaction on ``conn``: either every row is applied or none. ``direct=True`` (the
    caller found no stored rows in the batch's key range) first tries a plain COPY straight into
    ``table`` inside a savepoint, which skips the stage and the conflict checks; any unique violation
    (a concurrent writer, duplicates inside the batch) rolls back to the savepoint and falls through
    to the staged upsert, so the result is the same either way.
    """
    if n == 0:
        return 0
    if on_conflict not in ("nothing", "update"):
        raise ValueError(f"on_conflict must be 'nothing' or 'update', not {on_conflict!r}")
    names = [c.name for c in columns]
    stage = f"_stage_{table}"
    target_cols = ", ".join(_quote(c) for c in names)
    select_cols = ", ".join(
        f"NULLIF({_quote(c.name)}, 'NaN'::float8)" if c.nan_to_null else _quote(c.name) for c in columns
    )
    conflict = ", ".join(_quote(k) for k in key)
    if on_conflict == "nothing":
        action = "DO NOTHING"
    else:
        updates = [c for c in (update_columns if update_columns is not None else names) if c not in key]
        action = (
            "DO UPDATE SET " + ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in updates)  # nosec B608: identifiers come from the schema and are quoted by _quote; values are bound
            if updates
            else "DO NOTHING"
        )
    async with conn.transaction():
        if direct:
            try:
                direct_payload: list[bytes | memoryview] | None = encode_copy_parts(
                    columns, n, nan_as_null=True
                )
            except TooManyLayouts:
                direct_payload = None
            if direct_payload is not None:
                try:
                    async with conn.transaction():  # savepoint
                        await conn.copy_to_table(
                            table, source=_stream(direct_payload), columns=names, format="binary"
                        )
                    return n
                except asyncpg.UniqueViolationError:
                    pass
        payload = encode_copy_parts(columns, n)
        await conn.execute(
            f"CREATE TEMP TABLE {_quote(stage)} (LIKE {_quote(table)} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        await conn.copy_to_table(stage, source=_stream(payload), columns=names, format="binary")
        status = await conn.execute(
            f"INSERT INTO {_quote(table)} ({target_cols}) SELECT {select_cols} FROM {_quote(stage)} "  # nosec B608: identifiers come from the schema and are quoted by _quote; values are bound
            f"ON CONFLICT ({conflict}) {action}"
        )
    return int(status.split()[-1])


# Small batches (a minute's signals) skip the temp stage: one ``INSERT ... SELECT FROM unnest(...)``
# statement, prepared once per connection, is a single round trip instead of CREATE TEMP TABLE +
# COPY + INSERT (three, plus catalog churn for the temp table), which is what a latency-bound write
# of a few hundred rows pays for.
SMALL_BATCH_ROWS = 2000
_ARRAY_TYPE: dict[str, str] = {
    "int2": "int2[]",
    "int4": "int4[]",
    "int8": "int8[]",
    "float8": "float8[]",
    "bool": "bool[]",
    "timestamptz": "int8[]",  # µs since the Unix epoch, turned into timestamptz exactly in SQL
    "date": "int4[]",  # days since the Unix epoch
    "text": "text[]",
}


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _array_values(col: Column) -> list[object]:
    values = np.asarray(col.values)
    if col.kind == "text":
        out: list[object] = [None if _missing(v) else str(v) for v in values.tolist()]
    elif col.kind == "float8":
        out = values.astype(np.float64).tolist()
    elif col.kind == "bool":
        out = values.astype(bool).tolist()
    elif col.null is not None and values.dtype.kind == "f":
        out = np.where(col.null, 0, values).astype(np.int64).tolist()
    else:
        out = values.astype(np.int64).tolist()
    if col.null is not None and col.null.any():
        out = [None if null else v for v, null in zip(out, col.null.tolist(), strict=True)]
    return out


def _select_expr(col: Column) -> str:
    name = _quote(col.name)
    if col.kind == "timestamptz":
        return f"'epoch'::timestamptz + {name} * interval '1 microsecond'"
    if col.kind == "date":
        return f"'epoch'::date + {name}"
    if col.nan_to_null:
        return f"NULLIF({name}, 'NaN'::float8)"
    return name


async def insert_upsert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[Column],
    n: int,
    key: Sequence[str],
    *,
    on_conflict: OnConflict = "nothing",
    update_columns: Sequence[str] | None = None,
) -> int:
    """:func:`copy_upsert` for small batches: one ``INSERT ... SELECT FROM unnest($1, $2, ...)``.

    Same semantics (atomic: one statement; same conflict handling; NaN of ``nan_to_null`` columns
    stored as NULL); returns rows inserted or updated.
    """
    if n == 0:
        return 0
    if on_conflict not in ("nothing", "update"):
        raise ValueError(f"on_conflict must be 'nothing' or 'update', not {on_conflict!r}")
    names = [c.name for c in columns]
    params = ", ".join(f"${i + 1}::{_ARRAY_TYPE[c.kind]}" for i, c in enumerate(columns))
    aliases = ", ".join(_quote(c) for c in names)
    conflict = ", ".join(_quote(k) for k in key)
    updates = [c for c in (update_columns if update_columns is not None else names) if c not in key]
    action = (
        "DO UPDATE SET " + ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in updates)  # nosec B608: identifiers come from the schema and are quoted by _quote; values are bound
        if on_conflict == "update" and updates
        else "DO NOTHING"
    )
    sql = (
        f"INSERT INTO {_quote(table)} ({aliases}) "  # nosec B608: identifiers come from the schema and are quoted by _quote; values are bound
        f"SELECT {', '.join(_select_expr(c) for c in columns)} FROM unnest({params}) AS s({aliases}) "
        f"ON CONFLICT ({conflict}) {action}"
    )
    status = await conn.execute(sql, *(_array_values(c) for c in columns))
    return int(status.split()[-1])
