"""trading.signal_timeframes and ensemble: defaults, the old single form, roll-ups, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from tickwise.bootstrap.historical import ensemble_spec_of, historical_options
from tickwise.cli.historical import _oos_summary
from tickwise.config import Settings, load_settings
from tickwise.domain.errors import ConfigError
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.oos import OosOutcome


def _settings(tmp: Path, **env: str) -> Settings:
    return load_settings(environ={"TICKWISE__SYSTEM__DATA_DIR": str(tmp), **env}, environment="test")


def test_three_signal_timeframes_and_a_5m_ensemble_by_default(tmp_path: Path) -> None:
    settings = load_settings(environ={"TICKWISE__SYSTEM__DATA_DIR": str(tmp_path)}, environment="development")
    options = historical_options(settings)
    assert options.all_signal_timeframes == (Timeframe.M1, Timeframe.M5, Timeframe.M15)
    spec = ensemble_spec_of(settings)
    assert spec is not None and spec.timeframe is Timeframe.M5
    assert spec.schedule.embargo.total_seconds() == 5 * 60 * settings.model_training.embargo_bars


def test_the_old_single_form_keeps_its_primary_first_and_one_timeframe_has_no_ensemble(
    tmp_path: Path,
) -> None:
    settings = _settings(
        tmp_path,
        TICKWISE__TRADING__SIGNAL_TIMEFRAME="15m",
        TICKWISE__TRADING__SIGNAL_TIMEFRAMES='["15m"]',
        TICKWISE__TRADING__TIMEFRAMES='["1m"]',
    )
    options = historical_options(settings)
    assert options.all_signal_timeframes == (Timeframe.M15,)
    assert Timeframe.M15 in options.timeframes  # its roll-ups are built although timeframes omits it
    assert ensemble_spec_of(settings) is None


def test_a_daily_signal_timeframe_or_an_ensemble_outside_the_timeframes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="intraday"):
        _settings(tmp_path, TICKWISE__TRADING__SIGNAL_TIMEFRAMES='["1m", "1d"]')
    with pytest.raises(ConfigError, match=r"ensemble\.timeframe"):
        _settings(
            tmp_path, TICKWISE__TRADING__SIGNAL_TIMEFRAMES='["1m", "5m"]', TICKWISE__ENSEMBLE__TIMEFRAME="60m"
        )
    assert ensemble_spec_of(_settings(tmp_path, TICKWISE__ENSEMBLE__ENABLED="false")) is None


def test_the_historical_summary_prints_each_timeframe_and_the_ensemble() -> None:
    primary = OosOutcome(note="no out-of-sample history yet")
    primary.timeframes["5m"] = OosOutcome(
        rows=75, longs=3, shorts=4, metrics={"oos_auc": 0.56, "oos_events": 70}
    )
    primary.timeframes["15m"] = OosOutcome(note="no 15m features and labels to train on yet")
    primary.ensemble = OosOutcome(timeframe="5m", rows=40, metrics={"oos_auc": 0.58, "oos_events": 38})
    console = Console(record=True, width=200)
    _oos_summary(console, primary, [])
    text = console.export_text()
    assert "5m: 75 out-of-sample rows from 0 fold models, 3 long, 4 short; pooled AUC 0.560" in text
    assert "15m: no 15m features and labels to train on yet" in text
    assert "ensemble 5m: 40 out-of-sample rows" in text
    assert primary.versions() == set()
