"""The report's performance-by-regime section: drawn, tabled and rendered in headless chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from backtest_seed import DAY1, DAY2, at
from chromium import render

from tickwise.adapters.report import HtmlReportRenderer
from tickwise.core.regime.performance import performance_by_regime
from tickwise.ports.reports import ReportData

ARTIFACTS = Path("/tmp/tickwise-report-regimes")  # the screenshot, kept for a human to look at


def _data(regimes: pd.DataFrame | None, note: str) -> ReportData:
    return ReportData(
        run_id="bt-regimes",
        model_version="oos",
        sample="out-of-sample",
        sample_note="",
        start=at(DAY1, 0, 0),
        end=at(DAY2, 0, 0),
        created_at=None,
        params={"capital": 100_000.0},
        metrics={"trades": 9},
        equity=pd.DataFrame({"time": [at(DAY1, 9, 15)], "equity": [100_000.0], "drawdown": [0.0]}),
        daily=pd.Series([0.0], index=pd.Index([DAY1], name="day"), name="net"),
        monthly=pd.DataFrame([[np.nan] * 10 + [0.0, np.nan]], index=[2026], columns=list(range(1, 13))),
        deciles=[],
        trades=pd.DataFrame(),
        regimes=regimes,
        regimes_note=note,
    )


def test_the_regime_section_shows_trades_hit_rate_and_net_per_state_in_chromium(tmp_path: Path) -> None:
    trades = pd.DataFrame({"net": [120.0, -40.0, 35.5, -80.0, -15.0, 60.0, -22.0, 10.0, 5.0]})
    states = np.array([0, 0, 0, 1, 1, 1, 2, 2, np.nan])
    table = performance_by_regime(trades, states)
    files = HtmlReportRenderer().render(
        _data(table, "regime state at entry: the filtered HMM state"), tmp_path
    )
    assert "regimes.png" in {p.name for p in files.images}
    page = files.html.read_text()
    section = page[page.index("<h2>Performance by regime at entry</h2>") :]
    section = section[: section.index("</section>")]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td>", section)
    assert rows[0] == ("0", "3", "66.7 %", "Rs 115.50")
    assert rows[1] == ("1", "3", "33.3 %", "Rs -35.00")
    assert rows[-1][:2] == ("unknown", "1")
    shot = render(files.html, tmp_path / "report.png")
    assert shot.errors == [], shot.console
    assert shot.screenshot.stat().st_size > 30_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot.screenshot, ARTIFACTS / "report.png")


def test_without_regime_layers_the_section_says_why(tmp_path: Path) -> None:
    files = HtmlReportRenderer().render(
        _data(None, "not available: no trade's model has a regime layer"), tmp_path
    )
    assert "regimes.png" not in {p.name for p in files.images}
    page = files.html.read_text()
    assert "Performance by regime at entry" in page
    assert "no trade&#x27;s model has a regime layer" in page
