"""InstrumentManager: daily delta of the dump into a (fake) instrument repository."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from fakes import FakeInstrumentSource, InMemoryInstrumentRepository
from tickwise.domain.errors import DataValidationError
from tickwise.domain.instrument import Instrument
from tickwise.pipelines.historical.instruments import InstrumentManager, SymbolMap


def _eq(token: int, symbol: str, price: float = 100.0) -> Instrument:
    return Instrument(token, token >> 8, symbol, symbol, "NSE", "NSE", "EQ", 0.05, 1, last_price=price)


def _fut(token: int, symbol: str, expiry: date) -> Instrument:
    return Instrument(token, token >> 8, symbol, "", "NFO", "NFO-FUT", "FUT", 0.05, 50, expiry=expiry)


async def test_first_sync_inserts_everything_and_second_sync_changes_nothing() -> None:
    repo = InMemoryInstrumentRepository()
    source = FakeInstrumentSource(
        [_eq(408065, "INFY"), _eq(738561, "RELIANCE"), _fut(9000002, "NIFTY26DECFUT", date(2026, 12, 29))]
    )
    manager = InstrumentManager(source, repo, today=lambda: date(2026, 11, 23))
    first = await manager.sync()
    assert (first.inserted, first.updated, first.expired, first.total) == (3, 0, 0, 3)
    source.dump = [replace(i, last_price=i.last_price + 1) for i in source.dump]  # prices move daily
    second = await manager.sync()
    assert (second.inserted, second.updated, second.unchanged, second.expired) == (0, 0, 3, 0)
    assert repo.upserts == 3


async def test_vanished_and_expired_instruments_are_marked_inactive() -> None:
    repo = InMemoryInstrumentRepository()
    old_fut = _fut(9000001, "NIFTY26NOVFUT", date(2026, 11, 24))
    source = FakeInstrumentSource([_eq(408065, "INFY"), _eq(738561, "RELIANCE"), old_fut])
    manager = InstrumentManager(source, repo, today=lambda: date(2026, 11, 23))
    await manager.sync()
    # Next week: RELIANCE vanished, the November future expired but is still (wrongly) listed.
    source.dump = [_eq(408065, "INFY"), old_fut, _fut(9000002, "NIFTY26DECFUT", date(2026, 12, 29))]
    manager.today = lambda: date(2026, 11, 30)
    result = await manager.sync()
    assert (result.inserted, result.expired, result.skipped_expired, result.total) == (1, 2, 1, 2)
    assert {i.instrument_token for i in await repo.all()} == {408065, 9000002}


async def test_a_reused_token_is_updated_and_reactivated() -> None:
    repo = InMemoryInstrumentRepository()
    source = FakeInstrumentSource([_eq(408065, "INFY"), _eq(500, "OLDCO")])
    manager = InstrumentManager(source, repo, today=lambda: date(2026, 11, 23))
    await manager.sync()
    source.dump = [_eq(408065, "INFY")]
    assert (await manager.sync()).expired == 1
    source.dump = [_eq(408065, "INFY"), _eq(500, "NEWCO")]
    result = await manager.sync()
    assert (result.inserted, result.updated) == (0, 1)
    assert (await manager.symbol_map()).symbol(500) == "NSE:NEWCO"


async def test_an_empty_dump_is_refused_rather_than_deactivating_everything() -> None:
    repo = InMemoryInstrumentRepository()
    manager = InstrumentManager(FakeInstrumentSource([]), repo)
    with pytest.raises(DataValidationError, match="empty"):
        await manager.sync()


async def test_exchange_filter_fetches_and_expires_only_those_exchanges() -> None:
    repo = InMemoryInstrumentRepository()
    source = FakeInstrumentSource([_eq(408065, "INFY"), _fut(9000002, "NIFTY26DECFUT", date(2026, 12, 29))])
    await InstrumentManager(source, repo, today=lambda: date(2026, 11, 23)).sync()
    source.dump = [_eq(408065, "INFY")]
    result = await InstrumentManager(source, repo, exchanges=["NSE"], today=lambda: date(2026, 11, 23)).sync()
    assert result.expired == 0 and len(await repo.all()) == 2


def test_symbol_map_resolves_both_ways_and_names_unknown_symbols() -> None:
    symbols = SymbolMap([_eq(408065, "INFY"), _eq(256265, "NIFTY 50")])
    assert symbols.token("INFY") == 408065
    assert symbols.token("NSE:NIFTY 50") == 256265
    assert symbols.symbol(408065) == "NSE:INFY"
    assert symbols.tokens(["NIFTY 50", "INFY"]) == [256265, 408065]
    with pytest.raises(KeyError, match="NSE:TCS"):
        symbols.token("TCS")
