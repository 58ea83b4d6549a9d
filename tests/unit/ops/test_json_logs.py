"""Optional JSON log lines: one object per line, a correlation id per CLI session, secrets masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from loguru import logger

from tickwise.bootstrap.observability import setup_logging
from tickwise.config import Settings
from tickwise.domain.calendar import NSE
from tickwise.domain.instrument import Instrument
from tickwise.pipelines.historical.backfill import BackfillManager

SECRET = "s3cr3t-api-secret-value"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logger.remove()
    logger.configure(extra={})
    logging.basicConfig(handlers=[], force=True)


def settings(tmp_path: Path, *, log_json: bool) -> Settings:
    return Settings.model_validate(
        {"system": {"data_dir": str(tmp_path), "log_json": log_json}, "broker": {"api_secret": SECRET}}
    )


def test_json_log_lines_carry_the_session_correlation_id_and_bound_context(tmp_path: Path) -> None:
    setup_logging(settings(tmp_path, log_json=True))
    logger.info("backfill started")
    with logger.contextualize(job="backfill-1"):
        logger.warning("api_secret={} rejected", SECRET)
    logging.getLogger("asyncpg").warning("from the standard library")
    lines = [json.loads(line) for line in (tmp_path / "logs" / "tickwise.log").read_text().splitlines()]
    assert [r["message"] for r in lines][:2] == ["backfill started", "api_secret=*** rejected"]
    assert lines[1]["job"] == "backfill-1" and lines[1]["level"] == "WARNING"
    ids = {r["correlation_id"] for r in lines}
    assert len(ids) == 1 and len(ids.pop()) == 12
    assert SECRET not in (tmp_path / "logs" / "tickwise.log").read_text()


def test_each_session_gets_its_own_correlation_id(tmp_path: Path) -> None:
    setup_logging(settings(tmp_path, log_json=True))
    logger.info("first")
    setup_logging(settings(tmp_path, log_json=True))
    logger.info("second")
    lines = [json.loads(line) for line in (tmp_path / "logs" / "tickwise.log").read_text().splitlines()]
    assert lines[0]["correlation_id"] != lines[1]["correlation_id"]


def test_an_exception_is_inside_the_json_object(tmp_path: Path) -> None:
    setup_logging(settings(tmp_path, log_json=True))
    try:
        raise ValueError("bad bar")
    except ValueError:
        logger.exception("failed")
    (line,) = (tmp_path / "logs" / "tickwise.log").read_text().splitlines()
    record = json.loads(line)
    assert "ValueError: bad bar" in record["exception"]


def test_text_logs_stay_the_default(tmp_path: Path) -> None:
    setup_logging(settings(tmp_path, log_json=False))
    logger.info("plain")
    text = (tmp_path / "logs" / "tickwise.log").read_text()
    assert "| INFO     |" in text and not text.startswith("{")


class ChattySource:
    """One flat session per trading day; logs mid-fetch like the REST client does on a retry."""

    async def historical_frame(
        self, token: int, interval: Any, start: datetime, end: datetime
    ) -> pd.DataFrame:
        logger.warning("429 from Kite, retrying")
        times = [t for d in NSE.trading_days(start.date(), end.date()) for t in NSE.bar_opens(d)]
        price = np.full(len(times), 100.0)
        return pd.DataFrame(
            {"time": pd.DatetimeIndex(times), "open": price, "high": price, "low": price, "close": price,
             "volume": np.full(len(times), 10), "oi": 0}
        )  # fmt: skip


class CountingCandles:
    async def add_frame(self, frame: pd.DataFrame, *, on_conflict: str = "nothing") -> int:
        return len(frame)


class MemoryLog:
    def __init__(self) -> None:
        self.days: set[tuple[int, str, date]] = set()

    async def record(self, token: int, timeframe: Any, day: date, rows: int) -> None:
        self.days.add((token, str(timeframe), day))

    async def done_days(self, token: int, timeframe: Any, start: date, end: date) -> set[date]:
        return {d for (t, tf, d) in self.days if t == token and tf == str(timeframe) and start <= d <= end}


async def test_lines_logged_during_a_backfill_fetch_carry_its_job_id(tmp_path: Path) -> None:
    infy = Instrument(408065, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1)
    setup_logging(settings(tmp_path, log_json=True))
    manager = BackfillManager(ChattySource(), CountingCandles(), MemoryLog())  # type: ignore[arg-type]
    await manager.run([infy], date(2026, 1, 5), date(2026, 1, 9))
    records = [json.loads(line) for line in (tmp_path / "logs" / "tickwise.log").read_text().splitlines()]
    retry = next(r for r in records if r["message"].startswith("429"))
    assert retry["job"] == "backfill:408065:2026-01-05..2026-01-09"
    assert retry["correlation_id"]
