"""Separate worlds through the CLI, as the issue's done-when check runs them: on a fresh data directory
the simulator's historical run, then `KITE_API_KEY=x tickwise status` shows an empty, separate Kite world
while the simulator world keeps its data; a Kite command against a simulator database is refused."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cli_support import invoke
from tickwise.adapters.timescale.world_repository import TimescaleWorldRepository
from tickwise.domain.world import World

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tickwise(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickwise.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def fresh_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        TICKWISE_ENV="test",
        TICKWISE__SYSTEM__DATA_DIR=str(data_dir),
        TICKWISE__LIVE__SPILL_DIR=str(data_dir / "spill"),
        TICKWISE__BROKER__TOKEN_FILE=str(data_dir / "kite_token.json"),
        TICKWISE__TRADING__SYMBOLS="[INFY]",
        TICKWISE__TRADING__BACKFILL_DAYS="6",
        TICKWISE__MODEL_TRAINING__TRIALS="1",
        **extra,
    )
    return env


def status(env: dict[str, str], *, in_process: bool = False) -> dict[str, Any]:
    """``tickwise status --json``; ``in_process`` (a synchronous test's choice) spares the console
    script's start-up (``cli_support.invoke``)."""
    if in_process:
        result = invoke(["status", "--json"], env)
    else:
        result = tickwise("status", "--json", env=env, timeout=120)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.slow
def test_a_kite_key_after_the_simulator_demo_shows_an_empty_separate_world_and_the_simulator_intact() -> None:
    base = Path(tempfile.mkdtemp(prefix="tickwise-worlds-", dir="/tmp"))
    base.chmod(0o755)  # the cluster may run as an unprivileged user (see EmbeddedCluster)
    data = base / "data"
    sim = fresh_env(data, TICKWISE__DATABASE__PORT=str(free_port()))
    try:
        run = tickwise("historical", env=sim)
        assert run.returncode == 0, run.stderr[-2000:]

        kite = status({**sim, "KITE_API_KEY": "x"}, in_process=True)
        worlds = kite["worlds"]
        assert kite["world"] == "kite" and worlds["recorded"] is None
        assert worlds["data_dir"] == str(data / "kite-x")
        assert not kite["database"]["reachable"]  # its own cluster, never started by status
        assert kite["champion"] is None and kite["last_candle"] == {}
        assert {"name": "simulator", "data_dir": str(data), "has_database": True} in worlds["others"]

        simulator = status(sim, in_process=True)
        assert simulator["world"] == "simulator"
        assert simulator["worlds"]["recorded"]["name"] == "simulator"
        assert simulator["champion"] is not None and simulator["last_candle"]["historical"] is not None
        assert not (data / "kite-x" / "pg").exists()
    finally:
        tickwise("db", "down", env=sim, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


async def test_a_kite_command_on_a_simulator_database_exits_2_with_one_line_naming_the_fix(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await TimescaleWorldRepository(clean_db).claim(World("simulator", seed=42))
    env = fresh_env(tmp_path, DATABASE_URL=db_url, KITE_API_KEY="x", KITE_ACCESS_TOKEN="t0ken-secret")
    result = tickwise("predict", env=env, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "holds the simulator (seed 42), not a Kite account (api_key x)" in lines[0]
    assert "DATABASE_URL" in lines[0] and "t0ken-secret" not in result.stderr
    assert await TimescaleWorldRepository(clean_db).recorded() == World("simulator", seed=42)


async def test_status_reads_the_recorded_world_and_names_a_mismatch_as_an_action(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await TimescaleWorldRepository(clean_db).claim(World("simulator", seed=42))
    report = status(fresh_env(tmp_path, DATABASE_URL=db_url, KITE_API_KEY="x"))
    assert report["world"] == "simulator"  # what the database holds, not what the credentials say
    assert report["worlds"]["recorded"]["name"] == "simulator"
    assert report["worlds"]["configured"]["name"] == "kite-x"
    assert any("refusing to mix them" in action for action in report["actions"])
