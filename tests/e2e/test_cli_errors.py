"""The CLI's error contract: one clear line, exit code 2 for usage/configuration, 1 at run time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TICKWISE = str(Path(sys.executable).with_name("tickwise"))


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE__")}
    full_env.pop("DATABASE_URL", None)
    full_env.update(env)
    return subprocess.run(
        [TICKWISE, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False
    )


def test_every_command_has_help() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("db", "simulate", "historical", "live", "bench"):
        assert command in result.stdout


def test_an_unknown_command_is_a_usage_error_with_exit_code_2() -> None:
    result = run("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_a_wrong_config_value_gives_one_line_and_exit_code_2() -> None:
    result = run("db", "url", "--no-start", TICKWISE__DATABASE__PORT="not-a-port")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "database.port" in lines[0] and "not-a-port" in lines[0]
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_url_gives_one_line_and_exit_code_1() -> None:
    result = run("db", "status", DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot connect" in lines[0] and "Traceback" not in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run("--debug", "db", "status", DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
