"""One bar followed through the JSON logs of a short simulated live session by its bar batch's id.

The session is wired like ``bootstrap.live`` wires it (a :class:`BatchTrail` tapping the engine's output
and wrapping the writer's tables, the scoring step traced); the JSON lines are the real
``observability.logging.json_line`` records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from tickwise.bootstrap.broker import open_simulated_broker
from tickwise.bootstrap.live import MarketClock
from tickwise.config import Settings
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.calendar import NSE
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.logging import json_line
from tickwise.pipelines.live.batches import BatchTrail, TracedStep
from tickwise.pipelines.live.engine import LiveEngine
from tickwise.pipelines.live.session import LiveSession
from tickwise.pipelines.live.writer import BufferedWriter
from tickwise.ports.market_feed import FeedGap

INFY, TCS = 408065, 2953217
DAY = datetime(2026, 11, 20).date()
MINUTES = 4


def every_bar_signals(token: int, t: datetime, row: np.ndarray) -> Signal | None:
    return Signal(token, Timeframe.M1, t, t + timedelta(minutes=1), "m1", 1, 0.9, "live", "fs")


async def stored(rows: list[object]) -> int:
    return len(rows)


async def test_one_bar_is_followed_from_the_consumer_through_the_engine_to_the_writer_by_its_batch_id(
    tmp_path: Path,
) -> None:
    lines: list[dict[str, Any]] = []
    handler = logger.add(lambda message: lines.append(json.loads(json_line(message.record))), level="INFO")
    try:
        opening = datetime.combine(DAY, time(9, 14, 50), tzinfo=IST)
        until = datetime.combine(DAY, time(9, 15), tzinfo=IST) + timedelta(minutes=MINUTES)
        async with open_simulated_broker(
            Settings(), rest_port=0, ws_port=0, start=opening, speed=60
        ) as broker:
            trail = BatchTrail()
            writer = BufferedWriter(
                trail.traced_sinks({n: stored for n in ("ticks", "candles", "features", "signals")}),
                batch_size=500,
                interval_s=0.2,
                spill_dir=tmp_path / "spill",
            )
            engine = LiveEngine(FeatureCalculator(), TracedStep(every_bar_signals), trail.tap(writer.put))

            def open_feed(on_gap: Callable[[FeedGap], None]) -> Any:
                return broker.ticker(overflow="block", on_gap=on_gap)

            session = LiveSession(
                open_feed=open_feed,
                source=broker.rest,
                clock=MarketClock(broker.now),
                engine=engine,
                writer=writer,
                tokens=[INFY, TCS],
                day=DAY,
                until=until,
                calendar=NSE,
                speed=60,
            )
            report = await session.run(None)
    finally:
        logger.remove(handler)
    assert report.bars == 2 * MINUTES and report.signals == report.bars

    closed = [
        ln for ln in lines if ln["message"].startswith("live: ") and "closed, to the engine" in ln["message"]
    ]
    assert closed, "no consumer line for a bar batch"
    ids = [ln["batch"] for ln in closed]
    assert len(set(ids)) == len(ids)  # one id per batch
    # Follow the batch of the 09:16 bar(s): the consumer handed them over, the engine scored them
    # (signals made), the writer stored their candles, features and signals.
    line = next(ln for ln in closed if "09:16" in ln["message"])
    bid = line["batch"]
    mine = [ln for ln in lines if ln.get("batch") == bid or bid in ln.get("batches", [])]
    messages = [ln["message"] for ln in mine]
    assert any(m.startswith("live engine: scored") and "signal(s)" in m for m in messages)
    for table in ("candles", "features", "signals"):
        assert any(m.startswith("live writer: stored") and m.endswith(f"{table} row(s)") for m in messages), (
            table
        )
    assert {ln["logger"] for ln in mine} >= {
        "tickwise.pipelines.live.consumer",
        "tickwise.pipelines.live.batches",
    }
