"""`tickwise bench historical --json` end to end: its own throw-away cluster and simulator, one JSON line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cli_support import invoke

pytestmark = [pytest.mark.db, pytest.mark.slow]

SESSION_BARS = 375


@pytest.mark.parametrize("scheduler", ["inline", "processes"])
def test_bench_historical_prints_consistent_figures_and_removes_its_cluster(scheduler: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tickwise.cli.main",
            "bench",
            "historical",
            "--instruments",
            "2",
            "--sessions",
            "2",
            "--scheduler",
            scheduler,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["scheduler"] == scheduler
    assert figures["bench"] == "historical" and figures["instruments"] == 2 and figures["sessions"] == 2
    assert figures["backfill_candles"] == 2 * 2 * SESSION_BARS  # every bar of every session
    # one feature row per bar of each default signal timeframe (1m, 5m, 15m: trading.signal_timeframes)
    assert figures["feature_rows"] == 2 * 2 * (SESSION_BARS + SESSION_BARS // 5 + SESSION_BARS // 15)
    assert figures["label_rows"] > 0 and figures["rollup_rows"] > 0
    assert figures["peak_rss_mb"] > 50 and figures["wall_s"] >= figures["derive_s"] > 0
    # Each stage was reported on stderr as it ended, with its own peak RSS, and again in the result.
    reported = [json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"stage"')]
    stages = ["backfill", "checks", "derive"]  # the default --stages
    assert [s["stage"] for s in reported] == stages == [s["stage"] for s in figures["stages"]]
    assert figures["seed"] == "rest" and reported[0]["seed"] == "rest" and reported[0]["relogins"] == 0
    assert reported[0]["rows"] == figures["backfill_candles"] == reported[1]["rows"]  # every bar checked
    assert reported[2]["rows"] == figures["feature_rows"]
    assert all(0 < s["peak_rss_mb"] <= figures["peak_rss_mb"] for s in reported)
    assert figures["derive_chunks"] == 2  # one chunk of two sessions per instrument (chunk_sessions 40)
    # Its throw-away cluster is gone (other benches may run alongside: look for its own directory).
    assert figures["scratch_dir"].startswith("/tmp/tickwise-bench-hist-")
    assert not Path(figures["scratch_dir"]).exists()


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickwise.cli.main", "bench", "historical", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        check=False,
    )


def test_bench_historical_seeds_directly_and_trains_and_predicts_with_the_lean_model() -> None:
    done = _bench(
        "--instruments", "2", "--sessions", "12", "--seed", "direct",
        "--stages", "backfill,derive,train,predict",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["seed"] == "direct" and figures["backfill_candles"] == 2 * 12 * SESSION_BARS
    assert [s["stage"] for s in figures["stages"]] == ["backfill", "derive", "train", "predict"]
    by_stage = {s["stage"]: s for s in figures["stages"]}
    assert figures["model"]["model_training.trials"] == "2"  # the lean model is reported with the figures
    assert by_stage["train"]["rows"] > 0 and by_stage["train"]["model_version"]
    assert 0 < by_stage["predict"]["rows"] <= figures["feature_rows"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--stages", "derive"), "start with backfill"),
        (("--stages", "backfill,predict"), "predict needs train"),
        (("--stages", "backfill,bogus"), "unknown stage"),
        (("--seed", "ftp"), "--seed is one of rest, direct"),
    ],
)
def test_bench_historical_refuses_bad_stages_and_seeds_before_starting(
    args: tuple[str, ...], message: str
) -> None:
    # In-process: a usage error is the CLI's own check (the console script's start is tested above).
    done = invoke(["bench", "historical", "--instruments", "2", "--sessions", "2", *args, "--json"], {})
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split())


def _scratch_of(bench: psutil.Process) -> Path | None:
    """The bench's scratch directory: its database server (detached, so not a child: found by the port
    the bench is connected to) runs with ``-D <scratch>/db/pg``."""
    ports = {str(c.raddr.port) for c in bench.net_connections(kind="tcp") if c.raddr}
    for server in psutil.process_iter(["cmdline"]):
        argv = server.info["cmdline"] or []
        if "-D" in argv and "-p" in argv and argv[argv.index("-p") + 1] in ports:
            data = argv[argv.index("-D") + 1]
            if "tickwise-bench-hist-" in data:
                return Path(data).parents[1]
    return None


def test_a_terminated_bench_stops_its_cluster_and_removes_its_directory() -> None:
    argv = [sys.executable, "-m", "tickwise.cli.main", "bench", "historical", "--instruments", "2",
            "--sessions", "40", "--seed", "direct", "--stages", "backfill,derive", "--json"]  # fmt: skip
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    ) as bench:
        try:
            assert bench.stderr is not None
            scratch = None
            for line in bench.stderr:  # the backfill's line: the cluster is up, the derive starting
                scratch = scratch or _scratch_of(psutil.Process(bench.pid))
                if line.startswith('{"stage": "backfill"'):
                    break
            assert scratch is not None and scratch.exists()
            bench.send_signal(signal.SIGTERM)
            assert bench.wait(timeout=120) == 128 + signal.SIGTERM
        finally:
            if bench.poll() is None:
                bench.kill()
    assert not scratch.exists()
    assert not any(
        str(scratch) in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
    )
