"""Settings: config/config.yaml + config/environments/<TICKWISE_ENV>.yaml + TICKWISE__SECTION__KEY.

Load order (later wins): the base YAML, the environment YAML, then environment variables named
``TICKWISE__<SECTION>__<KEY>[__<SUBKEY>]``. ``${VAR}`` and ``${VAR:default}`` in YAML values are
substituted from the environment first. Everything is validated by pydantic; a wrong value raises
``ConfigError`` with the key, the value and the expected form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tickwise.domain.errors import ConfigError
from tickwise.domain.timeframe import Timeframe

ENV_PREFIX = "TICKWISE__"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemSettings(_Section):
    data_dir: Path = Path(".data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class DatabaseSettings(_Section):
    url: str = ""
    port: int = Field(55432, ge=1, le=65535)
    name: str = "tickwise"
    user: str = "tickwise"
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(8, ge=1)
    command_timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a postgresql://user:password@host:port/dbname URL")
        return value


class SimulatorSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    ws_port: int = Field(8766, ge=1, le=65535)
    seed: int = 42
    instruments: int = Field(10, ge=1, le=9000)
    speed: float = Field(60.0, gt=0)
    api_key: str = "tickwise-sim"
    api_secret: SecretStr = SecretStr("tickwise-sim-secret")


class BrokerSettings(_Section):
    api_key: str = ""
    api_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    rest_root: str = "https://api.kite.trade"
    ws_root: str = "wss://ws.kite.trade"
    login_url: str = "https://kite.zerodha.com/connect/login"
    redirect_port: int = Field(8767, ge=1, le=65535)
    token_file: Path = Path(".data/kite_token.json")
    simulator: SimulatorSettings = SimulatorSettings()

    @property
    def has_credentials(self) -> bool:
        """True when a real Kite account is configured (otherwise the simulator is used)."""
        return bool(self.api_key and self.api_secret.get_secret_value())


class LabelingSettings(_Section):
    atr_period: int = Field(14, ge=1)
    k_pt: float = Field(2.0, gt=0)
    k_sl: float = Field(1.5, gt=0)
    horizon: int = Field(10, ge=1)
    vertical_label: Literal["sign", "zero"] = "sign"
    warmup_bars: int = Field(140, ge=0)
    cost_threshold: float = 0.0


class TradingSettings(_Section):
    timeframes: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M60)
    signal_timeframe: Timeframe = Timeframe.M1
    symbols: tuple[str, ...] = ()
    backfill_days: int = Field(60, ge=1)
    holidays: tuple[date, ...] = ()
    labeling: LabelingSettings = LabelingSettings()


class ModelTrainingSettings(_Section):
    trials: int = Field(8, ge=1)
    folds: int = Field(4, ge=2)
    embargo_bars: int = Field(10, ge=0)
    num_boost_round: int = Field(200, ge=1)
    early_stopping_rounds: int = Field(20, ge=1)
    seed: int = 7
    mlflow_uri: str = ""
    optuna_storage: str = ""
    signal_threshold: float = Field(0.55, gt=0.0, lt=1.0)
    kelly_fraction: float = Field(0.25, gt=0.0, le=1.0)
    max_position: float = Field(0.1, gt=0.0, le=1.0)


class LiveSettings(_Section):
    tick_queue_size: int = Field(100_000, ge=1)
    workers: int = Field(2, ge=1)
    candle_grace_s: float = Field(2.0, ge=0)
    warmup_bars: int = Field(1000, ge=1)
    write_batch_size: int = Field(5000, ge=1)
    write_interval_s: float = Field(1.0, gt=0)
    spill_dir: Path = Path(".data/spill")
    watchdog_s: float = Field(5.0, gt=0)
    spike_band: float = Field(0.03, gt=0)


class AlertSettings(_Section):
    enabled: bool = False
    webhook_url: str = ""
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_chat_id: str = ""
    min_priority: Literal["info", "warning", "critical"] = "warning"
    throttle_s: float = Field(60.0, ge=0)


class MonitoringSettings(_Section):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, ge=0, le=65535)
    alerts: AlertSettings = AlertSettings()


class WalkForwardSettings(_Section):
    """Out-of-sample history (docs/models.md): one cheap fold model per step, fixed parameters."""

    window: Literal["expanding", "rolling"] = "expanding"
    refit_every_sessions: int = Field(5, ge=1)
    min_train_sessions: int = Field(20, ge=1)
    train_sessions: int = Field(40, ge=1)  # rolling window length; ignored when expanding
    min_train_events: int = Field(2000, ge=1)
    num_boost_round: int = Field(100, ge=1)
    max_train_rows: int = Field(20_000, ge=100)


class PromotionSettings(_Section):
    """When a challenger may replace the champion (docs/models.md)."""

    test: Literal["bootstrap", "delong"] = "bootstrap"
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    min_days: int = Field(5, ge=1)
    bootstrap_samples: int = Field(5000, ge=100)


class Settings(_Section):
    system: SystemSettings = SystemSettings()
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    trading: TradingSettings = TradingSettings()
    model_training: ModelTrainingSettings = ModelTrainingSettings()
    live: LiveSettings = LiveSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    walk_forward: WalkForwardSettings = WalkForwardSettings()
    promotion: PromotionSettings = PromotionSettings()


def default_config_dir() -> Path:
    """``config/`` of the checkout (or ``TICKWISE_CONFIG_DIR``)."""
    env = os.environ.get("TICKWISE_CONFIG_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "config" / "config.yaml").is_file():
            return parent / "config"
    return Path.cwd() / "config"


def load_settings(
    config_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    environment: str | None = None,
) -> Settings:
    """Build validated Settings; raise ConfigError naming the key, value and expected form."""
    env = dict(os.environ if environ is None else environ)
    cfg_dir = config_dir or default_config_dir()
    env_name = environment or env.get("TICKWISE_ENV", "development")
    data: dict[str, Any] = {}
    base = cfg_dir / "config.yaml"
    if base.is_file():
        data = _deep_merge(data, _read_yaml(base, env))
    env_file = cfg_dir / "environments" / f"{env_name}.yaml"
    if env_file.is_file():
        data = _deep_merge(data, _read_yaml(env_file, env))
    elif environment or "TICKWISE_ENV" in env:
        raise ConfigError(
            f"TICKWISE_ENV={env_name!r} has no file {env_file} (expected development, test or production)"
        )
    data = _deep_merge(data, _env_overrides(env))
    data = _resolve_relative_paths(data, cfg_dir.parent)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _read_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    result = _substitute(raw, env)
    assert isinstance(result, dict)
    return result


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is None:
                raise ConfigError(f"${{{name}}} is used in the configuration but {name} is not set")
            return default

        return _VAR.sub(repl, value)
    return value


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        value: Any = raw
        # Lists (e.g. timeframes) may be given as YAML flow sequences: TICKWISE__TRADING__TIMEFRAMES='[1m, 5m]'.
        if raw.startswith("["):
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                value = raw
        node[path[-1]] = value
    return out


def _deep_merge(base: dict[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_relative_paths(data: dict[str, Any], root: Path) -> dict[str, Any]:
    """Relative paths in the YAML are relative to the project root, not the working directory."""
    for section, key in (
        ("system", "data_dir"),
        ("broker", "token_file"),
        ("live", "spill_dir"),
    ):
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            data[section][key] = str(root / value)
    return data


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = "***" if any(s in key for s in ("secret", "token", "password")) else repr(value)
        env_name = ENV_PREFIX + "__".join(str(p).upper() for p in err["loc"])
        parts.append(f"{key} = {shown}: {err['msg']} (set it in config/*.yaml or {env_name})")
    return "invalid configuration: " + "; ".join(parts)
