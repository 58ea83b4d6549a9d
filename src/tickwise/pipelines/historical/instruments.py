"""The instrument master: a daily delta of Kite's instrument dump into the ``instruments`` table.

Kite regenerates the dump every morning and may reuse the tokens of expired F&O contracts, so the
token-keyed table is upserted from every dump (kite-protocol.md section 3.5). An instrument is
*expired* (marked inactive, never deleted: old candles still reference it) when it is absent from
today's dump or its expiry date is before today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from tickwise.domain.errors import DataValidationError
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.ports.historical_source import InstrumentSource
from tickwise.ports.repositories import InstrumentRepository

__all__ = ["InstrumentManager", "InstrumentSource", "InstrumentStore", "SymbolMap", "SyncResult"]


# The repository role the manager needs (the port includes deactivation of what a dump lacks).
InstrumentStore = InstrumentRepository


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one sync changed."""

    inserted: int  # tokens never seen before
    updated: int  # known tokens whose row changed (or that came back after being inactive)
    unchanged: int
    expired: int  # active instruments marked inactive (absent from the dump, or expiry < today)
    total: int  # active instruments in today's dump
    skipped_expired: int = 0  # rows in the dump already past their expiry

    def as_dict(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "expired": self.expired,
            "total": self.total,
            "skipped_expired": self.skipped_expired,
        }


class SymbolMap:
    """``(exchange, tradingsymbol) <-> instrument_token`` lookups over a set of instruments."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_token: dict[int, Instrument] = {}
        self._by_symbol: dict[tuple[str, str], Instrument] = {}
        for ins in instruments:
            self._by_token[ins.instrument_token] = ins
            self._by_symbol[(ins.exchange, ins.tradingsymbol)] = ins

    def __len__(self) -> int:
        return len(self._by_token)

    def token(self, symbol: str, exchange: str = "NSE") -> int:
        """Token of ``INFY`` (on ``exchange``) or ``NSE:INFY``; KeyError naming the symbol if unknown."""
        return self.instrument(symbol, exchange).instrument_token

    def instrument(self, symbol: str, exchange: str = "NSE") -> Instrument:
        if ":" in symbol:
            exchange, symbol = symbol.split(":", 1)
        try:
            return self._by_symbol[(exchange, symbol)]
        except KeyError:
            raise KeyError(
                f"unknown instrument {exchange}:{symbol} (run `tickwise instruments sync`?)"
            ) from None

    def symbol(self, instrument_token: int) -> str:
        """``EXCHANGE:TRADINGSYMBOL`` of a token."""
        ins = self.by_token(instrument_token)
        return f"{ins.exchange}:{ins.tradingsymbol}"

    def by_token(self, instrument_token: int) -> Instrument:
        try:
            return self._by_token[instrument_token]
        except KeyError:
            raise KeyError(f"unknown instrument token {instrument_token}") from None

    def tokens(self, symbols: Sequence[str], exchange: str = "NSE") -> list[int]:
        return [self.token(s, exchange) for s in symbols]


class InstrumentManager:
    """Sync the instrument dump into the repository and answer symbol/token questions."""

    def __init__(
        self,
        source: InstrumentSource,
        repo: InstrumentStore,
        *,
        exchanges: Sequence[str] | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.source = source
        self.repo = repo
        self.exchanges = tuple(exchanges) if exchanges else None
        self.today: Callable[[], date] = today or (lambda: datetime.now(IST).date())

    async def fetch(self) -> list[Instrument]:
        """Today's dump (all exchanges, or the configured ones)."""
        if self.exchanges is None:
            return await self.source.instruments()
        dump: list[Instrument] = []
        for exchange in self.exchanges:
            dump.extend(await self.source.instruments(exchange))
        return dump

    async def sync(self) -> SyncResult:
        """Upsert the day's delta and mark vanished or expired instruments inactive."""
        today = self.today()
        dump = await self.fetch()
        if not dump:
            # An empty dump would deactivate everything: refuse instead of wiping the master.
            raise DataValidationError("the instrument dump is empty; nothing was changed")
        fresh: dict[int, Instrument] = {}
        skipped = 0
        for ins in dump:
            if ins.expiry is not None and ins.expiry < today:
                skipped += 1
                continue
            fresh[ins.instrument_token] = ins  # a token listed twice: the last row wins
        known = {i.instrument_token: i for i in await self.repo.all(active_only=False)}
        active = {i.instrument_token for i in await self.repo.all(active_only=True)}
        inserted = [i for t, i in fresh.items() if t not in known]
        updated = [i for t, i in fresh.items() if t in known and (_differs(known[t], i) or t not in active)]
        changed = inserted + updated
        if changed:
            await self.repo.upsert_many(changed)
        expired = await self.repo.deactivate_missing(list(fresh), exchanges=self.exchanges)
        return SyncResult(
            inserted=len(inserted),
            updated=len(updated),
            unchanged=len(fresh) - len(changed),
            expired=expired,
            total=len(fresh),
            skipped_expired=skipped,
        )

    async def symbol_map(self, *, active_only: bool = True) -> SymbolMap:
        return SymbolMap(await self.repo.all(active_only=active_only))


def _differs(old: Instrument, new: Instrument) -> bool:
    # The dump's last_price is yesterday's close, not live data: it alone does not make a row "updated".
    return replace(old, last_price=0.0) != replace(new, last_price=0.0)
