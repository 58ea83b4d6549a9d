"""A small, deterministic data set for dashboard and cookbook queries (two instruments, two sessions).

``seed(conn)`` writes instruments, 1-minute candles (with a 10-bar gap for INFY on the second day),
ticks, features (including a training window before the range), labels, two models and signals. Call
it inside a transaction and roll back afterwards: it also adds the feature columns it writes
(``rsi_14``, ``atr_14``) the way the feature repository does, so nothing outlives the test.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from tickwise.adapters.timescale.schema import ALL_TABLES
from tickwise.domain.trade_record import TRADE_RECORD_COLUMNS
from tickwise.ports.signal_members import MEMBER_ROW_COLUMNS

NIFTY, INFY = 256265, 408065
FEATURE_SET = "core-v1"
CHAMPION, RETIRED = "m-champion", "m-retired"
SESSION_DAYS = (datetime(2025, 1, 6, 3, 45, tzinfo=UTC), datetime(2025, 1, 7, 3, 45, tzinfo=UTC))  # 09:15 IST
TRAINING_DAYS = (datetime(2025, 1, 2, 3, 45, tzinfo=UTC), datetime(2025, 1, 3, 3, 45, tzinfo=UTC))
# The dashboards' fixed test range: 09:00 IST on 6 Jan to 16:00 IST on 7 Jan 2025.
RANGE_START = datetime(2025, 1, 6, 3, 30, tzinfo=UTC)
RANGE_END = datetime(2025, 1, 7, 10, 30, tzinfo=UTC)
GAP = (
    datetime(2025, 1, 7, 4, 30, tzinfo=UTC),
    datetime(2025, 1, 7, 4, 40, tzinfo=UTC),
)  # INFY, 10:00-10:10 IST
BARS_PER_SESSION = 375
BACKTEST_RUN = "bt-seed"


def _bars(token: int, days: tuple[datetime, ...]) -> list[tuple[datetime, float, float, float, float, int]]:
    """Deterministic OHLCV: a smooth wave plus a drift, different per instrument."""
    base = 23_500.0 if token == NIFTY else 1_900.0
    out = []
    step = 0
    for open_at in days:
        for i in range(BARS_PER_SESSION):
            time = open_at + timedelta(minutes=i)
            if token == INFY and GAP[0] <= time < GAP[1]:
                step += 1
                continue
            o = base * (1 + 0.002 * math.sin(step / 17) + 0.00001 * step)
            c = base * (1 + 0.002 * math.sin((step + 1) / 17) + 0.00001 * (step + 1))
            h, low = max(o, c) * 1.0004, min(o, c) * 0.9996
            out.append((time, o, h, low, c, 1_000 + (step * 37) % 900))
            step += 1
    return out


async def seed(conn: asyncpg.Connection) -> None:
    """Write the data set (json/jsonb values as Python objects: the tickwise pool registers JSON codecs).

    Callers run this inside a transaction they roll back, so emptying the tables first (other tests of
    the session may have left rows) leaves their data untouched afterwards.
    """
    await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
    await conn.executemany(
        "INSERT INTO instruments (instrument_token, exchange_token, tradingsymbol, name, exchange, segment, "
        "instrument_type, tick_size, lot_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            (NIFTY, 1001, "NIFTY 50", "NIFTY 50", "NSE", "INDICES", "EQ", 0.0, 0),
            (INFY, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1),
        ],
    )
    await conn.execute(  # the instrument picker lists the configured universe (migration 0008)
        "INSERT INTO universe (instrument_token, tradingsymbol, exchange) "
        "SELECT instrument_token, tradingsymbol, exchange FROM instruments"
    )
    for name in ("rsi_14", "atr_14"):
        await conn.execute(f'ALTER TABLE features ADD COLUMN IF NOT EXISTS "{name}" double precision')

    candles: list[tuple[Any, ...]] = []
    features: list[tuple[Any, ...]] = []
    labels: list[tuple[Any, ...]] = []
    signals: list[tuple[Any, ...]] = []
    for token in (NIFTY, INFY):
        session_bars = _bars(token, SESSION_DAYS)
        for n, (time, o, h, low, c, v) in enumerate(session_bars):
            candles.append(
                (token, "1m", time, o, h, low, c, v, None, "live" if time.day == 7 else "historical")
            )
            features.append((token, "1m", FEATURE_SET, time, 50 + 30 * math.sin(n / 11), (h - low) * 1.8))
            for side in (1, -1):
                label = 1 if (n + side) % 3 == 0 else -1
                labels.append(
                    (
                        token,
                        "1m",
                        time,
                        side,
                        label,
                        time + timedelta(minutes=3),
                        time + timedelta(minutes=10),
                        0.004 * label,
                        c * (1 + 0.004 * label * side),
                        "pt" if label == 1 else "sl",
                        False,
                        1.0,
                    )
                )
            if n % 5 == 0:
                direction = (1, -1, 0)[(n // 5) % 3]
                confidence = 0.5 + 0.45 * abs(math.sin(n))
                available = time + timedelta(minutes=1)
                signals.append(
                    (
                        token,
                        "1m",
                        time,
                        available,
                        CHAMPION,
                        direction,
                        confidence,
                        "historical",
                        FEATURE_SET,
                        None,
                        0.05,
                        "oos",  # the bar lies after the champion's trained_to (2025-01-04) + embargo
                    )
                )
                if time.day == 7:
                    signals.append(
                        (
                            token,
                            "1m",
                            time,
                            available,
                            CHAMPION,
                            direction,
                            confidence,
                            "live",
                            FEATURE_SET,
                            35.0 + n % 40,
                            0.05,
                            "oos",
                        )
                    )
        for n, (time, _o, h, low, _c, _v) in enumerate(_bars(token, TRAINING_DAYS)):
            # Training distribution deliberately differs (lower RSI, higher ATR): the drift panel has work.
            features.append((token, "1m", FEATURE_SET, time, 45 + 20 * math.sin(n / 7), (h - low) * 2.5))

    await conn.copy_records_to_table(
        "candles",
        records=candles,
        columns=[
            "instrument_token",
            "timeframe",
            "time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "oi",
            "source",
        ],
    )
    await conn.copy_records_to_table(
        "features",
        records=features,
        columns=["instrument_token", "timeframe", "feature_set", "time", "rsi_14", "atr_14"],
    )
    await conn.copy_records_to_table(
        "labels",
        records=labels,
        columns=[
            "instrument_token",
            "timeframe",
            "time",
            "side",
            "label",
            "t1",
            "t1_max",
            "ret",
            "exit_price",
            "barrier",
            "ambiguous",
            "weight",
        ],
    )
    await conn.copy_records_to_table(
        "signals",
        records=signals,
        columns=[
            "instrument_token",
            "timeframe",
            "time",
            "available_at",
            "model_version",
            "direction",
            "confidence",
            "mode",
            "feature_set",
            "latency_ms",
            "size",
            "sample",
        ],
    )
    tick_start = SESSION_DAYS[1] + timedelta(minutes=30)
    await conn.copy_records_to_table(
        "ticks",
        records=[
            (
                tick_start + timedelta(seconds=s),
                INFY,
                1_900.0 + s / 100,
                10 * s,
                tick_start + timedelta(seconds=s),
            )
            for s in range(0, 600, 2)
        ],
        columns=["time", "instrument_token", "last_price", "volume_traded", "received_at"],
    )
    await conn.executemany(
        "INSERT INTO models (model_version, created_at, trained_from, trained_to, feature_set, feature_names, "
        "params, metrics, mlflow_run_id, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (
                RETIRED,
                datetime(2025, 1, 5, 12, tzinfo=UTC),
                datetime(2024, 12, 1, tzinfo=UTC),
                datetime(2025, 1, 1, tzinfo=UTC),
                FEATURE_SET,
                ["rsi_14", "atr_14"],
                {"num_leaves": 15},
                {"auc": 0.55, "logloss": 0.69, "oos": {"precision": 0.51, "hit_rate": 0.50}},
                "run-old",
                "retired",
            ),
            (
                CHAMPION,
                datetime(2025, 1, 6, 1, tzinfo=UTC),
                datetime(2025, 1, 2, tzinfo=UTC),
                datetime(2025, 1, 4, tzinfo=UTC),
                FEATURE_SET,
                ["rsi_14", "atr_14"],
                {"num_leaves": 31},
                {
                    "auc": 0.61,
                    "logloss": 0.67,
                    "oos": {"precision": 0.56, "hit_rate": 0.53},
                    "folds": [0.6, 0.62],
                },
                "run-new",
                "champion",
            ),
        ],
    )
    await _seed_backtest(conn)


async def _seed_backtest(conn: asyncpg.Connection) -> None:
    """One backtest run of the champion over the range: three INFY trades and its equity curve."""
    await conn.execute(
        'INSERT INTO backtest_runs (run_id, created_at, "from", "to", model_version, params, metrics) '
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        BACKTEST_RUN,
        datetime(2025, 1, 7, 12, tzinfo=UTC),
        SESSION_DAYS[0],
        SESSION_DAYS[1] + timedelta(days=1),
        CHAMPION,
        {"capital": 1_000_000.0, "slippage": {"bps": 2.0}},
        {
            "trades": 3,
            "net_pnl": 1180.5,
            "return_on_capital": 0.0011805,
            "sharpe": 1.2,
            "max_drawdown": 0.0006,
            "hit_rate": 0.6667,
        },
    )
    trades = []
    equity = [(SESSION_DAYS[0], 1_000_000.0, 0.0)]
    level = 1_000_000.0
    peak = level
    for n, (day, minute, side, reason, gross, net) in enumerate(
        (
            (0, 45, 1, "pt", 1200.0, 1120.35),
            (0, 120, -1, "sl", -520.0, -600.1),
            (1, 60, 1, "horizon", 740.0, 660.25),
        )
    ):
        entry = SESSION_DAYS[day] + timedelta(minutes=minute)
        exit_ = entry + timedelta(minutes=7)
        charges = round(gross - net, 2)
        trades.append(
            (
                BACKTEST_RUN,
                INFY,
                side,
                50,
                entry,
                1_900.0,
                exit_,
                1_900.0 + side * gross / 50,
                reason,
                gross,
                40.0,
                round(charges - 40.0 - 9.0, 2),
                3.0,
                0.2,
                1.4,
                4.4,
                0.0,
                net,
                entry - timedelta(minutes=1),
                CHAMPION,
                0.6 + n / 20,
            )
        )
        level += net
        peak = max(peak, level)
        equity.append((exit_, level, level / peak - 1))
    await conn.copy_records_to_table(
        "backtest_trades",
        records=[
            tuple(_decimal(v) if isinstance(v, float) and i in _MONEY_AT else v for i, v in enumerate(t))
            for t in trades
        ],
        columns=["run_id", *TRADE_RECORD_COLUMNS],
    )
    await conn.copy_records_to_table(
        "backtest_equity",
        records=[(BACKTEST_RUN, t, _decimal(e), d) for t, e, d in equity],
        columns=["run_id", "time", "equity", "drawdown"],
    )
    # Data-quality flags (docs/data-quality.md): one excluded and one kept flag per session day.
    await conn.copy_records_to_table(
        "candle_flags",
        records=[
            (INFY, "1m", day + timedelta(minutes=42), "wick_iqr", 31.5, "excluded") for day in SESSION_DAYS
        ]
        + [(NIFTY, "1m", day + timedelta(minutes=7), "volume_spike", 9.1, "kept") for day in SESSION_DAYS],
        columns=["instrument_token", "timeframe", "time", "check", "score", "action"],
    )

    # An ensemble (docs/models.md): 5m signals of the second session naming the ensemble version, and
    # per signal its three members' versions, bars and probabilities.
    ensemble = "e20250106-151500-abc123"
    bars5 = [SESSION_DAYS[1] + timedelta(minutes=15 + 5 * k) for k in range(6)]
    await conn.copy_records_to_table(
        "signals",
        records=[
            (
                INFY,
                "5m",
                t,
                t + timedelta(minutes=5),
                ensemble,
                (1, 0, -1)[k % 3],
                0.58,
                "historical",
                "ensemble",
                "oos",
            )
            for k, t in enumerate(bars5)
        ],
        columns=[
            "instrument_token",
            "timeframe",
            "time",
            "available_at",
            "model_version",
            "direction",
            "confidence",
            "mode",
            "feature_set",
            "sample",
        ],
    )
    members = []
    for t in bars5:
        close = t + timedelta(minutes=5)
        for tf, minutes in (("1m", 1), ("5m", 5), ("15m", 15)):
            opened = (
                t if tf == "5m" else close - timedelta(minutes=minutes) if tf == "1m" else SESSION_DAYS[1]
            )
            members.append((INFY, "5m", t, ensemble, "historical", tf, f"f-{tf}", opened, 0.55, 0.4))
    await conn.copy_records_to_table(
        "signal_members",
        records=members,
        columns=list(MEMBER_ROW_COLUMNS),
    )


_MONEY_AT = frozenset(range(9, 18))  # gross .. net in the backtest_trades row above


def _decimal(value: float) -> Decimal:
    return Decimal(repr(round(value, 2)))
