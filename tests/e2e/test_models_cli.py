"""`tickwise models ...` as a user runs it, against the real database: the first command through the
console script (a subprocess), the rest in-process (``cli_support.invoke``: the same commands, exit
codes and output without a process start-up importing MLflow each)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from cli_support import invoke
from tickwise.adapters.timescale import TimescaleModelRepository
from tickwise.adapters.timescale.pool import open_pool
from tickwise.ports.repositories import ModelRecord

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.db, pytest.mark.slow]  # a CLI start-up importing MLflow


def _tickwise(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickwise.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _env(tmp_path: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    env.update({"TICKWISE_ENV": "test", "TICKWISE_DATA_DIR": str(tmp_path), "DATABASE_URL": db_url})
    return env


async def _seed(db_url: str) -> None:
    async with open_pool(db_url, min_size=1, max_size=2) as pool:
        async with pool.acquire() as conn:
            await conn.execute("TRUNCATE model_events, signals, models")
        repo = TimescaleModelRepository(pool)
        for version in ("m1", "m2"):
            await repo.insert(
                ModelRecord(version, "fs", ("a",), status="challenger", metrics={"oos_auc": 0.55})
            )


def test_models_commands_promote_only_on_evidence_and_record_every_change(
    tmp_path: Path, db_url: str, clean_db: asyncpg.Pool
) -> None:
    asyncio.run(_seed(db_url))
    env = _env(tmp_path, db_url)
    first = _tickwise(["models", "promote", "m1", "--reason", "first model"], env)
    assert first.returncode == 0, first.stderr
    assert "m1: champion (no champion to compare with)" in first.stdout
    refused = invoke(["models", "promote", "m2", "--json"], env)
    assert refused.returncode == 1, refused.stderr
    body = json.loads(refused.stdout)
    assert body["promoted"] is False and "no out-of-sample bars" in body["reason"]
    forced = invoke(["models", "promote", "m2", "--force", "--reason", "ticket 7"], env)
    assert forced.returncode == 0 and "m2: champion" in forced.stdout
    listed = json.loads(invoke(["models", "list", "--json"], env).stdout)
    assert {m["model_version"]: m["status"] for m in listed} == {"m1": "retired", "m2": "champion"}
    back = invoke(["models", "rollback", "--reason", "bad week"], env)
    assert back.returncode == 0 and "champion is now m1" in back.stdout
    retired = invoke(["models", "retire", "m1"], env)
    assert retired.returncode == 1 and "is the champion" in retired.stderr
    shown = json.loads(invoke(["models", "show", "m2", "--json"], env).stdout)
    assert shown["status"] == "retired"
    assert [e["event"] for e in shown["events"]] == ["rolled_back", "promoted", "rejected"]
    assert shown["events"][1]["reason"].startswith("ticket 7: forced by operator")
    assert all(e["actor"].startswith("cli") for e in shown["events"])
    table = invoke(["models", "list"], env)
    assert table.returncode == 0 and "0.5500" in table.stdout and "m1" in table.stdout
    missing = invoke(["models", "show", "nope"], env)
    assert missing.returncode == 1 and "no model version 'nope'" in missing.stderr
