"""Initial schema: TimescaleDB extension, tables, hypertables.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The DDL is frozen here (generated once from ``tickwise.adapters.timescale.schema``) so later schema
changes become new revisions instead of silently rewriting history.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = """
CREATE TABLE backfill_log (
    instrument_token BIGINT NOT NULL,
    timeframe TEXT NOT NULL,
    day DATE NOT NULL,
    rows INTEGER NOT NULL,
    fetched_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT backfill_log_pkey PRIMARY KEY (instrument_token, timeframe, day)
);
CREATE TABLE candles (
    instrument_token BIGINT NOT NULL,
    timeframe TEXT NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    open DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    volume BIGINT NOT NULL,
    oi BIGINT,
    source TEXT DEFAULT 'historical' NOT NULL,
    obi_5 DOUBLE PRECISION,
    CONSTRAINT candles_instrument_timeframe_time_key UNIQUE (instrument_token, timeframe, time),
    CONSTRAINT candles_timeframe_check CHECK (timeframe IN ('1m', '5m', '15m', '60m', '1d')),
    CONSTRAINT candles_source_check CHECK (source IN ('historical', 'live'))
);
CREATE TABLE features (
    instrument_token BIGINT NOT NULL,
    timeframe TEXT NOT NULL,
    feature_set TEXT NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT features_instrument_timeframe_set_time_key UNIQUE (instrument_token, timeframe, feature_set, time)
);
CREATE TABLE feature_sets (
    feature_set TEXT NOT NULL,
    feature_names TEXT[] DEFAULT '{}' NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (feature_set)
);
CREATE TABLE instruments (
    instrument_token BIGINT NOT NULL,
    exchange_token BIGINT NOT NULL,
    tradingsymbol TEXT NOT NULL,
    name TEXT DEFAULT '' NOT NULL,
    exchange TEXT NOT NULL,
    segment TEXT NOT NULL,
    instrument_type TEXT NOT NULL,
    tick_size DOUBLE PRECISION NOT NULL,
    lot_size INTEGER NOT NULL,
    expiry DATE,
    strike DOUBLE PRECISION DEFAULT '0' NOT NULL,
    last_price DOUBLE PRECISION DEFAULT '0' NOT NULL,
    active BOOLEAN DEFAULT true NOT NULL,
    first_seen TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    last_seen TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (instrument_token)
);
CREATE INDEX instruments_exchange_symbol_idx ON instruments (exchange, tradingsymbol);
CREATE TABLE labels (
    instrument_token BIGINT NOT NULL,
    timeframe TEXT NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    side SMALLINT NOT NULL,
    label SMALLINT NOT NULL,
    t1 TIMESTAMP WITH TIME ZONE NOT NULL,
    t1_max TIMESTAMP WITH TIME ZONE NOT NULL,
    ret DOUBLE PRECISION NOT NULL,
    exit_price DOUBLE PRECISION NOT NULL,
    barrier TEXT NOT NULL,
    ambiguous BOOLEAN DEFAULT false NOT NULL,
    weight DOUBLE PRECISION,
    meta SMALLINT,
    CONSTRAINT labels_instrument_timeframe_side_time_key UNIQUE (instrument_token, timeframe, side, time),
    CONSTRAINT labels_side_check CHECK (side IN (-1, 1)),
    CONSTRAINT labels_label_check CHECK (label IN (-1, 0, 1)),
    CONSTRAINT labels_barrier_check CHECK (barrier IN ('pt', 'sl', 'pt_gap', 'sl_gap', 'both_sl_first', 'vertical'))
);
CREATE TABLE models (
    model_version TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    trained_from TIMESTAMP WITH TIME ZONE,
    trained_to TIMESTAMP WITH TIME ZONE,
    feature_set TEXT NOT NULL,
    feature_names TEXT[] DEFAULT '{}' NOT NULL,
    params JSONB DEFAULT '{}'::jsonb NOT NULL,
    metrics JSONB DEFAULT '{}'::jsonb NOT NULL,
    mlflow_run_id TEXT,
    status TEXT DEFAULT 'challenger' NOT NULL,
    label_spec JSONB,
    feature_spec JSONB,
    artifact_path TEXT,
    PRIMARY KEY (model_version),
    CONSTRAINT models_status_check CHECK (status IN ('champion', 'challenger', 'retired'))
);
CREATE UNIQUE INDEX models_one_champion_idx ON models (status) WHERE status = 'champion';
CREATE TABLE signals (
    instrument_token BIGINT NOT NULL,
    timeframe TEXT NOT NULL,
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    available_at TIMESTAMP WITH TIME ZONE NOT NULL,
    model_version TEXT NOT NULL,
    direction SMALLINT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    mode TEXT NOT NULL,
    feature_set TEXT NOT NULL,
    latency_ms DOUBLE PRECISION,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    size DOUBLE PRECISION,
    CONSTRAINT signals_contract_key UNIQUE (instrument_token, timeframe, time, model_version, mode),
    CONSTRAINT signals_direction_check CHECK (direction IN (-1, 0, 1)),
    CONSTRAINT signals_mode_check CHECK (mode IN ('historical', 'live'))
);
CREATE TABLE ticks (
    time TIMESTAMP WITH TIME ZONE NOT NULL,
    instrument_token BIGINT NOT NULL,
    mode TEXT,
    last_price DOUBLE PRECISION NOT NULL,
    last_traded_quantity BIGINT,
    average_traded_price DOUBLE PRECISION,
    volume_traded BIGINT,
    total_buy_quantity BIGINT,
    total_sell_quantity BIGINT,
    oi BIGINT,
    last_trade_time TIMESTAMP WITH TIME ZONE,
    bid_price_1 DOUBLE PRECISION,
    bid_qty_1 BIGINT,
    bid_orders_1 INTEGER,
    bid_price_2 DOUBLE PRECISION,
    bid_qty_2 BIGINT,
    bid_orders_2 INTEGER,
    bid_price_3 DOUBLE PRECISION,
    bid_qty_3 BIGINT,
    bid_orders_3 INTEGER,
    bid_price_4 DOUBLE PRECISION,
    bid_qty_4 BIGINT,
    bid_orders_4 INTEGER,
    bid_price_5 DOUBLE PRECISION,
    bid_qty_5 BIGINT,
    bid_orders_5 INTEGER,
    ask_price_1 DOUBLE PRECISION,
    ask_qty_1 BIGINT,
    ask_orders_1 INTEGER,
    ask_price_2 DOUBLE PRECISION,
    ask_qty_2 BIGINT,
    ask_orders_2 INTEGER,
    ask_price_3 DOUBLE PRECISION,
    ask_qty_3 BIGINT,
    ask_orders_3 INTEGER,
    ask_price_4 DOUBLE PRECISION,
    ask_qty_4 BIGINT,
    ask_orders_4 INTEGER,
    ask_price_5 DOUBLE PRECISION,
    ask_qty_5 BIGINT,
    ask_orders_5 INTEGER,
    received_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT ticks_instrument_time_received_key UNIQUE (instrument_token, time, received_at)
);
"""

# hypertable -> chunk interval (timescale.md section 3.2)
HYPERTABLES = {
    "ticks": "1 day",
    "candles": "30 days",
    "features": "7 days",
    "labels": "30 days",
    "signals": "30 days",
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    for statement in DDL.split(";"):
        if statement.strip():
            op.execute(statement)
    for table, interval in HYPERTABLES.items():
        op.execute(
            f"SELECT create_hypertable('{table}', by_range('time', INTERVAL '{interval}'), if_not_exists => TRUE)"
        )


def downgrade() -> None:
    for table in (
        "signals",
        "labels",
        "features",
        "candles",
        "ticks",
        "backfill_log",
        "feature_sets",
        "models",
        "instruments",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
