"""`tickwise status [--json]` and `tickwise --version` through the console script, on the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from cli_support import invoke
from tickwise.pipelines.live.spill import encode_batch

TICKWISE = str(Path(sys.executable).with_name("tickwise"))


def status_env(data_dir: Path, **env: str) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    full_env.pop("DATABASE_URL", None)
    full_env.update(
        TICKWISE__SYSTEM__DATA_DIR=str(data_dir),
        TICKWISE__LIVE__SPILL_DIR=str(data_dir / "spill"),
        TICKWISE__BROKER__TOKEN_FILE=str(data_dir / "kite_token.json"),
    )
    full_env.update(env)
    return full_env


def run(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TICKWISE, *args],
        capture_output=True,
        text=True,
        env=status_env(data_dir, **env),
        timeout=120,
        check=False,
    )


def status_json(data_dir: Path, in_process: bool = False, **env: str) -> tuple[int, dict[str, Any]]:
    """The exit code and report of ``tickwise status --json``; ``in_process`` (a synchronous test's
    choice) spares the console script's start-up (``cli_support.invoke``)."""
    if in_process:
        result = invoke(["status", "--json"], status_env(data_dir, **env))
    else:
        result = run("status", "--json", data_dir=data_dir, **env)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return result.returncode, json.loads(lines[0])


async def seed(pool: asyncpg.Pool) -> datetime:
    bar = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO models (model_version, created_at, trained_to, feature_set, status) "
            "VALUES ('m-test', now() - interval '3 days', $1, 'fs', 'champion')",
            bar,
        )
        await conn.execute(
            "INSERT INTO candles (instrument_token, timeframe, time, open, high, low, close, volume, source) "
            "VALUES (408065, '1m', $1, 1, 1, 1, 1, 10, 'historical')",
            bar,
        )
        await conn.execute(
            "INSERT INTO signals (instrument_token, timeframe, time, available_at, model_version, direction, "
            "confidence, mode, feature_set) VALUES (408065, '1m', $1, $2, 'm-test', 1, 0.7, 'live', 'fs')",
            bar,
            bar + timedelta(minutes=1),
        )
    return bar


def test_version_prints_the_package_version() -> None:
    result = subprocess.run([TICKWISE, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("tickwise ") and result.stdout.split()[1][0].isdigit()


async def test_status_reports_a_migrated_database_its_champion_and_last_data_and_exits_0(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    bar = await seed(clean_db)
    (tmp_path / "live-status.json").write_text(
        json.dumps(
            {"at": time.time(), "feed_alive": True, "feed_state": "connected", "bars": 12, "signals": 3}
        )
    )
    code, report = status_json(tmp_path, DATABASE_URL=db_url)
    db = report["database"]
    assert db["reachable"] and db["migrated"] and db["revision"] == db["head"]
    assert db["edition"] in ("apache", "community") and db["timescaledb"]
    assert report["world"] == "simulator" and report["token"]["state"].startswith("not needed")
    assert report["champion"]["model_version"] == "m-test" and 2.9 < report["champion"]["age_days"] < 3.1
    assert datetime.fromisoformat(report["last_candle"]["historical"]) == bar
    assert report["last_candle"]["live"] is None
    assert datetime.fromisoformat(report["last_signal"]["live"]) == bar
    assert report["live_session"]["running"] and report["live_session"]["bars"] == 12
    assert report["spill"]["pending_files"] == 0
    assert report["disk"]["bytes"] > 0
    # The only possible finding on a healthy setup is the calendar's coverage of next year.
    assert all("holiday calendar" in a for a in report["actions"]), report["actions"]
    assert code == (1 if report["actions"] else 0)
    assert report["ok"] is (code == 0)


async def test_status_text_lists_what_needs_action_and_exits_1(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "spill-signals-000001.spill").write_bytes(encode_batch("signals", []))
    result = run(
        "status", data_dir=tmp_path, DATABASE_URL=db_url, KITE_API_KEY="k", KITE_API_SECRET="s3cr3t-value"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "world: kite" in out
    assert "no champion model: run `tickwise historical`" in out
    assert "1 write batch(es) wait in" in out
    assert "no Kite login: run `tickwise auth login`" in out
    assert "s3cr3t-value" not in out + result.stderr


def test_status_of_an_unreachable_database_says_how_to_fix_it_and_exits_1(tmp_path: Path) -> None:
    code, report = status_json(
        tmp_path, in_process=True, DATABASE_URL="postgresql://nobody:pw-secret@127.0.0.1:1/nothing"
    )
    assert code == 1 and not report["database"]["reachable"]
    assert "pw-secret" not in json.dumps(report)
    assert any("database not reachable" in a and "DATABASE_URL" in a for a in report["actions"])


def write_token(data_dir: Path, expires_at: datetime) -> None:
    login = expires_at - timedelta(hours=20)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "kite_token.json").write_text(
        json.dumps(
            {"api_key": "k", "access_token": "AcC3ssT0kenXYZ123", "user_id": "AB1234",
             "login_time": login.isoformat(), "expires_at": expires_at.isoformat(), "simulated": False}
        )
    )  # fmt: skip


def test_status_shows_a_valid_kite_token_with_its_expiry_and_never_the_token(tmp_path: Path) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    write_token(tmp_path, expires)
    _, report = status_json(
        tmp_path, in_process=True, DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing", KITE_API_KEY="k"
    )
    token = report["token"]
    assert report["world"] == "kite" and token["state"] == "valid"
    assert datetime.fromisoformat(token["expires_at"]) == expires
    assert isinstance(token["valid_at_next_open"], bool)
    assert not any("Kite" in a for a in report["actions"])
    assert "AcC3ssT0kenXYZ123" not in json.dumps(report)


def test_status_asks_for_a_login_when_the_kite_token_expired(tmp_path: Path) -> None:
    write_token(tmp_path, datetime.now(UTC) - timedelta(hours=1))
    code, report = status_json(
        tmp_path, in_process=True, DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing", KITE_API_KEY="k"
    )
    assert code == 1 and report["token"]["state"] == "expired"
    assert any("expired" in a and "tickwise auth login" in a for a in report["actions"])
