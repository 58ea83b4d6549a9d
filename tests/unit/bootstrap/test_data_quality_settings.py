"""``data_quality`` settings reach the candle checks; a bad policy is a configuration error."""

from __future__ import annotations

import pytest

from tickwise.bootstrap.historical import candle_check_config
from tickwise.config import DataQualitySettings, Settings
from tickwise.domain.errors import ConfigError


def test_the_shipped_defaults_match_the_checks_defaults() -> None:
    from tickwise.core.candle_flags import CandleCheckConfig

    assert candle_check_config(Settings()) == CandleCheckConfig()


def test_thresholds_and_the_exclusion_policy_come_from_the_settings() -> None:
    settings = Settings(data_quality=DataQualitySettings(wick_iqr=12.0, exclude=("stale",)))
    config = candle_check_config(settings)
    assert config.wick_iqr == 12.0
    assert (config.action("stale"), config.action("wick_iqr")) == ("excluded", "kept")


def test_an_unknown_check_in_the_policy_names_the_setting() -> None:
    settings = Settings(data_quality=DataQualitySettings(exclude=("spikes",)))
    with pytest.raises(ConfigError, match="data_quality: unknown candle checks"):
        candle_check_config(settings)
