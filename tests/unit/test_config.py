from pathlib import Path

import pytest

from tickwise.config import load_settings
from tickwise.domain.errors import ConfigError
from tickwise.domain.timeframe import Timeframe


def test_the_shipped_configuration_validates_with_embedded_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.database.url == ""
    assert settings.database.port == 55432
    assert settings.system.log_level == "INFO"
    assert not settings.broker.has_credentials
    assert settings.broker.simulator.instruments >= 10


def test_environment_overrides_use_double_underscore_paths() -> None:
    settings = load_settings(
        environ={"TICKWISE__DATABASE__PORT": "6000", "TICKWISE__TRADING__TIMEFRAMES": "[1m, 15m]"}
    )
    assert settings.database.port == 6000
    assert settings.trading.timeframes == (Timeframe.M1, Timeframe.M15)


def test_variables_are_substituted_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("database:\n  url: ${MY_DB:postgresql://x@h/db}\n")
    assert load_settings(tmp_path, environ={}).database.url == "postgresql://x@h/db"
    assert load_settings(tmp_path, environ={"MY_DB": "postgresql://y@h/db"}).database.url.startswith(
        "postgresql://y"
    )


def test_a_wrong_value_names_the_key_the_value_and_the_expected_form() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"TICKWISE__SYSTEM__LOG_LEVEL": "TURBO"})
    message = str(err.value)
    assert "system.log_level" in message and "'TURBO'" in message and "DEBUG" in message
    assert err.value.exit_code == 2


def test_an_unknown_key_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("database:\n  prot: 1\n")
    with pytest.raises(ConfigError, match=r"database\.prot"):
        load_settings(tmp_path, environ={})


def test_a_non_postgres_database_url_is_rejected() -> None:
    with pytest.raises(ConfigError, match="postgresql://"):
        load_settings(environ={"DATABASE_URL": "sqlite:///x.db"})


def test_secrets_are_masked_in_errors(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("broker:\n  api_secret: [1, 2]\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert "***" in str(err.value)
