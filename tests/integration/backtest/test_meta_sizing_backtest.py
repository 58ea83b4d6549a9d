"""Sized vs unsized on the real database: the seeded champion's signals with a meta size are traded
twice (meta-sized and unsized) over the same prices, both runs recorded and linked, and the report
shows them side by side (rendered in headless chromium)."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from backtest_seed import CHAMPION, DAY1, DAY2, FixedClock, at, seed
from chromium import render

from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.bootstrap.backtest import make_report
from tickwise.config import load_settings
from tickwise.core.trading import EngineConfig, Slippage
from tickwise.domain.errors import ConfigError
from tickwise.pipelines.backtest import BacktestPipeline, BacktestRequest

pytestmark = pytest.mark.db

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


async def _meta_sizes(pool: asyncpg.Pool, size: float) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE signals SET meta_prob = 0.7, meta_size = $1 WHERE model_version = $2 AND direction <> 0",
            size,
            CHAMPION,
        )


async def test_both_sizings_record_a_meta_sized_run_linked_to_its_unsized_twin(
    clean_db: asyncpg.Pool,
) -> None:
    await seed(clean_db)
    await _meta_sizes(clean_db, 0.5)
    result = await pipeline(clean_db).run(request())
    assert result.unsized is not None
    # Meta-sized: half of the 1000 shares the signal's 10 % size buys; unsized: all of them.
    assert [t.quantity for t in result.trades] == [500, 500]
    repo = TimescaleBacktestRepository(clean_db)
    unsized_trades = await repo.trades(result.unsized.run_id)
    assert unsized_trades["quantity"].tolist() == [1000, 1000]
    assert result.unsized.metrics["net_pnl"] == pytest.approx(334.44)  # the hand-computed unsized PnL
    m = result.metrics
    assert m["sizing"] == "meta" and result.unsized.metrics["sizing"] == "none"
    assert m["unsized_run"] == result.unsized.run_id
    assert m["unsized"]["net_pnl"] == pytest.approx(334.44) and m["unsized"]["trades"] == 2
    assert m["meta_sized_signals"] == 3
    latest = await repo.latest()
    assert latest is not None and latest.run_id == result.run.run_id  # the report default: the sized run


async def test_meta_sizes_of_one_trade_exactly_as_unsized(clean_db: asyncpg.Pool) -> None:
    await seed(clean_db)
    await _meta_sizes(clean_db, 1.0)
    result = await pipeline(clean_db).run(request())
    assert result.unsized is not None
    repo = TimescaleBacktestRepository(clean_db)
    sized, unsized = await repo.trades(result.run.run_id), await repo.trades(result.unsized.run_id)
    columns = ["entry_time", "side", "quantity", "exit_price", "exit_reason", "net"]
    assert sized[columns].equals(unsized[columns])
    assert result.metrics["net_pnl"] == result.unsized.metrics["net_pnl"]


async def test_one_sizing_records_one_run_and_signals_without_meta_sizes_need_no_twin(
    clean_db: asyncpg.Pool,
) -> None:
    await seed(clean_db)
    plain = await pipeline(clean_db).run(request())  # no meta sizes stored: nothing to compare
    assert plain.unsized is None and "unsized_run" not in plain.metrics
    await _meta_sizes(clean_db, 0.0)
    meta = await pipeline(clean_db).run(request(sizing="meta"))
    assert meta.unsized is None and meta.trades == [] and meta.skipped["meta_zero"] == 2
    none = await pipeline(clean_db).run(request(sizing="none"))
    assert none.unsized is None and [t.quantity for t in none.trades] == [1000, 1000]
    with pytest.raises(ConfigError, match="sizing"):
        request(sizing="kelly")


async def test_the_report_shows_sized_and_unsized_side_by_side_in_chromium(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await seed(clean_db)
    await _meta_sizes(clean_db, 0.5)
    result = await pipeline(clean_db).run(request())
    data, files = await make_report(load_settings(), result.run.run_id, tmp_path / "report", url=db_url)
    assert data.sizing is not None and data.sizing.unsized_run_id == result.unsized.run_id  # type: ignore[union-attr]
    assert "sizing.png" in {p.name for p in files.images}
    page = files.html.read_text()
    assert "Meta-label sizing: sized vs unsized" in page
    section = page[page.index("Meta-label sizing: sized vs unsized") :]
    section = section[: section.index("</section>")]
    assert "Rs 334.44" in section  # the unsized net PnL beside the sized one
    assert f"Rs {result.metrics['net_pnl']:,.2f}" in section
    assert "out of sample" in section
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert all(base64.b64decode(b).startswith(PNG_MAGIC) for b in embedded)
    shot = render(files.html, tmp_path / "report.png")
    assert shot.errors == [], shot.console
    assert (f"probe: {len(embedded)} images, 0 broken") in [m for _, m in shot.console]
