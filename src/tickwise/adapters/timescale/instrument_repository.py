"""The instrument master (Kite's instrument dump) in the ``instruments`` table."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from tickwise.domain.instrument import Instrument

_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "exchange",
    "segment",
    "instrument_type",
    "tick_size",
    "lot_size",
    "expiry",
    "strike",
    "last_price",
)
_UPSERT = (
    f"INSERT INTO instruments ({', '.join(_COLUMNS)}) VALUES ({', '.join(f'${i}' for i in range(1, len(_COLUMNS) + 1))}) "  # nosec B608: column lists are module constants; every value is a bound $n parameter
    "ON CONFLICT (instrument_token) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])
    + ", active = true, last_seen = now(), updated_at = now()"
)


def _row(rec: asyncpg.Record) -> Instrument:
    return Instrument(
        instrument_token=rec["instrument_token"],
        exchange_token=rec["exchange_token"],
        tradingsymbol=rec["tradingsymbol"],
        name=rec["name"],
        exchange=rec["exchange"],
        segment=rec["segment"],
        instrument_type=rec["instrument_type"],
        tick_size=rec["tick_size"],
        lot_size=rec["lot_size"],
        expiry=rec["expiry"],
        strike=rec["strike"],
        last_price=rec["last_price"],
    )


class TimescaleInstrumentRepository:
    """InstrumentRepository: upsert from the dump, keep ``first_seen``/``last_seen``/``active`` bookkeeping."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def upsert_many(self, instruments: Sequence[Instrument]) -> int:
        """Insert or update instruments (marking them active, last seen now); returns the count given."""
        if not instruments:
            return 0
        rows = [tuple(getattr(i, c) for c in _COLUMNS) for i in instruments]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_UPSERT, rows)
        return len(rows)

    async def deactivate_missing(
        self, present_tokens: Sequence[int], *, exchanges: Sequence[str] | None = None
    ) -> int:
        """Mark instruments absent from the latest dump inactive (optionally only on ``exchanges``)."""
        sql = "UPDATE instruments SET active = false, updated_at = now() WHERE active AND NOT (instrument_token = ANY($1::bigint[]))"
        params: list[object] = [list(present_tokens)]
        if exchanges is not None:
            sql += " AND exchange = ANY($2::text[])"
            params.append(list(exchanges))
        async with self._pool.acquire() as conn:
            status = await conn.execute(sql, *params)
        return int(status.split()[-1])

    async def all(self, *, active_only: bool = True) -> list[Instrument]:
        """Every (active) instrument, ordered by token."""
        where = " WHERE active" if active_only else ""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(_COLUMNS)} FROM instruments{where} ORDER BY instrument_token"  # nosec B608: column lists are module constants; every value is a bound $n parameter
            )
        return [_row(r) for r in rows]

    async def by_symbols(self, exchange: str, symbols: Sequence[str]) -> list[Instrument]:
        """Active instruments of ``exchange`` whose tradingsymbol is in ``symbols`` (in that order)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {', '.join(_COLUMNS)} FROM instruments WHERE active AND exchange = $1 "  # nosec B608: column lists are module constants; every value is a bound $n parameter
                "AND tradingsymbol = ANY($2::text[])",
                exchange,
                list(symbols),
            )
        order = {s: i for i, s in enumerate(symbols)}
        return sorted((_row(r) for r in rows), key=lambda ins: order.get(ins.tradingsymbol, len(order)))

    async def get(self, instrument_token: int) -> Instrument | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {', '.join(_COLUMNS)} FROM instruments WHERE instrument_token = $1",  # nosec B608: column lists are module constants; every value is a bound $n parameter
                instrument_token,
            )
        return None if row is None else _row(row)

    async def count(self, *, active_only: bool = False) -> int:
        async with self._pool.acquire() as conn:
            return int(
                await conn.fetchval(
                    f"SELECT count(*) FROM instruments{' WHERE active' if active_only else ''}"  # nosec B608: column lists are module constants; every value is a bound $n parameter
                )
            )
