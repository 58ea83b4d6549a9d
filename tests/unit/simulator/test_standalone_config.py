"""`tickwise simulate` options over the configured simulator settings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tickwise.bootstrap.simulator import SimulateOptions, standalone_config
from tickwise.config import BrokerSettings, Settings, SimulatorSettings
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST


def _settings(speed: float = 60.0) -> Settings:
    return Settings(broker=BrokerSettings(simulator=SimulatorSettings(speed=speed, seed=5, instruments=3)))


def test_speed_defaults_to_the_configured_broker_simulator_speed() -> None:
    config = standalone_config(_settings(speed=30.0), SimulateOptions())
    assert config.speed == 30.0
    assert (config.seed, config.n_instruments, config.rest_port, config.ws_port) == (5, 3, 8765, 8766)


def test_command_line_options_win_over_the_configuration() -> None:
    config = standalone_config(
        _settings(),
        SimulateOptions(speed=1.0, seed=9, port=0, ws_port=0, instruments=2, start="2026-11-20 10:00"),
    )
    assert (config.speed, config.seed, config.rest_port, config.ws_port, config.n_instruments) == (
        1.0,
        9,
        0,
        0,
        2,
    )
    assert config.start == datetime(2026, 11, 20, 10, 0, tzinfo=IST)


def test_a_fault_script_is_read_from_a_file_given_with_an_at_sign(tmp_path: Path) -> None:
    script = tmp_path / "faults.txt"
    script.write_text("10:05 abort; 10:20 stall 8s")
    config = standalone_config(_settings(), SimulateOptions(faults=f"@{script}"))
    assert isinstance(config.faults, list) and [f.action for f in config.faults] == ["abort", "stall"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SimulateOptions(speed=-1.0), "--speed must be >= 0"),
        (SimulateOptions(faults="10:05 explode"), "unknown action 'explode'"),
        (SimulateOptions(start="tomorrow"), "invalid --start"),
        (SimulateOptions(faults="@/nonexistent/faults.txt"), "cannot read the fault script"),
    ],
)
def test_bad_options_are_a_config_error_not_a_crash(options: SimulateOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        standalone_config(_settings(), options)
