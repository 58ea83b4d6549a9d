"""Optional JSON log lines: one object per line, a correlation id per CLI session, secrets masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tickwise.bootstrap.observability import setup_logging
from tickwise.config import Settings

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
