"""A safe universe: a real account without trading.symbols gets the shipped NIFTY 50 list, every equity
only when asked for; the simulator keeps every simulated equity."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fakes import InMemoryInstrumentRepository
from tickwise.bootstrap.universe import UNIVERSE_DIR, default_symbols, load_universe_list
from tickwise.config import Settings, load_settings
from tickwise.domain.errors import ConfigError
from tickwise.domain.instrument import Instrument
from tickwise.pipelines.universe import NIFTY_50, select_universe


def equity(token: int, symbol: str, exchange: str = "NSE", kind: str = "EQ") -> Instrument:
    return Instrument(token, token, symbol, symbol, exchange, exchange, kind, 0.05, 1)


MASTER = [
    equity(NIFTY_50, "NIFTY 50"),
    equity(408065, "INFY"),
    equity(2953217, "TCS"),
    equity(1, "SMALLCAP"),
    equity(2, "INFY", exchange="BSE"),
    equity(3, "NIFTY25DECFUT", exchange="NFO", kind="FUT"),
]


def settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings(
        environ={
            "TICKWISE__SYSTEM__DATA_DIR": str(tmp_path),
            "TICKWISE__BROKER__TOKEN_FILE": str(tmp_path / "kite_token.json"),
            **env,
        }
    )


async def test_a_default_list_keeps_its_nse_symbols_and_the_index_and_skips_missing_ones() -> None:
    chosen = await select_universe(InMemoryInstrumentRepository(MASTER), (), ("INFY", "TCS", "GONE"))
    assert [i.tradingsymbol for i in chosen] == ["NIFTY 50", "INFY", "TCS"]


async def test_without_a_default_list_every_nse_equity_is_chosen() -> None:
    chosen = await select_universe(InMemoryInstrumentRepository(MASTER))
    assert {i.tradingsymbol for i in chosen} == {"NIFTY 50", "INFY", "TCS", "SMALLCAP"}


async def test_configured_symbols_win_and_a_missing_one_is_an_error() -> None:
    repo = InMemoryInstrumentRepository(MASTER)
    assert [i.tradingsymbol for i in await select_universe(repo, ("TCS",), ("INFY",))] == ["TCS"]
    with pytest.raises(ConfigError, match="GONE"):
        await select_universe(repo, ("GONE",))


def test_the_shipped_nifty50_list_has_fifty_symbols_and_its_date() -> None:
    shipped = load_universe_list(UNIVERSE_DIR / "nifty50.yaml")
    assert len(set(shipped.symbols)) == 50 and "INFY" in shipped.symbols
    assert shipped.as_of == date(2026, 9, 18)  # the dated copy of NSE Indices' file it was checked against


def test_a_real_account_defaults_to_nifty50_and_every_equity_needs_an_explicit_value(tmp_path: Path) -> None:
    assert len(default_symbols(settings(tmp_path, KITE_API_KEY="x"))) == 50
    assert (
        default_symbols(settings(tmp_path, KITE_API_KEY="x", TICKWISE__TRADING__UNIVERSE="all_equities"))
        == ()
    )
    assert default_symbols(settings(tmp_path)) == ()  # the simulator keeps every simulated equity
    assert default_symbols(settings(tmp_path, KITE_API_KEY="x", TICKWISE__TRADING__SYMBOLS="[INFY]")) == ()


def test_a_malformed_universe_list_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("symbols: []\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        load_universe_list(bad)


async def test_every_equity_means_the_stocks_and_nifty_50_not_every_index_kite_lists() -> None:
    from fakes import InMemoryInstrumentRepository
    from tickwise.domain.instrument import Instrument
    from tickwise.pipelines.universe import select_universe

    repo = InMemoryInstrumentRepository()
    await repo.upsert_many(
        [
            Instrument(256265, 1001, "NIFTY 50", "NIFTY 50", "NSE", "INDICES", "EQ", 0.05, 0),
            Instrument(260105, 1016, "NIFTY BANK", "NIFTY BANK", "NSE", "INDICES", "EQ", 0.05, 0),
            Instrument(408065, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1),
        ]
    )
    chosen = await select_universe(repo)
    assert [i.tradingsymbol for i in chosen] == ["NIFTY 50", "INFY"]
