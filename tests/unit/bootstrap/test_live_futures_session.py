"""The live mode's futures wiring on in-memory ports: the session's contract, the synthetic instrument, the
errors a user sees, and the volume rule asked with the previous session's volumes."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from fakes import InMemoryCandleRepository, InMemoryInstrumentRepository
from tickwise.adapters.kite.simulator.universe import FUTURE_SPECS, index_future
from tickwise.bootstrap.live import continuous_instruments, futures_session
from tickwise.config import Settings, load_settings
from tickwise.core.futures import continuous_token
from tickwise.domain.calendar import NSE
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

NIFTY = continuous_token("NIFTY")
TODAY = date(2026, 11, 18)
NOV, DEC, JAN = (index_future(FUTURE_SPECS[0], y, m) for y, m in ((2026, 11), (2026, 12), (2027, 1)))


def settings(**extra: str) -> Settings:
    env = {"TICKWISE__TRADING__FUTURES": '["NIFTY"]', **extra}
    return load_settings(environ=env, environment="test")


class DayCandles:
    """``HistoricalSource.historical_frame`` by day, with a volume per contract; records what was asked."""

    def __init__(self, volume: dict[int, int]) -> None:
        self.volume = volume
        self.asked: list[tuple[int, date]] = []

    async def historical_frame(
        self, instrument_token: int, interval: Timeframe | str, start: datetime | date, end: datetime | date
    ) -> pd.DataFrame:
        assert isinstance(start, date)
        self.asked.append((instrument_token, start))
        t = datetime(start.year, start.month, start.day, 15, 29, tzinfo=IST)
        v = self.volume.get(instrument_token, 0)
        return pd.DataFrame(
            {"time": [t], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [v]}
        )


async def test_a_session_between_rolls_maps_the_front_contract_and_shifts_nothing() -> None:
    repo = InMemoryInstrumentRepository([NOV, DEC, JAN])
    rest = DayCandles({})
    cmap, reopen = await futures_session(
        settings(), repo, InMemoryCandleRepository(), rest, date(2026, 11, 18), [NIFTY, 408065], NSE
    )
    assert dict(cmap.to_continuous) == {NOV.instrument_token: NIFTY} and reopen == []
    assert rest.asked == []  # the date rule needs no candles and no roll happened


async def test_a_run_without_the_series_in_its_tokens_maps_nothing() -> None:
    cmap, _ = await futures_session(
        settings(),
        InMemoryInstrumentRepository([NOV]),
        InMemoryCandleRepository(),
        DayCandles({}),
        date(2026, 11, 18),
        [408065],
        NSE,
    )
    assert not cmap


async def test_the_volume_rule_takes_the_next_contract_once_it_out_traded_the_front() -> None:
    repo = InMemoryInstrumentRepository([NOV, DEC, JAN])
    rest = DayCandles({NOV.instrument_token: 10, DEC.instrument_token: 99})
    cmap, _ = await futures_session(
        settings(TICKWISE__TRADING__FUTURES_ROLL="volume"),
        repo,
        InMemoryCandleRepository(),
        rest,
        date(2026, 11, 18),
        [NIFTY],
        NSE,
    )
    assert dict(cmap.to_continuous) == {DEC.instrument_token: NIFTY}
    assert (DEC.instrument_token, date(2026, 11, 17)) in rest.asked  # the previous session's volume


async def test_no_contract_to_trade_is_a_config_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="instruments sync"):
        await futures_session(
            settings(),
            InMemoryInstrumentRepository([NOV]),
            InMemoryCandleRepository(),
            DayCandles({}),
            date(2026, 12, 1),
            [NIFTY],
            NSE,
        )


async def test_the_synthetic_instrument_is_created_from_the_nearest_contract_when_no_run_built_it() -> None:
    repo = InMemoryInstrumentRepository([NOV, DEC])
    (created,) = await continuous_instruments(settings(), repo, NSE, TODAY)
    assert (created.instrument_token, created.tradingsymbol, created.lot_size) == (
        NIFTY,
        "NIFTY-FUT-CONT",
        75,
    )
    again = await continuous_instruments(settings(), repo, NSE, TODAY)
    assert again == [created] and repo.upserts == 1
    with pytest.raises(ConfigError, match="instruments sync"):
        await continuous_instruments(settings(), InMemoryInstrumentRepository([]), NSE, TODAY)
