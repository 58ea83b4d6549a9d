"""The paper tables in TimescaleDB: positions and trades written together (or not at all), stored ticks
read back as the feed delivered them, and read-only access for Grafana."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import numpy as np
import pytest

from tickwise.adapters.timescale.paper_repository import TimescalePaperRepository
from tickwise.adapters.timescale.tick_repository import TimescaleTickRepository
from tickwise.core.trading import OpenPosition, Trade, TradeSignal, barrier_signal
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.pipelines.backtest.inputs import recorded_signals
from tickwise.pipelines.live.paper import position_frame, signal_frame, trade_frame

pytestmark = pytest.mark.db

T = datetime(2026, 12, 3, 10, 1, tzinfo=IST)
RUN = "paper-20261203-091450-abcdef"


def position(token: int = 408065, entry: datetime = T) -> OpenPosition:
    return OpenPosition(
        instrument_token=token,
        side=1,
        quantity=99,
        entry_time=entry,
        entry_price=1000.5,
        take_profit=1010.0,
        stop_loss=990.0,
        horizon_end=entry + timedelta(minutes=10),
        signal_time=entry - timedelta(minutes=1),
        model_version="m-1",
        confidence=0.61,
    )


def trade(p: OpenPosition, *, side: int = 1) -> Trade:
    money = Decimal
    return Trade(
        instrument_token=p.instrument_token,
        side=side,
        quantity=p.quantity,
        entry_time=p.entry_time,
        entry_price=p.entry_price,
        exit_time=p.entry_time + timedelta(minutes=3),
        exit_price=1010.25,
        exit_reason="pt",
        gross=money("965.25"),
        brokerage=money("40.00"),
        stt=money("25.00"),
        exchange=money("5.91"),
        sebi=money("0.20"),
        stamp=money("2.97"),
        gst=money("8.27"),
        slippage=money("19.92"),
        net=money("862.98"),
        signal_time=p.signal_time,
        model_version=p.model_version,
        confidence=p.confidence,
        buy_value=money("99049.50"),
        sell_value=money("100014.75"),
    )


async def test_a_position_and_its_trade_are_recorded_and_the_position_is_closed(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescalePaperRepository(clean_db)
    p = position()
    await repo.record(RUN, position_frame([p]), trade_frame([]))
    open_now = await repo.positions(RUN)
    assert len(open_now) == 1 and open_now["closed_at"].isna().all()
    await repo.record(RUN, position_frame([]), trade_frame([trade(p)]))
    positions = await repo.positions(RUN)
    assert positions["exit_reason"].tolist() == ["pt"]
    assert positions["closed_at"].tolist() == [p.entry_time + timedelta(minutes=3)]
    trades = await repo.trades(RUN)
    assert trades["net"].tolist() == [862.98] and trades["run_id"].tolist() == [RUN]
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT sum(net) FROM paper_trades") == Decimal("862.98")


async def test_a_rejected_write_leaves_nothing_behind_so_a_retry_cannot_duplicate(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescalePaperRepository(clean_db)
    p = position()
    with pytest.raises(asyncpg.CheckViolationError):
        await repo.record(RUN, position_frame([p]), trade_frame([trade(p, side=0)]))
    assert (await repo.positions(RUN)).empty and (await repo.trades(RUN)).empty
    await repo.record(RUN, position_frame([p]), trade_frame([trade(p)]))
    await repo.record(RUN, position_frame([p]), trade_frame([]))  # the same position again: kept once
    assert len(await repo.positions(RUN)) == 1 and len(await repo.trades(RUN)) == 1


async def test_stored_ticks_come_back_in_feed_order_with_best_bid_and_ask(clean_db: asyncpg.Pool) -> None:
    depth = Depth(buy=(DepthLevel(5, 99.95, 1),), sell=(DepthLevel(7, 100.05, 2),))
    ticks = [
        Tick(2, "full", True, 200.0, exchange_timestamp=T, received_at=T + timedelta(seconds=1)),
        Tick(1, "full", True, 100.0, exchange_timestamp=T, received_at=T, depth=depth),
        Tick(1, "full", True, 100.1, exchange_timestamp=T + timedelta(seconds=2), received_at=T, depth=depth),
        Tick(1, "full", True, 101.0, exchange_timestamp=T + timedelta(minutes=5), received_at=T),
    ]
    await TimescaleTickRepository(clean_db).add_many(ticks)
    frame = await TimescalePaperRepository(clean_db).tick_prices([1, 2], T, T + timedelta(minutes=5))
    assert frame["instrument_token"].tolist() == [1, 2, 1]
    assert frame["last_price"].tolist() == [100.0, 200.0, 100.1]
    assert frame["bid"].iloc[0] == 99.95 and frame["ask"].iloc[0] == 100.05
    assert np.isnan(frame["bid"].iloc[1]) and np.isnan(frame["ask"].iloc[1])


async def test_the_signals_a_session_acted_on_come_back_exactly_as_fed_and_the_first_version_stays(
    clean_db: asyncpg.Pool,
) -> None:
    def fed(meta: float | None, close: float, minutes: int = 0) -> TradeSignal:
        return barrier_signal(
            instrument_token=408065,
            time=T + timedelta(minutes=minutes),
            available_at=T + timedelta(minutes=minutes + 1),
            direction=1,
            confidence=0.6123456789,
            size=None if minutes else 0.1 / 3,
            model_version="m-1",
            reference_close=close,
            atr=0.7 / 3,
            k_pt=2.0,
            k_sl=1.5,
            horizon_bars=10,
            lot_size=1,
            meta_size=meta,
        )

    first, other = fed(1 / 3, 1000.1), fed(None, 1001.0, minutes=2)
    repo = TimescalePaperRepository(clean_db)
    await repo.record(RUN, position_frame([]), trade_frame([]), signal_frame([first, other]))
    # A retried write (or a revision that reached the record) never replaces what was acted on.
    revised = fed(0.2, 1000.3)
    await repo.record(RUN, position_frame([]), trade_frame([]), signal_frame([revised]))
    frame = await repo.paper_signals(RUN)
    assert recorded_signals(frame) == [first, other]  # every float and instant bit-exact
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM paper_signals WHERE size IS NULL") == 1
    assert (await repo.paper_signals("paper-other")).empty


@pytest.mark.parametrize("table", ["paper_trades", "paper_positions", "paper_signals"])
async def test_grafana_may_read_the_paper_tables_but_not_write_them(
    admin_pool: asyncpg.Pool, table: str
) -> None:
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SET LOCAL ROLE tickwise_grafana")
            await conn.execute(f"SELECT * FROM {table} LIMIT 1")
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute(f"DELETE FROM {table}")
        finally:
            await transaction.rollback()


async def test_positions_an_interrupted_session_left_open_are_closed_as_interrupted(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescalePaperRepository(clean_db)
    await repo.record(RUN, position_frame([position()]), trade_frame([]))
    await repo.record(
        "paper-now", position_frame([position(entry=T + timedelta(minutes=1))]), trade_frame([])
    )
    at = T + timedelta(hours=1)
    assert await repo.close_interrupted("paper-now", at) == 1
    old = await repo.positions(RUN)
    assert old["exit_reason"].tolist() == ["interrupted"] and old["closed_at"].tolist() == [at]
    assert (await repo.positions("paper-now"))["closed_at"].isna().all()  # the running session's own
    assert await repo.close_interrupted("paper-now", at) == 0
