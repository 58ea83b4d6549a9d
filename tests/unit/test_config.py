from pathlib import Path

import pytest

from tickwise.config import load_settings
from tickwise.domain.errors import ConfigError
from tickwise.domain.timeframe import Timeframe


def test_the_shipped_configuration_validates_with_embedded_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.database.url.get_secret_value() == ""
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
    assert load_settings(tmp_path, environ={}).database.url.get_secret_value() == "postgresql://x@h/db"
    url = load_settings(tmp_path, environ={"MY_DB": "postgresql://y@h/db"}).database.url
    assert url.get_secret_value().startswith("postgresql://y")


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


SENTINEL = "SENTINEL-7f3a9c2e41"


def test_a_typod_secret_key_does_not_echo_its_value() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"TICKWISE__BROKER__API_SECRT": SENTINEL})
    assert "broker.api_secrt" in str(err.value)
    assert SENTINEL not in str(err.value)


def test_an_unknown_section_does_not_echo_its_value(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(f"brokr:\n  api_secret: {SENTINEL}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, environ={})
    assert "brokr" in str(err.value) and SENTINEL not in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TICKWISE__DATABASE__URL", f"mysql://u:{SENTINEL}@h/db"),
        ("TICKWISE__MODEL_TRAINING__MLFLOW_URI", ["http://u:" + SENTINEL]),
        ("TICKWISE__MONITORING__ALERTS__WEBHOOK_URL", ["https://hooks.slack.com/services/" + SENTINEL]),
    ],
)
def test_an_invalid_url_value_is_masked_in_the_error(key: str, value: object) -> None:
    raw = value if isinstance(value, str) else "[" + str(value[0]) + "]"  # type: ignore[index]
    with pytest.raises(ConfigError) as err:
        load_settings(environ={key: raw})
    assert "***" in str(err.value) and SENTINEL not in str(err.value)


def test_dsns_uris_and_webhook_urls_are_secret_types_that_never_print() -> None:
    settings = load_settings(
        environ={
            "TICKWISE__DATABASE__URL": f"postgresql://u:{SENTINEL}@h/db",
            "TICKWISE__MODEL_TRAINING__MLFLOW_URI": f"http://u:{SENTINEL}@h",
            "TICKWISE__MODEL_TRAINING__OPTUNA_STORAGE": f"postgresql://u:{SENTINEL}@h/o",
            "TICKWISE__MONITORING__ALERTS__WEBHOOK_URL": f"https://hooks.slack.com/services/T0/B0/{SENTINEL}",
        }
    )
    assert SENTINEL not in repr(settings) and SENTINEL not in str(settings)
    assert settings.monitoring.alerts.webhook_url.get_secret_value().endswith(SENTINEL)


def test_a_missing_config_dir_is_an_error_not_silent_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TICKWISE_CONFIG_DIR") as err:
        load_settings(environ={"TICKWISE_CONFIG_DIR": str(tmp_path / "nope")})
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"system: 5\n", "section 'system' must be a mapping"),
        (b"system:\n  log_level: \xff\xfe\n", "not UTF-8"),
        (b"a: &x [*x]\n", "aliases refer to themselves"),
        (b"a: &x\n  b: *x\n", "aliases refer to themselves"),
        (b"system: [unclosed\n", "not valid YAML at line"),
    ],
)
def test_a_malformed_file_is_one_clear_config_error(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "config.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match=expected) as err:
        load_settings(tmp_path, environ={})
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
