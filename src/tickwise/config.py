"""Settings: config/config.yaml + config/environments/<TICKWISE_ENV>.yaml + TICKWISE__SECTION__KEY.

Load order (later wins): the base YAML, the environment YAML, then environment variables named
``TICKWISE__<SECTION>__<KEY>[__<SUBKEY>]``. ``${VAR}`` and ``${VAR:default}`` in YAML values are
substituted from the environment first. Everything is validated by pydantic; a wrong value raises
``ConfigError`` with the key, the value and the expected form. Values that may carry credentials
(API secrets, tokens, DSNs, tracking URIs, webhook URLs) are ``SecretStr``: their ``repr``/``str``
print ``**********``, and an error shows them as ``***``, as it does for any key it does not know
(a typo'd ``TICKWISE__BROKER__API_SECRT`` must not echo the secret it was meant to hold). Loading
problems (a missing ``TICKWISE_CONFIG_DIR``, unreadable or non-UTF-8 files, YAML that is not a
mapping or nests aliases recursively) are one ``ConfigError`` line, never a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from tickwise.domain.cpus import usable_cpus
from tickwise.domain.errors import ConfigError
from tickwise.domain.timeframe import Timeframe

ENV_PREFIX = "TICKWISE__"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemSettings(_Section):
    data_dir: Path = Path(".data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False  # one JSON object per log line (also: tickwise --log-json)


def _secret_url(value: SecretStr, schemes: tuple[str, ...], example: str) -> SecretStr:
    raw = value.get_secret_value()
    if raw and not raw.startswith(schemes):
        raise ValueError(f"expected a {example} URL")
    return value


_AGE = re.compile(r"^\s*(\d+)\s*([hdwy])\s*$")
_AGE_UNITS = {
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
LIFECYCLE_TABLES = ("ticks", "candles", "features", "labels", "signals")


def parse_age(value: object) -> timedelta:
    """``12h``, ``2d``, ``4w``, ``1y`` (365 days) -> timedelta; a timedelta passes through."""
    if isinstance(value, timedelta):
        return value
    match = _AGE.match(str(value))
    if not match or int(match.group(1)) <= 0:
        raise ValueError("expected a positive age such as 12h, 2d, 4w or 1y")
    return int(match.group(1)) * _AGE_UNITS[match.group(2)]


def _ages(value: object) -> object:
    return {k: parse_age(v) for k, v in value.items()} if isinstance(value, Mapping) else value


class RetentionSettings(_Section):
    """How long data is kept: ticks as a whole, and bars (candles, features, labels, signals) per timeframe."""

    ticks: timedelta = timedelta(weeks=4)
    timeframes: dict[Timeframe, timedelta] = {
        Timeframe.M1: timedelta(days=365),
        Timeframe.M5: timedelta(days=730),
        Timeframe.M15: timedelta(days=730),
        Timeframe.M60: timedelta(days=3650),
        Timeframe.D1: timedelta(days=3650),
    }

    @field_validator("ticks", mode="before")
    @classmethod
    def _ticks_age(cls, value: object) -> timedelta:
        return parse_age(value)

    @field_validator("timeframes", mode="before")
    @classmethod
    def _timeframe_ages(cls, value: object) -> object:
        return _ages(value)


class LifecycleSettings(_Section):
    """TimescaleDB's own lifecycle (TSL build): compression, retention, continuous aggregates, jobs."""

    compress_after: dict[str, timedelta] = {
        "ticks": timedelta(days=2),
        "candles": timedelta(days=30),
        "features": timedelta(days=30),
        "labels": timedelta(days=30),
        "signals": timedelta(days=30),
    }
    retention: RetentionSettings = RetentionSettings()
    continuous_aggregates: bool = True
    # "tickwise": policies run through `CALL run_job` by `tickwise db maintain` (TimescaleDB's own
    # background runs fail on PostgreSQL 15.19+, see docs/timescaledb.md); "timescaledb": its scheduler.
    run_jobs: Literal["tickwise", "timescaledb"] = "tickwise"

    @field_validator("compress_after", mode="before")
    @classmethod
    def _compress_ages(cls, value: object) -> object:
        return _ages(value)

    @field_validator("compress_after")
    @classmethod
    def _known_tables(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        unknown = sorted(set(value) - set(LIFECYCLE_TABLES))
        if unknown:
            raise ValueError(
                f"unknown table(s) {', '.join(unknown)}; expected some of {', '.join(LIFECYCLE_TABLES)}"
            )
        return value


class DatabaseSettings(_Section):
    url: SecretStr = SecretStr("")
    port: int = Field(55432, ge=1, le=65535)
    name: str = "tickwise"
    user: str = "tickwise"
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(8, ge=1)
    command_timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    # The embedded cluster only: its PostgreSQL bin directory (empty: the newest installed) and extra
    # server settings (`timescaledb.license: timescale` turns on a TSL build's features).
    bindir: Path | None = None
    server_settings: dict[str, str] = {}
    lifecycle: LifecycleSettings = LifecycleSettings()

    @field_validator("bindir", mode="before")
    @classmethod
    def _empty_bindir(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("server_settings", mode="before")
    @classmethod
    def _settings_as_text(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {
                str(k): ("on" if v is True else "off" if v is False else str(v)) for k, v in value.items()
            }
        return value

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        return _secret_url(
            value, ("postgresql://", "postgres://"), "postgresql://user:password@host:port/dbname"
        )


class SimulatorSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    ws_port: int = Field(8766, ge=1, le=65535)
    seed: int = 42
    instruments: int = Field(10, ge=1, le=9000)
    speed: float = Field(60.0, gt=0)
    api_key: str = "tickwise-sim"
    api_secret: SecretStr = SecretStr("tickwise-sim-secret")
    # Fraction of equity 1m REST candles replaced by a bad print (docs/data-quality.md); 0 = none.
    bad_prints: float = Field(0.0, ge=0.0, le=0.2)


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


class SpecialSessionSettings(_Section):
    """A session on its own IST hours (Muhurat trading, a Saturday session); it overrides holidays."""

    date: date
    open: time
    close: time
    name: str = "special session"

    @field_validator("open", "close", mode="before")
    @classmethod
    def _quoted_clock_time(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 18:15 as the base-60 integer 1095, which pydantic would take
        # for seconds after midnight (00:18:15): refuse it instead of trading at the wrong hour.
        if isinstance(value, int):
            raise ValueError('expected a quoted IST clock time such as "18:15"')
        return value

    @field_validator("close")
    @classmethod
    def _after_open(cls, value: time, info: Any) -> time:
        start = info.data.get("open")
        if start is not None and value <= start:
            raise ValueError(f"close {value} must be after open {start}")
        return value


class TradingSettings(_Section):
    timeframes: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.M60)
    signal_timeframe: Timeframe = Timeframe.M1  # the primary: the champion, backtests, paper trading
    # Labels, features, fold models and signals per timeframe (docs/models.md, "Several timeframes");
    # the primary signal_timeframe is always one of them (the old single form keeps working).
    signal_timeframes: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.M5, Timeframe.M15)
    symbols: tuple[str, ...] = ()
    # With a real Kite account and no symbols: the shipped NIFTY 50 list (config/universe/nifty50.yaml);
    # every NSE equity only when asked for. The simulator always takes every simulated equity.
    universe: Literal["nifty50", "all_equities"] = "nifty50"
    backfill_days: int = Field(60, ge=1)
    # Index futures traded as one continuous front-month series each (docs/futures.md), e.g. [NIFTY].
    futures: tuple[str, ...] = ()
    futures_roll_sessions: int = Field(1, ge=0)  # the last session held has this many sessions left
    # date: roll by futures_roll_sessions only; volume: also earlier, once the next contract traded more
    # than the front on the previous session (never later than the date rule). docs/futures.md
    futures_roll: Literal["date", "volume"] = "date"
    holidays: tuple[date, ...] = ()
    special_sessions: tuple[SpecialSessionSettings, ...] = ()
    labeling: LabelingSettings = LabelingSettings()

    @field_validator("signal_timeframes")
    @classmethod
    def _intraday_signals(cls, value: tuple[Timeframe, ...]) -> tuple[Timeframe, ...]:
        if Timeframe.D1 in value:
            raise ValueError("signal timeframes are intraday (1m, 5m, 15m, 60m)")
        return tuple(dict.fromkeys(value))

    @property
    def all_signal_timeframes(self) -> tuple[Timeframe, ...]:
        """The primary ``signal_timeframe`` first, then the other ``signal_timeframes``."""
        rest = tuple(tf for tf in self.signal_timeframes if tf is not self.signal_timeframe)
        return (self.signal_timeframe, *rest)


class EnsembleSettings(_Section):
    """The ensemble over the signal timeframes' models (docs/models.md, "The ensemble")."""

    enabled: bool = True
    timeframe: Timeframe = Timeframe.M5  # one ensemble signal per bar of this timeframe
    refit_every_sessions: int = Field(5, ge=1)
    min_train_sessions: int = Field(5, ge=1)  # sessions of members' out-of-sample history before fold 1
    min_train_events: int = Field(200, ge=1)
    regularization: float = Field(1.0, gt=0.0)  # inverse L2 strength of the stacked logistic layer


class ModelTrainingSettings(_Section):
    trials: int = Field(8, ge=1)
    folds: int = Field(4, ge=2)
    embargo_bars: int = Field(10, ge=0)
    num_boost_round: int = Field(200, ge=1)
    early_stopping_rounds: int = Field(20, ge=1)
    seed: int = 7
    mlflow_uri: SecretStr = SecretStr("")  # may hold http://user:password@host
    optuna_storage: SecretStr = SecretStr("")  # an RDB URL with a password
    signal_threshold: float = Field(0.55, gt=0.0, lt=1.0)
    kelly_fraction: float = Field(0.25, gt=0.0, le=1.0)
    max_position: float = Field(0.1, gt=0.0, le=1.0)
    # `tickwise historical` retrains when the champion is this many days old (0: every run);
    # in between it scores new bars with the champion (docs/daily-operation.md).
    retrain_every_days: int = Field(7, ge=0)
    # Train the fold models' and the final fit's boosters with lightgbm.dask on compute.scheduler's
    # cluster, the workers loading their rows from TimescaleDB (docs/scaling.md); Optuna stays in process.
    distributed: bool = False
    # Seconds one distributed side's fit may take before it is cancelled and fails with a ModelError
    # (lightgbm.dask can hang for good in its port assignment: docs/scaling.md).
    distributed_timeout_s: float = Field(1800.0, gt=0.0, le=86_400.0)


_RETIRED_LIVE_KEYS = frozenset({"workers", "warmup_bars"})


class LiveSettings(_Section):
    tick_queue_size: int = Field(100_000, ge=1)
    candle_grace_s: float = Field(2.0, ge=0)
    write_batch_size: int = Field(5000, ge=1)
    write_interval_s: float = Field(0.1, gt=0)
    spill_dir: Path = Path(".data/spill")
    # Bytes the pending spill files may take; past it rows are dropped (counted, alerted). 0: no cap.
    spill_max_bytes: int = Field(2 * 1024**3, ge=0)
    watchdog_s: float = Field(5.0, gt=0)
    spike_band: float = Field(0.03, gt=0)
    # Challenger models scored live on the champion's features (newest first; 0: champion only).
    challengers: int = Field(3, ge=0)
    # Close a minute once ticks stamped in a later minute arrived and this many real seconds passed (for
    # ticks still in flight); null waits for candle_grace_s on the clock instead (docs/configuration.md).
    feed_close_margin_s: float | None = Field(0.3, ge=0)
    # Worker processes of `tickwise live`, each with its own Kite connection; null = one per core,
    # capped at 3 (Kite's connections per API key).
    shards: int | None = Field(None, ge=1, le=3)
    # Threads that score one minute's rows in row blocks (the same scores for any count); null = the
    # cores each shard has to itself, at most 4, and 1 when shards >= cores (docs/configuration.md).
    predict_threads: int | None = Field(None, ge=1, le=64)

    @model_validator(mode="before")
    @classmethod
    def _drop_retired_keys(cls, data: Any) -> Any:
        # ``workers`` and ``warmup_bars`` never did anything (one consumer by design; streams open on
        # the full history from the anchor): old configuration files that still set them keep loading.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in _RETIRED_LIVE_KEYS}
        return data


Priority = Literal["info", "warning", "critical"]


class AlertChannelSettings(_Section):
    """One delivery channel (docs/notifications.md). Secrets come from the environment only."""

    type: Literal["webhook", "slack", "telegram", "email"]
    url: SecretStr = SecretStr("")  # webhook, slack: usually ${SLACK_WEBHOOK_URL}
    bot_token: SecretStr = SecretStr("")  # telegram: usually ${TELEGRAM_BOT_TOKEN}
    chat_id: str = ""  # telegram
    host: str = ""  # email: SMTP server
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    sender: str = ""
    to: tuple[str, ...] = ()
    username_env: str = "TICKWISE_SMTP_USERNAME"  # names of the variables holding the SMTP login
    password_env: str = "TICKWISE_SMTP_PASSWORD"
    timeout_s: float = Field(10.0, gt=0)


class AlertRouteSettings(_Section):
    kind: Literal["signal", "ops"]
    channels: tuple[str, ...]
    min_priority: Priority = "info"


class SignalAlertSettings(_Section):
    enabled: bool = True
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)  # default: model_training.signal_threshold
    high_confidence: float | None = Field(None, ge=0.0, le=1.0)  # at or above: priority 'warning'
    throttle_s: float = Field(300.0, ge=0)
    dedup_s: float = Field(3600.0, ge=0)
    max_age_s: float | None = Field(120.0, ge=0)  # older signals are stored, not announced


class AlertSettings(_Section):
    enabled: bool = False
    # The original single-channel keys: they still work, as the channels "webhook" and "telegram".
    webhook_url: SecretStr = SecretStr("")  # Slack-style webhooks carry their secret in the path
    telegram_bot_token: SecretStr = SecretStr("")
    telegram_chat_id: str = ""
    min_priority: Priority = "warning"
    throttle_s: float = Field(60.0, ge=0)
    dedup_s: float | None = Field(None, ge=0)  # default: 10 x throttle_s
    queue_size: int = Field(1000, ge=1)
    channels: dict[str, AlertChannelSettings] = Field(default_factory=dict)
    routes: tuple[AlertRouteSettings, ...] = ()  # empty: ops alerts to every channel, signals nowhere
    signals: SignalAlertSettings = SignalAlertSettings()

    @model_validator(mode="after")
    def _routes_name_channels(self) -> AlertSettings:
        known = set(self.channels) | {"webhook", "telegram"}
        for route in self.routes:
            unknown = [c for c in route.channels if c not in known]
            if unknown:
                raise ValueError(
                    f"route for {route.kind!r} names unknown channel(s) {unknown}; "
                    f"define them under monitoring.alerts.channels"
                )
        return self


class MonitoringSettings(_Section):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, ge=0, le=65535)
    alerts: AlertSettings = AlertSettings()


class BacktestCostSettings(_Section):
    """Zerodha equity-intraday charges (fractions of value unless named otherwise)."""

    brokerage_rate: float = Field(0.0003, ge=0)
    brokerage_cap: float = Field(20.0, ge=0)  # rupees per executed order
    stt_sell_rate: float = Field(0.00025, ge=0)
    exchange_rate: float = Field(0.0000297, ge=0)
    sebi_per_crore: float = Field(10.0, ge=0)  # rupees per crore of turnover
    stamp_buy_rate: float = Field(0.00003, ge=0)
    gst_rate: float = Field(0.18, ge=0)


class BacktestSettings(_Section):
    """The trade engine of `tickwise backtest` (and paper trading): capital, limits, session, costs."""

    capital: float = Field(1_000_000.0, gt=0)
    default_size: float = Field(0.1, gt=0, le=1)
    max_open_positions: int = Field(5, ge=1)
    max_capital_per_instrument: float = Field(0.2, gt=0)
    leverage: float = Field(1.0, gt=0, le=10)
    daily_loss_limit: float | None = Field(0.02, gt=0, le=1)
    max_drawdown: float | None = Field(0.10, gt=0, le=1)
    entry_cutoff: time = time(15, 15)
    square_off: time = time(15, 20)
    slippage_bps: float = Field(2.0, ge=0)
    slippage_half_spread: bool = True
    costs: BacktestCostSettings = BacktestCostSettings()
    # Paper trading and the main backtest run: scale positions by the signals' meta size (meta-labeling).
    sizing: Literal["meta", "none"] = "meta"


class MetaSignalSettings(_Section):
    """Meta-labeling (docs/models.md#meta-labeling): a secondary model sizes each signal."""

    enabled: bool = True  # train a meta model with every model and size signals by it
    step: float = Field(0.1, gt=0, le=1)  # the size is rounded to multiples of this (AFML snippet 10.3)
    cv_folds: int = Field(3, ge=1)  # purged folds giving the out-of-fold primary probabilities
    min_events: int = Field(200, ge=2)  # fewer fired out-of-fold events: no meta model for that window
    num_boost_round: int = Field(100, ge=1)


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


class DataQualitySettings(_Section):
    """The candle checks of docs/data-quality.md: thresholds and which checks exclude a bar."""

    enabled: bool = True
    window: int = Field(120, ge=2)
    min_history: int = Field(30, ge=2)
    return_z: float = Field(15.0, gt=0)
    range_iqr: float = Field(20.0, gt=0)
    wick_iqr: float = Field(20.0, gt=0)
    volume_z: float = Field(8.0, gt=0)
    session_gap: float = Field(0.15, gt=0)
    anomaly: bool = True
    anomaly_threshold: float = Field(0.8, gt=0, lt=1)
    anomaly_fit_sessions: int = Field(5, ge=1)
    exclude: tuple[str, ...] = (
        "ohlc_inconsistent",
        "market_hours",
        "range_iqr",
        "wick_iqr",
        "zero_volume",
        "stale",
    )


# At most this many fits are independent at once in a default run (an Optuna trial's 4 folds x 2 sides),
# so more workers would only each import LightGBM (~200 MB) and wait; a larger pool can be configured.
MAX_DEFAULT_FIT_WORKERS = 8


def default_fit_workers() -> int:
    """The CPUs this process may run on (its affinity, which a container or ``taskset`` narrows; the
    machine's count where affinity is unknown), at most :data:`MAX_DEFAULT_FIT_WORKERS`."""
    return max(1, min(usable_cpus(), MAX_DEFAULT_FIT_WORKERS))


class ComputeSettings(_Section):
    """Where ``tickwise historical`` derives roll-ups, features and labels (docs/scaling.md).

    ``pool`` (the default): a pool of ``workers`` spawned processes on this machine, started before the
    backfill; ``inline``: in this process on the shared pool; ``processes``: a Dask LocalCluster of
    ``workers`` processes on this machine; ``tcp://host:8786`` (or ``tls://``): a Dask scheduler.
    """

    scheduler: str = "pool"
    workers: int = Field(default_factory=usable_cpus, ge=1)
    # Sessions per derive chunk: a chunk's slot matrix and feature frame are about 375 x chunk_sessions
    # x 2 KB (40 sessions: ~30 MB), the memory a task holds besides the carried 1m inputs.
    chunk_sessions: int = Field(default=40, ge=1)
    # Processes that train LightGBM fits at once in `tickwise historical`/`train` (bootstrap/fit_pool.py):
    # the same models bit for bit; 1 fits in this process, one fit after another (issue 14).
    fit_workers: int = Field(default_factory=lambda: default_fit_workers(), ge=1)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value in ("inline", "pool", "processes") or value.startswith(("tcp://", "tls://")):
            return value
        raise ValueError(
            "expected 'inline', 'pool', 'processes' or a Dask scheduler address (tcp://host:8786)"
        )


class ChangePointSettings(_Section):
    """``regimes.change_point``: Bayesian online change-point detection (docs/models.md, regimes)."""

    hazard: float = Field(1.0 / 60.0, gt=0.0, lt=1.0)  # prior change probability per bar
    max_run_length: int = Field(200, ge=2)  # run lengths kept (truncated distribution)
    change_window: int = Field(5, ge=1)  # cp_prob = P(run length < change_window)


class RegimeSettings(_Section):
    """``regimes``: the regime layer fitted with every model on its training window (docs/models.md)."""

    enabled: bool = True
    n_states: int = Field(3, ge=2, le=8)
    n_iter: int = Field(30, ge=1)  # EM iterations of the HMM fit
    max_fit_rows: int = Field(50_000, ge=100)  # the training window's most recent sessions
    change_point: ChangePointSettings = ChangePointSettings()

    @model_validator(mode="after")
    def _window_fits(self) -> RegimeSettings:
        if self.change_point.change_window > self.change_point.max_run_length:
            raise ValueError("regimes.change_point.change_window must be <= max_run_length")
        return self


class RegimeFilterSettings(_Section):
    """``signals.regime_filter``: suppress signals by regime (default off; docs/configuration.md)."""

    suppress_states: tuple[int, ...] = ()  # no signal while the filtered HMM state is one of these
    max_change_prob: float | None = Field(None, ge=0.0, le=1.0)  # no signal while cp_prob exceeds it


class SignalSettings(_Section):
    meta: MetaSignalSettings = MetaSignalSettings()
    regime_filter: RegimeFilterSettings = RegimeFilterSettings()


class Settings(_Section):
    system: SystemSettings = SystemSettings()
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    trading: TradingSettings = TradingSettings()
    model_training: ModelTrainingSettings = ModelTrainingSettings()
    live: LiveSettings = LiveSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    backtest: BacktestSettings = BacktestSettings()
    walk_forward: WalkForwardSettings = WalkForwardSettings()
    promotion: PromotionSettings = PromotionSettings()
    data_quality: DataQualitySettings = DataQualitySettings()
    compute: ComputeSettings = ComputeSettings()
    regimes: RegimeSettings = RegimeSettings()
    signals: SignalSettings = SignalSettings()
    ensemble: EnsembleSettings = EnsembleSettings()

    @model_validator(mode="after")
    def _ensemble_members(self) -> Settings:
        members = self.trading.all_signal_timeframes
        # One signal timeframe: nothing to combine, the ensemble is simply off.
        if self.ensemble.enabled and len(members) > 1 and self.ensemble.timeframe not in members:
            raise ValueError(
                f"ensemble.timeframe {self.ensemble.timeframe} is not one of trading.signal_timeframes"
            )
        return self

    @model_validator(mode="after")
    def _distributed_training_has_a_cluster(self) -> Settings:
        # No silent fallback to one process: a user who asked for a cluster should know there is none.
        if self.model_training.distributed and self.compute.scheduler in ("inline", "pool"):
            raise ValueError(
                f"model_training.distributed is true but compute.scheduler is '{self.compute.scheduler}': "
                "distributed training needs a Dask cluster ('inline' and 'pool' are none), set "
                "compute.scheduler to 'processes' (a local cluster) or a Dask scheduler address "
                "(tcp://host:8786), or set model_training.distributed to false"
            )
        return self


def default_config_dir() -> Path:
    """``config/`` of the checkout (or ``TICKWISE_CONFIG_DIR``, which must exist)."""
    env = os.environ.get("TICKWISE_CONFIG_DIR")
    if env:
        return _existing_config_dir(Path(env))
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
    if config_dir is None and env.get("TICKWISE_CONFIG_DIR"):
        # A configured directory that is missing would silently mean defaults (no DATABASE_URL, no
        # Kite credentials from the YAML): an error instead.
        cfg_dir = _existing_config_dir(Path(env["TICKWISE_CONFIG_DIR"]))
    else:
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


def _existing_config_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ConfigError(f"TICKWISE_CONFIG_DIR={str(path)!r} is not a directory (unset it to use config/)")
    return path


def _read_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        # The problem mark names line and column; the snippet after it could hold a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}: not valid YAML{where} ({getattr(exc, 'problem', None) or 'syntax'})"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML aliases refer to themselves (recursive anchor)") from None
    if _is_cyclic(raw):
        raise ConfigError(f"{path}: YAML aliases refer to themselves (recursive anchor)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for section, value in raw.items():
        if value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"{path}: section {section!r} must be a mapping of keys, not {type(value).__name__}"
            )
    try:
        result = _substitute(raw, env)
    except RecursionError:
        raise ConfigError(f"{path}: YAML aliases refer to themselves (recursive anchor)") from None
    assert isinstance(result, dict)
    return result


def _is_cyclic(value: Any, ancestors: frozenset[int] = frozenset()) -> bool:
    """True when a list or mapping contains itself (``a: &x [*x]``), which safe_load allows."""
    if not isinstance(value, dict | list):
        return False
    if id(value) in ancestors:
        return True
    inside = ancestors | {id(value)}
    children = value.values() if isinstance(value, dict) else value
    return any(_is_cyclic(child, inside) for child in children)


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
        if value is None and isinstance(merged.get(key), dict):
            continue  # an empty section (``live:`` with nothing under it) keeps the defaults
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
        node = data.get(section)
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str) and value and not os.path.isabs(value):
            data[section][key] = str(root / value)
    return data


_SECRET_KEY_PARTS = (
    "secret",
    "token",
    "password",
    "passwd",
    "key",
    "url",
    "uri",
    "dsn",
    "storage",
    "webhook",
)


def _is_secret_field(loc: tuple[int | str, ...]) -> bool:
    """True when ``loc`` names a SecretStr field, or a key whose name suggests a credential."""
    model: Any = Settings
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not isinstance(part, str) or fields is None or part not in fields:
            break
        annotation = fields[part].annotation
        if annotation is SecretStr:
            return True
        model = annotation
    return any(s in str(part).lower() for part in loc for s in _SECRET_KEY_PARTS)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        if not err["loc"]:
            # A rule across sections (a Settings validator): its input is the whole configuration,
            # secrets included, so only the message (which names the keys) is shown.
            parts.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        key = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        # An unknown key may be a typo of a secret's name: its value is never shown.
        hidden = err["type"] == "extra_forbidden" or _is_secret_field(tuple(err["loc"]))
        shown = "***" if hidden else repr(value)
        env_name = ENV_PREFIX + "__".join(str(p).upper() for p in err["loc"])
        parts.append(f"{key} = {shown}: {err['msg']} (set it in config/*.yaml or {env_name})")
    return "invalid configuration: " + "; ".join(parts)
