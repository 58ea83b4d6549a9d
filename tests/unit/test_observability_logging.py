"""Logging: levels apply, stdlib logging is routed in, files are written, and secrets never appear."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tickwise.observability.logging import MASK, SecretMasker, configure_logging, redact_url, secret_parts

SECRET = "s3cr3t-api-secret-value"
TOKEN = "AcC3ssT0kenXYZ123"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logger.remove()
    logging.basicConfig(handlers=[], force=True)


def test_known_secret_values_are_masked_anywhere_in_a_line() -> None:
    mask = SecretMasker([SECRET, TOKEN])
    assert mask(f"session for {SECRET} and {TOKEN}!") == f"session for {MASK} and {MASK}!"


@pytest.mark.parametrize(
    ("line", "leaked"),
    [
        ("api_secret=abcdef123456 sent", "abcdef123456"),
        ('{"access_token": "tok_998877665544"}', "tok_998877665544"),
        ("Authorization: token myapikey:zzyyxxwwvvuu", "zzyyxxwwvvuu"),
        ("connecting to postgresql://tickwise:hunter2hunter@db:5432/tickwise", "hunter2hunter"),
        ("request_token=RT0011223344&action=login", "RT0011223344"),
    ],
)
def test_credential_shaped_values_are_masked_without_knowing_them(line: str, leaked: str) -> None:
    masked = SecretMasker()(line)
    assert leaked not in masked
    assert MASK in masked


def test_short_secret_values_are_not_masked_by_value() -> None:
    # Masking a 2-character "secret" would replace it inside every word of every line.
    assert SecretMasker(["ab"])("table abc") == "table abc"


def test_configured_level_filters_lower_levels() -> None:
    out = io.StringIO()
    configure_logging("WARNING", stream=out)
    logger.info("quiet")
    logger.warning("loud")
    assert "loud" in out.getvalue()
    assert "quiet" not in out.getvalue()


def test_stdlib_logging_is_routed_through_loguru_and_masked() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", stream=out, secrets=[TOKEN])
    logging.getLogger("asyncpg.pool").warning("reconnecting with token %s", TOKEN)
    text = out.getvalue()
    assert "reconnecting with token" in text
    assert TOKEN not in text


def test_per_request_library_chatter_is_hidden_at_info_and_shown_at_debug() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET /instruments")
    logging.getLogger("httpx").warning("retrying after 429")
    assert "GET /instruments" not in out.getvalue()
    assert "retrying after 429" in out.getvalue()
    configure_logging("DEBUG", stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET /quote")
    assert "GET /quote" in out.getvalue()


def test_secrets_in_exception_tracebacks_are_masked() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out, secrets=[SECRET])
    try:
        raise RuntimeError(f"login failed for {SECRET}")
    except RuntimeError:
        logger.exception("auth")
    text = out.getvalue()
    assert "RuntimeError: login failed for" in text
    assert SECRET not in text


def test_file_sink_writes_masked_lines_under_the_log_dir(tmp_path: Path) -> None:
    masker = configure_logging("INFO", stream=io.StringIO(), log_dir=tmp_path / "logs")
    masker.add(TOKEN)  # a token obtained after start-up
    logger.info("new token {}", TOKEN)
    configure_logging("INFO", stream=io.StringIO())  # reconfiguring closes the file
    text = (tmp_path / "logs" / "tickwise.log").read_text()
    assert "new token" in text
    assert TOKEN not in text


def test_the_log_file_and_its_directory_are_private_even_after_a_rollover(tmp_path: Path) -> None:
    configure_logging("INFO", stream=io.StringIO(), log_dir=tmp_path / "logs", max_bytes=200, backups=2)
    for i in range(20):
        logger.info("line {} {}", i, "x" * 40)
    configure_logging("INFO", stream=io.StringIO())
    files = sorted((tmp_path / "logs").iterdir())
    assert len(files) >= 2, "rolled over"
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert (tmp_path / "logs").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:pw@h:5/db", "postgresql://u:***@h:5/db"),
        ("postgresql://u@h:5/db", "postgresql://u@h:5/db"),
        (
            "postgresql://u@h/db?sslmode=require&password=pw",
            "postgresql://u@h/db?sslmode=require&password=***",
        ),
        ("http://h/x?token=abc&a=1", "http://h/x?token=***&a=1"),
        ("postgresql://u@h/db?passfile=/x/pgpass", "postgresql://u@h/db?passfile=/x/pgpass"),
    ],
)
def test_redact_url_hides_passwords_in_the_userinfo_and_the_query(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_hides_a_webhooks_path_which_is_its_secret() -> None:
    assert (
        redact_url("https://hooks.slack.com/services/T0/B0/xyzzy", hide_path=True)
        == "https://hooks.slack.com/***"
    )


def test_slack_and_discord_webhook_paths_are_masked_by_shape() -> None:
    masker = SecretMasker()
    line = "POST https://hooks.slack.com/services/T0/B0/abcdef failed; discord.com/api/webhooks/1/tok9"
    masked = masker(line)
    assert "abcdef" not in masked and "tok9" not in masked and "hooks.slack.com/services/" in masked


def test_secret_parts_splits_a_url_into_each_piece_that_is_secret_alone() -> None:
    parts = secret_parts("http://u:pa55word@h:1/services/T0/B0/webhooksecret12345?password=qpw")
    assert {"pa55word", "qpw", "/services/T0/B0/webhooksecret12345", "webhooksecret12345"} <= set(parts)
    assert secret_parts("not a url") == ["not a url"]
