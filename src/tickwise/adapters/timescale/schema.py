"""The tickwise schema as SQLAlchemy Core metadata (Alembic's ``target_metadata``).

Names and columns follow the public contract (``contracts.md``) and ``timescale.md`` §3.2. Hypertables
(`ticks`, `candles`, `features`, `labels`, `signals`) are plain tables here; the migration turns them into
hypertables with the chunk intervals in :data:`HYPERTABLES`. Every unique key of a hypertable includes
``time`` (a TimescaleDB requirement), equality columns first.

``features`` is a wide table: only its key columns are declared; one ``double precision`` column per
feature is added at write time (``ALTER TABLE features ADD COLUMN IF NOT EXISTS``), so the metadata does
not list them and autogenerate must not drop them (``migrations/env.py`` ignores unknown feature columns).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP

from tickwise.adapters.timescale.names import DEPTH_LEVELS, FEATURE_KEY_COLUMNS

metadata = MetaData()

_TF_CHECK = "timeframe IN ('1m', '5m', '15m', '60m', '1d')"


def _ts(name: str, *, nullable: bool = False, **kw: object) -> Column[object]:
    return Column(name, TIMESTAMP(timezone=True), nullable=nullable, **kw)  # type: ignore[arg-type]


F8 = Float(precision=53)  # double precision

instruments = Table(
    "instruments",
    metadata,
    Column("instrument_token", BigInteger, primary_key=True, autoincrement=False),
    Column("exchange_token", BigInteger, nullable=False),
    Column("tradingsymbol", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("exchange", Text, nullable=False),
    Column("segment", Text, nullable=False),
    Column("instrument_type", Text, nullable=False),
    Column("tick_size", F8, nullable=False),
    Column("lot_size", Integer, nullable=False),
    Column("expiry", Date, nullable=True),
    Column("strike", F8, nullable=False, server_default="0"),
    Column("last_price", F8, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    _ts("first_seen", server_default=text("now()")),
    _ts("last_seen", server_default=text("now()")),
    _ts("updated_at", server_default=text("now()")),
    Index("instruments_exchange_symbol_idx", "exchange", "tradingsymbol"),
)

_depth_columns: list[Column[object]] = []
for _side in ("bid", "ask"):
    for _level in range(1, DEPTH_LEVELS + 1):
        _depth_columns += [
            Column(f"{_side}_price_{_level}", F8),
            Column(f"{_side}_qty_{_level}", BigInteger),
            Column(f"{_side}_orders_{_level}", Integer),
        ]

ticks = Table(
    "ticks",
    metadata,
    _ts("time"),  # exchange timestamp (falls back to last trade time, then receive time)
    Column("instrument_token", BigInteger, nullable=False),
    Column("mode", Text),
    Column("last_price", F8, nullable=False),
    Column("last_traded_quantity", BigInteger),
    Column("average_traded_price", F8),
    Column("volume_traded", BigInteger),
    Column("total_buy_quantity", BigInteger),
    Column("total_sell_quantity", BigInteger),
    Column("oi", BigInteger),
    _ts("last_trade_time", nullable=True),
    *_depth_columns,
    _ts("received_at"),
    UniqueConstraint("instrument_token", "time", "received_at", name="ticks_instrument_time_received_key"),
)

candles = Table(
    "candles",
    metadata,
    Column("instrument_token", BigInteger, nullable=False),
    Column("timeframe", Text, nullable=False),
    _ts("time"),  # open instant
    Column("open", F8, nullable=False),
    Column("high", F8, nullable=False),
    Column("low", F8, nullable=False),
    Column("close", F8, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("oi", BigInteger),
    Column("source", Text, nullable=False, server_default="historical"),
    # Order-book imbalance of the bar's last full-mode tick; NULL for REST (historical) candles.
    Column("obi_5", F8),
    UniqueConstraint("instrument_token", "timeframe", "time", name="candles_instrument_timeframe_time_key"),
    CheckConstraint(_TF_CHECK, name="candles_timeframe_check"),
    CheckConstraint("source IN ('historical', 'live')", name="candles_source_check"),
)

features = Table(
    "features",
    metadata,
    Column("instrument_token", BigInteger, nullable=False),
    Column("timeframe", Text, nullable=False),
    Column("feature_set", Text, nullable=False),
    _ts("time"),
    UniqueConstraint(*FEATURE_KEY_COLUMNS, name="features_instrument_timeframe_set_time_key"),
)

# feature_set -> ordered feature column names, so a read returns exactly one set's columns.
feature_sets = Table(
    "feature_sets",
    metadata,
    Column("feature_set", Text, primary_key=True),
    Column("feature_names", ARRAY(Text), nullable=False, server_default="{}"),
    _ts("updated_at", server_default=text("now()")),
)

labels = Table(
    "labels",
    metadata,
    Column("instrument_token", BigInteger, nullable=False),
    Column("timeframe", Text, nullable=False),
    _ts("time"),  # t0
    Column("side", SmallInteger, nullable=False),
    Column("label", SmallInteger, nullable=False),
    _ts("t1"),
    _ts("t1_max"),
    Column("ret", F8, nullable=False),
    Column("exit_price", F8, nullable=False),
    Column("barrier", Text, nullable=False),
    Column("ambiguous", Boolean, nullable=False, server_default=text("false")),
    Column("weight", F8),
    Column("meta", SmallInteger),
    UniqueConstraint(
        "instrument_token", "timeframe", "side", "time", name="labels_instrument_timeframe_side_time_key"
    ),
    CheckConstraint("side IN (-1, 1)", name="labels_side_check"),
    CheckConstraint("label IN (-1, 0, 1)", name="labels_label_check"),
    CheckConstraint(
        "barrier IN ('pt', 'sl', 'pt_gap', 'sl_gap', 'both_sl_first', 'vertical')",
        name="labels_barrier_check",
    ),
)

models = Table(
    "models",
    metadata,
    Column("model_version", Text, primary_key=True),
    _ts("created_at", server_default=text("now()")),
    _ts("trained_from", nullable=True),
    _ts("trained_to", nullable=True),
    Column("feature_set", Text, nullable=False),
    Column("feature_names", ARRAY(Text), nullable=False, server_default="{}"),
    Column("params", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("metrics", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("mlflow_run_id", Text),
    Column("status", Text, nullable=False, server_default="challenger"),
    Column("label_spec", JSONB),
    Column("feature_spec", JSONB),
    Column("artifact_path", Text),
    # 'fold': a walk-forward fold model that wrote out-of-sample history (migration 0006).
    CheckConstraint("status IN ('champion', 'challenger', 'retired', 'fold')", name="models_status_check"),
    # At most one champion at any time.
    Index("models_one_champion_idx", "status", unique=True, postgresql_where=text("status = 'champion'")),
)

signals = Table(
    "signals",
    metadata,
    Column("instrument_token", BigInteger, nullable=False),
    Column("timeframe", Text, nullable=False),
    _ts("time"),  # open of the bar whose close produced the signal
    _ts("available_at"),
    Column("model_version", Text, nullable=False),
    Column("direction", SmallInteger, nullable=False),
    Column("confidence", F8, nullable=False),
    Column("mode", Text, nullable=False),
    Column("feature_set", Text, nullable=False),
    Column("latency_ms", F8),
    _ts("created_at", server_default=text("now()")),
    Column("size", F8),
    # 'oos' when the bar lies after the model's trained_to + embargo (migration 0006); in_sample otherwise.
    Column("sample", Text, nullable=False, server_default="in_sample"),
    # Meta-labeling (migration 0013): the meta model's probability and the position scale it gives.
    Column("meta_prob", F8),
    Column("meta_size", F8),
    UniqueConstraint(
        "instrument_token", "timeframe", "time", "model_version", "mode", name="signals_contract_key"
    ),
    CheckConstraint("direction IN (-1, 0, 1)", name="signals_direction_check"),
    CheckConstraint("mode IN ('historical', 'live')", name="signals_mode_check"),
    CheckConstraint("sample IN ('oos', 'in_sample')", name="signals_sample_check"),
)

MODEL_EVENTS = ("trained", "promoted", "retired", "rolled_back", "rejected")
# Append-only audit trail of model governance; a trigger (migration 0006) rejects UPDATE and DELETE.
model_events = Table(
    "model_events",
    metadata,
    _ts("time", server_default=text("now()")),
    Column("model_version", Text, ForeignKey("models.model_version"), nullable=False),
    Column("event", Text, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("metrics", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("actor", Text, nullable=False, server_default=""),
    Index("model_events_version_time_idx", "model_version", text("time DESC")),
    CheckConstraint(
        "event IN ('trained', 'promoted', 'retired', 'rolled_back', 'rejected')",
        name="model_events_event_check",
    ),
)

backfill_log = Table(
    "backfill_log",
    metadata,
    Column("instrument_token", BigInteger, nullable=False),
    Column("timeframe", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("rows", Integer, nullable=False),
    _ts("fetched_at", server_default=text("now()")),
    PrimaryKeyConstraint("instrument_token", "timeframe", "day", name="backfill_log_pkey"),
)

# Worlds and the universe (migration 0008): the one market this database holds (at most one row, see
# bootstrap/world.py), and the instruments the last run worked on (what Grafana's picker lists).
world = Table(
    "world",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("kind", Text, nullable=False),
    Column("seed", Integer),
    Column("api_key", Text),
    Column("user_id", Text),
    _ts("recorded_at", server_default=text("now()")),
    CheckConstraint("singleton", name="world_singleton_check"),
    CheckConstraint("kind IN ('simulator', 'kite')", name="world_kind_check"),
)

universe = Table(
    "universe",
    metadata,
    Column("instrument_token", BigInteger, primary_key=True),
    Column("tradingsymbol", Text, nullable=False),
    Column("exchange", Text, nullable=False),
    _ts("updated_at", server_default=text("now()")),
)

# Live repair windows (migration 0007): minutes a live session could not repair before it ended; the
# next run of the day backfills them through REST first and sets repaired_at.
repair_windows = Table(
    "repair_windows",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    _ts("start_time"),
    _ts("end_time"),
    Column("reason", Text, nullable=False),
    _ts("recorded_at", server_default=text("now()")),
    _ts("repaired_at", nullable=True),
    CheckConstraint("end_time >= start_time", name="repair_windows_range_check"),
    Index("repair_windows_open_idx", "day", "start_time", postgresql_where=text("repaired_at IS NULL")),
)

# Backtests (migration 0004): one row per run, its trades and its equity curve. Money is numeric to the
# paisa, exactly as the trade engine rounds it (Zerodha's contract-note rounding).
MONEY = Numeric(18, 2)
EXIT_REASONS = ("pt", "sl", "horizon", "square_off", "risk")

backtest_runs = Table(
    "backtest_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    _ts("created_at", server_default=text("now()")),
    _ts("from"),
    _ts("to"),
    Column("model_version", Text, nullable=False),  # a version, or 'oos' for the out-of-sample set
    Column("params", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("metrics", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)

backtest_trades = Table(
    "backtest_trades",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("instrument_token", BigInteger, nullable=False),
    Column("side", SmallInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    _ts("entry_time"),
    Column("entry_price", F8, nullable=False),
    _ts("exit_time"),
    Column("exit_price", F8, nullable=False),
    Column("exit_reason", Text, nullable=False),
    *(
        Column(name, MONEY, nullable=False)
        for name in ("gross", "brokerage", "stt", "exchange", "sebi", "stamp", "gst", "slippage", "net")
    ),
    _ts("signal_time"),
    Column("model_version", Text, nullable=False),
    Column("confidence", F8),
    Index("backtest_trades_run_entry_idx", "run_id", "entry_time"),
    CheckConstraint("side IN (-1, 1)", name="backtest_trades_side_check"),
    CheckConstraint(
        "exit_reason IN ('pt', 'sl', 'horizon', 'square_off', 'risk')",
        name="backtest_trades_exit_reason_check",
    ),
)

backtest_equity = Table(
    "backtest_equity",
    metadata,
    Column("run_id", Text, nullable=False),
    _ts("time"),
    Column("equity", MONEY, nullable=False),
    Column("drawdown", F8, nullable=False),  # equity / running peak - 1 (<= 0)
    Index("backtest_equity_run_time_idx", "run_id", "time"),
)

# Migration 0009: the last run of each TimescaleDB job tickwise runs itself (adapters/timescale/lifecycle.py).
lifecycle_job_runs = Table(
    "lifecycle_job_runs",
    metadata,
    Column("job_id", Integer, primary_key=True, autoincrement=False),
    Column("application_name", Text, nullable=False),
    _ts("started_at"),
    _ts("finished_at"),
    Column("succeeded", Boolean, nullable=False),
    Column("error", Text),
)

# Paper trading (`tickwise live --paper`): the same trade engine on live signals and ticks. A session's
# trades keep the backtest's column names (run_id = the paper session id), so every backtest query
# works on them; paper_positions is the book of positions (open until closed_at is set).
paper_trades = Table(
    "paper_trades",
    metadata,
    *(c._copy() for c in backtest_trades.columns),
    Index("paper_trades_run_entry_idx", "run_id", "entry_time"),
    CheckConstraint("side IN (-1, 1)", name="paper_trades_side_check"),
    CheckConstraint(
        "exit_reason IN ('pt', 'sl', 'horizon', 'square_off', 'risk')",
        name="paper_trades_exit_reason_check",
    ),
)

paper_positions = Table(
    "paper_positions",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("instrument_token", BigInteger, nullable=False),
    Column("side", SmallInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    _ts("entry_time"),
    Column("entry_price", F8, nullable=False),
    Column("take_profit", F8, nullable=False),
    Column("stop_loss", F8, nullable=False),
    _ts("horizon_end"),
    _ts("signal_time"),
    Column("model_version", Text, nullable=False),
    Column("confidence", F8),
    _ts("closed_at", nullable=True),
    Column("exit_reason", Text),
    _ts("updated_at", server_default=text("now()")),
    PrimaryKeyConstraint("run_id", "instrument_token", "entry_time", name="paper_positions_pkey"),
    CheckConstraint("side IN (-1, 1)", name="paper_positions_side_check"),
)

# The signals a paper session acted on, each exactly as its engine was fed it (levels included): a bar
# re-scored after a repair changes `signals` (an upsert) but never this record, so a backtest replaying
# it (`--signals paper`) trades what the session traded (docs/backtest.md, "Paper trading").
paper_signals = Table(
    "paper_signals",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("instrument_token", BigInteger, nullable=False),
    _ts("time"),
    _ts("available_at"),
    Column("direction", SmallInteger, nullable=False),
    Column("confidence", F8, nullable=False),
    Column("size", F8),
    Column("meta_size", F8),
    Column("model_version", Text, nullable=False),
    Column("take_profit", F8, nullable=False),
    Column("stop_loss", F8, nullable=False),
    _ts("horizon_end"),
    Column("lot_size", Integer, nullable=False),
    PrimaryKeyConstraint("run_id", "instrument_token", "time", "model_version", name="paper_signals_pkey"),
    CheckConstraint("direction IN (-1, 1)", name="paper_signals_direction_check"),
)

candle_flags = Table(
    "candle_flags",
    metadata,
    Column("instrument_token", BigInteger, nullable=False),
    Column("timeframe", Text, nullable=False),
    _ts("time"),
    Column("check", Text, nullable=False),
    Column("score", F8, nullable=False),
    Column("action", Text, nullable=False),
    _ts("flagged_at", server_default=text("now()")),
    PrimaryKeyConstraint("instrument_token", "timeframe", "check", "time", name="candle_flags_pkey"),
    Index("candle_flags_time_idx", text("time DESC")),
    CheckConstraint(_TF_CHECK, name="candle_flags_timeframe_check"),
    CheckConstraint("action IN ('kept', 'excluded')", name="candle_flags_action_check"),
)

# The ensemble's members per ensemble signal (docs/models.md): which model version of each member
# timeframe gave which probabilities at the ensemble bar (its latest bar available at the close).
signal_members = Table(
    "signal_members",
    metadata,
    Column("instrument_token", BigInteger, nullable=False),
    Column("timeframe", Text, nullable=False),
    _ts("time"),
    Column("model_version", Text, nullable=False),  # the ensemble version (signals.model_version)
    Column("mode", Text, nullable=False),
    Column("member_timeframe", Text, nullable=False),
    Column("member_version", Text, nullable=False),
    _ts("member_time"),  # open of the member bar whose probabilities were used
    Column("p_long", F8, nullable=False),
    Column("p_short", F8, nullable=False),
    PrimaryKeyConstraint(
        "instrument_token",
        "timeframe",
        "model_version",
        "mode",
        "member_timeframe",
        "time",
        name="signal_members_pkey",
    ),
    Index("signal_members_time_idx", text("time DESC")),
    CheckConstraint(_TF_CHECK, name="signal_members_timeframe_check"),
    CheckConstraint(
        "member_timeframe IN ('1m', '5m', '15m', '60m', '1d')", name="signal_members_member_timeframe_check"
    ),
    CheckConstraint("mode IN ('historical', 'live')", name="signal_members_mode_check"),
    CheckConstraint(
        "p_long >= 0 AND p_long <= 1 AND p_short >= 0 AND p_short <= 1", name="signal_members_p_check"
    ),
)

#: backtest hypertable -> (time column, chunk interval); not in HYPERTABLES, whose time column is ``time``
BACKTEST_HYPERTABLES: dict[str, tuple[str, str]] = {
    "backtest_trades": ("entry_time", "30 days"),
    "backtest_equity": ("time", "30 days"),
    "paper_trades": ("entry_time", "30 days"),
}

#: hypertable -> chunk interval (timescale.md §3.2)
HYPERTABLES: dict[str, str] = {
    "ticks": "1 day",
    "candles": "30 days",
    "features": "7 days",
    "labels": "30 days",
    "signals": "30 days",
    "candle_flags": "30 days",
    "signal_members": "30 days",
}

#: append-only hypertables -> chunk interval; kept out of HYPERTABLES so retention never drops them
APPEND_ONLY_HYPERTABLES: dict[str, str] = {"model_events": "90 days"}

#: every application table, in an order safe for TRUNCATE/DROP
ALL_TABLES = (
    "paper_signals",
    "paper_positions",
    "paper_trades",
    "model_events",
    "candle_flags",
    "signal_members",
    "backtest_equity",
    "backtest_trades",
    "backtest_runs",
    "signals",
    "labels",
    "features",
    "candles",
    "ticks",
    "backfill_log",
    "universe",
    "world",
    "repair_windows",
    "feature_sets",
    "models",
    "instruments",
    "lifecycle_job_runs",
)
