"""A live process leaves pyarrow out (bootstrap/live_imports.py): the console script decides it from the
command before the CLI's imports, the live command and the bench's replay then run without it, and
every other command still loads what pandas loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tickwise.bootstrap.shards import live_command
from tickwise.cli.entry import is_live_command

# Runs the console script's entry in a fresh interpreter with ``argv``, then reports whether pyarrow
# was loaded and the last JSON line the command printed.
ENTRY = """
import contextlib, io, json, sys
sys.argv = ["tickwise", *{argv!r}]
from tickwise.cli.entry import run
out = io.StringIO()
code = 0
with contextlib.redirect_stdout(out):
    try:
        run()
    except SystemExit as exc:
        code = exc.code or 0
lines = [line for line in out.getvalue().splitlines() if line.startswith("{{")]
print(json.dumps({{
    "code": code,
    "pandas": "pandas" in sys.modules,
    "pyarrow": sys.modules.get("pyarrow") is not None,
    "report": json.loads(lines[-1]) if lines else None,
}}))
"""


def _entry(*argv: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", ENTRY.format(argv=list(argv))],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(report, dict)
    return report


@pytest.mark.parametrize(
    ("argv", "live"),
    [
        (["live"], True),
        (["live", "--shard", "1/3", "--until", "15:30"], True),
        (["--env", "production", "--log-json", "live", "--wait"], True),
        (["--debug", "bench", "live", "--instruments", "1000"], True),
        (["--env", "live", "historical"], False),  # "live" is the option's value here
        (["bench", "features"], False),
        (["historical"], False),
        (["status", "live"], False),
        ([], False),
    ],
)
def test_the_commands_that_run_the_live_engine_are_read_after_any_top_level_option(
    argv: list[str], live: bool
) -> None:
    assert is_live_command(argv) is live


def test_the_live_command_loads_the_whole_cli_without_pyarrow() -> None:
    report = _entry("live", "--help")
    assert report["code"] == 0
    assert report["pandas"] is True and report["pyarrow"] is False


def test_another_command_still_loads_pyarrow_with_pandas_so_the_check_can_see_it() -> None:
    report = _entry("db", "--help")
    assert report["code"] == 0
    assert report["pandas"] is True and report["pyarrow"] is True


def test_the_bench_replay_through_the_console_script_runs_without_pyarrow_and_writes_every_signal() -> None:
    report = _entry("bench", "live", "--instruments", "3", "--minutes", "1", "--no-db", "--json")
    assert report["code"] == 0 and report["pyarrow"] is False
    figures = report["report"]
    assert isinstance(figures, dict)
    assert figures["pyarrow_imported"] is False
    assert figures["bars"] == figures["signals_written"] == 3 and figures["engine_errors"] == 0


def test_the_shard_supervisor_starts_each_shard_through_the_console_scripts_entry() -> None:
    assert live_command()[1:] == ["-m", "tickwise.cli.entry", "live"]
