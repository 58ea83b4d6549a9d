"""Raw ticks (with best-5 depth as columns) in the ``ticks`` hypertable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import numpy as np
import pandas as pd

from tickwise.adapters.timescale.bulk import Column, Kind
from tickwise.adapters.timescale.frames import (
    BatchRejected,
    EncodedBatch,
    records_frame,
    time_bounds,
    upsert_batch,
)
from tickwise.adapters.timescale.names import DEPTH_LEVELS
from tickwise.domain.tick import Tick

_KEY = ("instrument_token", "time", "received_at")
_INT_FIELDS = ("last_traded_quantity", "volume_traded", "total_buy_quantity", "total_sell_quantity", "oi")
_DEPTH = [
    (side, level, part)
    for side in ("bid", "ask")
    for level in range(1, DEPTH_LEVELS + 1)
    for part in ("price", "qty", "orders")
]
TICK_COLUMNS = (
    "time",
    "instrument_token",
    "mode",
    "last_price",
    "last_traded_quantity",
    "average_traded_price",
    "volume_traded",
    "total_buy_quantity",
    "total_sell_quantity",
    "oi",
    "last_trade_time",
    *(f"{s}_{p}_{lvl}" for s, lvl, p in _DEPTH),
    "received_at",
)


def _us(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_ticks(ticks: Sequence[Tick], now: datetime | None = None) -> list[Column]:
    """Ticks -> COPY columns. ``time`` is the exchange timestamp, else last trade time, else receive time."""
    now = now or datetime.now(UTC)
    n = len(ticks)
    ints = {name: np.zeros(n, np.int64) for name in _INT_FIELDS}
    int_null = {name: np.zeros(n, bool) for name in _INT_FIELDS}
    depth = {key: np.zeros(n, np.float64 if key[2] == "price" else np.int64) for key in _DEPTH}
    depth_null = np.ones(n, bool)
    token = np.empty(n, np.int64)
    time_us = np.empty(n, np.int64)
    recv_us = np.empty(n, np.int64)
    ltt_us = np.zeros(n, np.int64)
    ltt_null = np.ones(n, bool)
    price = np.empty(n, np.float64)
    atp = np.full(n, np.nan)
    mode = np.empty(n, object)
    for i, t in enumerate(ticks):
        try:
            received = t.received_at or now
            instant = t.exchange_timestamp or t.last_trade_time or received
            time_us[i] = _us(instant)
            recv_us[i] = _us(received)
            if t.last_trade_time is not None:
                ltt_us[i] = _us(t.last_trade_time)
                ltt_null[i] = False
        except ValueError:
            raise BatchRejected(
                f"rejected tick batch of {n} rows, nothing written: row {i} (instrument_token={t.instrument_token}): "
                "naive timestamp (expected tz-aware)"
            ) from None
        if not math.isfinite(t.last_price):
            raise BatchRejected(
                f"rejected tick batch of {n} rows, nothing written: row {i} (instrument_token={t.instrument_token}): "
                f"last_price is {t.last_price}"
            )
        token[i] = t.instrument_token
        price[i] = t.last_price
        mode[i] = t.mode
        if t.average_traded_price is not None:
            atp[i] = t.average_traded_price
        for name in _INT_FIELDS:
            value = getattr(t, name)
            if value is None:
                int_null[name][i] = True
            else:
                ints[name][i] = value
        if t.depth is not None:
            depth_null[i] = False
            for side, levels in (("bid", t.depth.buy), ("ask", t.depth.sell)):
                for lvl, entry in enumerate(levels[:DEPTH_LEVELS], start=1):
                    depth[(side, lvl, "price")][i] = entry.price
                    depth[(side, lvl, "qty")][i] = entry.quantity
                    depth[(side, lvl, "orders")][i] = entry.orders
    columns = [
        Column("time", "timestamptz", time_us),
        Column("instrument_token", "int8", token),
        Column("mode", "text", mode),
        Column("last_price", "float8", price),
        Column("average_traded_price", "float8", atp, nan_to_null=True),
    ]
    for name in _INT_FIELDS:
        columns.append(Column(name, "int8", ints[name], int_null[name] if int_null[name].any() else None))
    columns.append(Column("last_trade_time", "timestamptz", ltt_us, ltt_null if ltt_null.any() else None))
    null = depth_null if depth_null.any() else None
    for side, lvl, part in _DEPTH:
        kind: Kind = "float8" if part == "price" else ("int8" if part == "qty" else "int4")
        columns.append(Column(f"{side}_{part}_{lvl}", kind, depth[(side, lvl, part)], null))
    columns.append(Column("received_at", "timestamptz", recv_us))
    return columns


class TimescaleTickRepository:
    """TickRepository on the ``ticks`` hypertable; duplicates (same token, time, received_at) are skipped."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_many(self, ticks: Sequence[Tick]) -> int:
        """Store ticks in one transaction; returns rows inserted."""
        if not ticks:
            return 0
        batch = EncodedBatch(encode_ticks(ticks), len(ticks))
        return await upsert_batch(self._pool, "ticks", batch, _KEY, on_conflict="nothing")

    async def read_frame(
        self, instrument_token: int, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Ticks of one instrument with ``start <= time < end``, in time then receive order."""
        params: list[object] = [instrument_token]
        where = time_bounds(start, end, params)
        sql = (
            f"SELECT {', '.join(TICK_COLUMNS)} FROM ticks WHERE instrument_token = $1{where} "  # nosec B608: column lists are module constants; every value is a bound $n parameter
            "ORDER BY time, received_at"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return records_frame(rows, TICK_COLUMNS, time_columns=("time", "last_trade_time", "received_at"))

    async def count(self, instrument_token: int | None = None) -> int:
        async with self._pool.acquire() as conn:
            if instrument_token is None:
                return int(await conn.fetchval("SELECT count(*) FROM ticks"))
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM ticks WHERE instrument_token = $1", instrument_token
                )
            )
