"""`tickwise report`: the page of a recorded backtest renders in headless chromium with no console errors."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import asyncpg
import numpy as np
import pandas as pd
import pytest
from backtest_seed import DAY1, DAY2, SIGNALS, FixedClock, at, seed
from chromium import render

from tickwise.adapters.report import HtmlReportRenderer
from tickwise.adapters.timescale.backtest_repository import TimescaleBacktestRepository, TimescaleParitySource
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.bootstrap.backtest import make_report
from tickwise.config import load_settings
from tickwise.core.trading import EngineConfig, Slippage
from tickwise.pipelines.backtest import BacktestPipeline, BacktestRequest
from tickwise.ports.reports import ReportData

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def recorded_run(pool: asyncpg.Pool) -> str:
    await seed(pool)
    repo = TimescaleBacktestRepository(pool)
    pipeline = BacktestPipeline(
        source=repo,
        candles=TimescaleCandleRepository(pool),
        models=TimescaleModelRepository(pool),
        runs=repo,
        clock=FixedClock(),
    )
    request = BacktestRequest(
        start=at(DAY1, 0, 0), end=at(DAY2, 23, 59), engine=EngineConfig(slippage=Slippage(bps=0.0))
    )
    return (await pipeline.run(request)).run.run_id


@pytest.mark.db
async def test_the_report_of_a_recorded_backtest_renders_in_chromium_without_console_errors(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    run_id = await recorded_run(clean_db)
    data, files = await make_report(load_settings(), run_id, tmp_path / "report", url=db_url)
    assert data.run_id == run_id
    # The seed's champion was trained up to the day before the run.
    assert data.sample == "out-of-sample"
    names = {p.name for p in files.images}
    assert {"equity.png", "drawdown.png", "daily_pnl.png", "monthly_returns.png", "confidence.png"} <= names
    for path in files.images:
        assert path.read_bytes().startswith(PNG_MAGIC)
    page = files.html.read_text()
    # Self-contained: every image is an embedded PNG, nothing is fetched from anywhere.
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == page.count("<img ")
    assert all(base64.b64decode(b).startswith(PNG_MAGIC) for b in embedded)
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", page)
    assert "Rs 334.44" in page  # the hand-computed net PnL of the seeded trades
    assert "not available" in page  # the seed's models have no bundle on disk
    assert "no bar has both a live and a historical signal" in page

    shot = render(files.html, tmp_path / "report.png")
    assert shot.errors == [], shot.console
    assert (f"probe: {len(embedded)} images, 0 broken") in [m for _, m in shot.console]
    assert shot.screenshot.stat().st_size > 50_000  # charts, not a blank page


def test_the_chromium_probe_reports_broken_images_and_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA" alt="bad">'
        '<script>console.error("boom")</script></body></html>'
    )
    shot = render(page, tmp_path / "bad.png", height=300)
    assert "boom" in shot.errors
    assert "broken image: bad" in shot.errors


def test_a_run_without_trades_still_renders_every_section_and_says_what_is_missing(tmp_path: Path) -> None:
    data = ReportData(
        run_id="bt-empty",
        model_version="m-1",
        sample="IN-SAMPLE",
        sample_note="the run lies inside the training window",
        start=at(DAY1, 0, 0),
        end=at(DAY2, 0, 0),
        created_at=None,
        params={"capital": 100_000.0},
        metrics={"trades": 0, "net_pnl": 0.0, "hit_rate": None},
        equity=pd.DataFrame({"time": [at(DAY1, 9, 15)], "equity": [100_000.0], "drawdown": [0.0]}),
        daily=pd.Series([0.0], index=pd.Index([DAY1], name="day"), name="net"),
        monthly=pd.DataFrame([[0.0] + [np.nan] * 11], index=[2026], columns=list(range(1, 13))),
        deciles=[],
        trades=pd.DataFrame(),
        importance=None,
        importance_note="not available: no model bundle",
        parity=None,
        parity_note="no bar has both a live and a historical signal yet",
    )
    files = HtmlReportRenderer().render(data, tmp_path)
    page = files.html.read_text()
    assert "These numbers are IN-SAMPLE." in page
    assert 'class="badge in-sample"' in page
    assert "not available: no model bundle" in page
    assert len(files.images) == 5
    shot = render(files.html, tmp_path / "empty.png", height=2500)
    assert shot.errors == [], shot.console


@pytest.mark.db
async def test_parity_counts_bars_scored_in_both_modes_per_day(clean_db: asyncpg.Pool) -> None:
    await seed(clean_db)
    historical = SIGNALS[0]
    await TimescaleSignalRepository(clean_db).add_many(
        [
            replace(historical, mode="live", confidence=historical.confidence + 1e-10),
            replace(SIGNALS[2], mode="live", direction=1),  # disagrees with its historical twin
        ]
    )
    by_day = await TimescaleParitySource(clean_db).parity_by_day()
    assert by_day["pairs"].tolist() == [1, 1]
    assert by_day["direction_agree"].tolist() == [1.0, 0.0]
    assert by_day["max_confidence_diff"].iloc[0] == pytest.approx(1e-10, abs=1e-12)


def test_parity_and_importance_sections_draw_their_charts_when_there_is_data(tmp_path: Path) -> None:
    data = ReportData(
        run_id="bt-x",
        model_version="oos",
        sample="out-of-sample",
        sample_note="",
        start=at(DAY1, 0, 0),
        end=at(DAY2, 0, 0),
        created_at=None,
        params={"capital": 100_000.0},
        metrics={"trades": 0},
        equity=pd.DataFrame({"time": [at(DAY1, 9, 15)], "equity": [100_000.0], "drawdown": [0.0]}),
        daily=pd.Series([0.0], index=pd.Index([DAY1], name="day"), name="net"),
        monthly=pd.DataFrame([[np.nan] * 10 + [0.0, np.nan]], index=[2026], columns=list(range(1, 13))),
        deciles=[],
        trades=pd.DataFrame(),
        importance=[("rsi_14", 0.7), ("atr_14", 0.3)],
        importance_note="LightGBM gain",
        parity=pd.DataFrame(
            {
                "day": [DAY1, DAY2],
                "pairs": [10, 12],
                "direction_agree": [1.0, 1.0],
                "max_confidence_diff": [1e-12, 0.0],
            }
        ),
        parity_note="bars scored in both modes",
    )
    files = HtmlReportRenderer().render(data, tmp_path)
    assert {p.name for p in files.images} >= {"feature_importance.png", "parity.png"}
    page = files.html.read_text()
    assert "100.00 %" in page and "2026-11-03" in page
    assert 'class="badge oos"' in page
