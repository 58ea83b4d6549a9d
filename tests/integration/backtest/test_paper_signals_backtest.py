"""`--signals paper`: a backtest replays the signals a paper session acted on, exactly as recorded.

The seeded market (backtest_seed) has the champion's long at DAY1 10:00 with the candle levels PT 102 /
SL 98.5. The paper session below recorded that bar with other levels and a meta size (as a session
does when the bar was repaired after it acted on it): the backtest must trade the recorded version,
not rebuild it from the stored candles or the stored (revised) signal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest
from backtest_seed import CHAMPION, DAY1, DAY2, TOKEN, FixedClock, at, seed

from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.adapters.timescale.paper_repository import TimescalePaperRepository
from tickwise.core.trading import EngineConfig, Slippage, TradeSignal
from tickwise.domain.errors import ConfigError
from tickwise.pipelines.backtest import BacktestPipeline, BacktestRequest
from tickwise.pipelines.live.paper import position_frame, signal_frame, trade_frame

pytestmark = pytest.mark.db

RUN = "paper-20261102-091450-abcdef"


def pipeline(pool: asyncpg.Pool, *, paper: bool = True) -> BacktestPipeline:
    repo = TimescaleBacktestRepository(pool)
    return BacktestPipeline(
        source=repo,
        candles=TimescaleCandleRepository(pool),
        models=TimescaleModelRepository(pool),
        runs=repo,
        clock=FixedClock(),
        paper=TimescalePaperRepository(pool) if paper else None,
    )


def request(**kw: object) -> BacktestRequest:
    base = BacktestRequest(
        start=at(DAY1, 0, 0),
        end=at(DAY2, 23, 59),
        engine=EngineConfig(slippage=Slippage(bps=0.0)),
        signal_mode="paper",
        paper_run=RUN,
        sizing="meta",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def acted_on() -> TradeSignal:
    t = at(DAY1, 10, 0)
    return TradeSignal(
        instrument_token=TOKEN,
        time=t,
        available_at=t + timedelta(minutes=1),
        direction=1,
        confidence=0.7,
        size=None,
        model_version=CHAMPION,
        take_profit=101.0,  # not the candles' 102: the feed bar's levels before its repair
        stop_loss=98.0,
        horizon_end=t + timedelta(minutes=11),
        lot_size=1,
        meta_size=0.5,
    )


async def test_a_paper_backtest_trades_the_recorded_signal_with_its_recorded_levels_and_size(
    clean_db: asyncpg.Pool,
) -> None:
    await seed(clean_db)
    await TimescalePaperRepository(clean_db).record(
        RUN, position_frame([]), trade_frame([]), signal_frame([acted_on()])
    )
    result = await pipeline(clean_db).run(request())

    assert result.signals == 1
    (trade,) = result.trades
    # 10 % of Rs 10 lakh x meta 0.5 at 100 = 500 shares; out at the recorded target 101, touched in
    # the 10:05 bar (high 102.5), where the candles' target (102) is touched too: the exit price tells.
    assert (trade.quantity, trade.entry_time, trade.entry_price) == (500, at(DAY1, 10, 1), 100.0)
    assert (trade.exit_reason, trade.exit_price) == ("pt", 101.0)
    assert result.run.model_version == CHAMPION
    assert result.run.params["signals"] == "paper" and result.run.params["paper_run"] == RUN


async def test_a_paper_backtest_keeps_to_its_window_and_says_when_a_session_recorded_nothing(
    clean_db: asyncpg.Pool,
) -> None:
    await seed(clean_db)
    await TimescalePaperRepository(clean_db).record(
        RUN, position_frame([]), trade_frame([]), signal_frame([acted_on()])
    )
    later = await pipeline(clean_db).run(request(start=at(DAY2, 0, 0)))
    assert later.signals == 0 and later.trades == []

    with pytest.raises(ConfigError, match="recorded no signals"):
        await pipeline(clean_db).run(request(paper_run="paper-unknown"))
    with pytest.raises(ConfigError, match="no source wired"):
        await pipeline(clean_db, paper=False).run(request())


def test_signals_paper_and_paper_run_go_together() -> None:
    with pytest.raises(ConfigError, match="--paper-run"):
        request(paper_run=None)
    with pytest.raises(ConfigError, match="--paper-run"):
        request(signal_mode="live")
    with pytest.raises(ConfigError, match="historical, live, paper"):
        request(signal_mode="dream", paper_run=None)
