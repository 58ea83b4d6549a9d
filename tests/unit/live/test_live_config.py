"""The live configuration keys do what docs/configuration.md says."""

from __future__ import annotations

from tickwise.bootstrap.live import LiveOptions, session_speed
from tickwise.config import load_settings


def test_the_simulator_speed_of_the_configuration_is_the_default_of_live_speed() -> None:
    settings = load_settings(environ={"TICKWISE__BROKER__SIMULATOR__SPEED": "25"}, environment="test")
    assert session_speed(settings, LiveOptions(), simulated=True) == 25.0
    assert session_speed(settings, LiveOptions(speed=150.0), simulated=True) == 150.0
    assert session_speed(settings, LiveOptions(speed=150.0), simulated=False) == 1.0


def test_the_shipped_live_defaults_are_the_documented_ones() -> None:
    settings = load_settings(environ={}, environment="test")
    assert settings.broker.simulator.speed == 60.0
    assert settings.live.write_interval_s == 0.1
    assert settings.live.spike_band == 0.03


def test_retired_live_keys_still_load_and_change_nothing() -> None:
    env = {"TICKWISE__LIVE__WORKERS": "4", "TICKWISE__LIVE__WARMUP_BARS": "10"}
    settings = load_settings(environ=env, environment="test")
    assert not hasattr(settings.live, "workers") and not hasattr(settings.live, "warmup_bars")
