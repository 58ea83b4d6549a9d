"""`tickwise backtest` on the real database: seeded candles and signals give the hand-computed trades."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import asyncpg
import pytest
from backtest_seed import CHAMPION, DAY1, DAY2, TOKEN, FixedClock, at, seed

from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.bootstrap.backtest import backtest_request, run_backtest
from tickwise.config import load_settings
from tickwise.core.trading import EngineConfig, Slippage
from tickwise.domain.errors import ConfigError, ModelError
from tickwise.pipelines.backtest import BacktestPipeline, BacktestRequest

pytestmark = pytest.mark.db


def pipeline(pool: asyncpg.Pool) -> BacktestPipeline:
    repo = TimescaleBacktestRepository(pool)
    return BacktestPipeline(
        source=repo,
        candles=TimescaleCandleRepository(pool),
        models=TimescaleModelRepository(pool),
        runs=repo,
        clock=FixedClock(),
    )


def request(**kw: object) -> BacktestRequest:
    base = BacktestRequest(
        start=at(DAY1, 0, 0), end=at(DAY2, 23, 59), engine=EngineConfig(slippage=Slippage(bps=0.0))
    )
    return replace(base, **kw)  # type: ignore[arg-type]


async def test_the_champions_signals_become_the_hand_computed_trades_and_are_recorded(
    clean_db: asyncpg.Pool,
) -> None:
    await seed(clean_db)
    result = await pipeline(clean_db).run(request())
    long, short = result.trades
    # Long: 1000 shares (10 % of Rs 10 lakh at 100) from 10:01, PT 102 touched in the 10:05 bar.
    assert (long.side, long.quantity, long.entry_time, long.entry_price) == (1, 1000, at(DAY1, 10, 1), 100.0)
    assert (long.exit_reason, long.exit_price, long.exit_time) == ("pt", 102.0, at(DAY1, 10, 6))
    # gross 2000.00; brokerage 40, STT 25.50, NSE 202000 x 0.0000297 = 5.9994 -> 6.00, SEBI 0.20,
    # stamp 3.00, GST 18 % x 46.20 = 8.316 -> 8.32: charges 83.02, net 1916.98.
    assert (long.gross, long.charges, long.net) == (Decimal("2000.00"), Decimal("83.02"), Decimal("1916.98"))
    # Short: SL 100 + 1.5 ATR (ATR back to 1.0 within 1e-12) touched in the 11:03 bar.
    assert (short.side, short.exit_reason) == (-1, "sl")
    assert short.exit_price == pytest.approx(101.5, abs=1e-9)
    # gross -1500.00; brokerage 40, STT 25.00, NSE 201500 x 0.0000297 = 5.98455 -> 5.98, SEBI 0.20,
    # stamp 101500 x 0.00003 = 3.045 -> 3.05, GST 18 % x 46.18 = 8.3124 -> 8.31: charges 82.54.
    assert (short.gross, short.charges, short.net) == (
        Decimal("-1500.00"),
        Decimal("82.54"),
        Decimal("-1582.54"),
    )
    assert result.skipped == {"cutoff": 1}
    m = result.metrics
    assert m["net_pnl"] == pytest.approx(334.44)
    assert m["trades"] == 2 and m["sessions"] == 2 and m["hit_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(1916.98 / 1582.54)

    repo = TimescaleBacktestRepository(clean_db)
    run = await repo.get(result.run.run_id)
    assert run is not None and run.model_version == CHAMPION
    assert run.params["capital"] == 1_000_000.0 and run.params["costs"]["gst_rate"] == 0.18
    assert run.metrics["net_pnl"] == pytest.approx(334.44)
    trades = await repo.trades(run.run_id)
    assert trades["net"].tolist() == [1916.98, -1582.54]
    assert trades["exit_reason"].tolist() == ["pt", "sl"]
    assert (trades["instrument_token"] == TOKEN).all()
    equity = await repo.equity(run.run_id)
    assert equity["equity"].tolist() == [1_000_000.0, 1_001_916.98, 1_000_334.44]
    assert (await repo.latest()) == run


async def test_a_named_model_trades_only_its_own_signals(clean_db: asyncpg.Pool) -> None:
    await seed(clean_db)
    result = await pipeline(clean_db).run(request(model_version="m-chall"))
    (trade,) = result.trades
    assert trade.model_version == "m-chall" and trade.entry_time == at(DAY2, 12, 1)


async def test_a_range_without_signals_records_an_empty_run_with_undefined_ratios(
    clean_db: asyncpg.Pool,
) -> None:
    await seed(clean_db)
    result = await pipeline(clean_db).run(request(start=at(DAY2, 14, 0), end=at(DAY2, 15, 0)))
    assert result.trades == [] and result.signals == 0
    assert result.metrics["net_pnl"] == 0.0 and result.metrics["sharpe"] is None
    stored = await TimescaleBacktestRepository(clean_db).get(result.run.run_id)
    assert stored is not None and stored.metrics["trades"] == 0


async def test_an_unknown_model_is_a_clear_error(clean_db: asyncpg.Pool) -> None:
    await seed(clean_db)
    with pytest.raises(ModelError, match="nope"):
        await pipeline(clean_db).run(request(model_version="nope"))


async def test_oos_trades_only_out_of_sample_rows_or_says_it_needs_the_sample_column(
    clean_db: asyncpg.Pool,
) -> None:
    await seed(clean_db)
    async with clean_db.acquire() as conn:
        has_sample = await TimescaleBacktestRepository(clean_db).has_sample_column()
        if has_sample:
            await conn.execute("UPDATE signals SET sample = 'in_sample'")
            await conn.execute(
                "UPDATE signals SET sample = 'oos' WHERE time = $1 AND model_version = $2",
                at(DAY2, 11, 0),
                CHAMPION,
            )
    if not has_sample:
        with pytest.raises(ConfigError, match=r"signals\.sample"):
            await pipeline(clean_db).run(request(oos=True))
        return
    result = await pipeline(clean_db).run(request(oos=True))
    assert [t.signal_time for t in result.trades] == [at(DAY2, 11, 0)]
    assert result.run.model_version == "oos"


async def test_the_configured_backtest_runs_through_the_composition_root(
    clean_db: asyncpg.Pool, db_url: str
) -> None:
    await seed(clean_db)
    settings = load_settings()
    req = backtest_request(settings, at(DAY1, 0, 0), at(DAY2, 23, 59), capital=500_000.0)
    result = await run_backtest(settings, req, url=db_url)
    assert len(result.trades) == 2
    assert result.trades[0].quantity == 500  # Rs 50,000 at the market price 100 (slippage is not sized in)
    assert all(t.slippage > 0 for t in result.trades)
    assert result.run.params["capital"] == 500_000.0
