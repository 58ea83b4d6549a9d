"""`tickwise bench live`: a tiny run of the real live path on the simulated market."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tickwise.bench.live import run_live_bench

KEYS = {
    "instruments",
    "minutes",
    "db",
    "model",
    "ticks",
    "bars",
    "signals",
    "latency_ms_p50",
    "latency_ms_p99",
    "latency_ms_max",
    "ready_ms_p50",
    "ready_ms_p99",
    "ticks_per_s",
    "decode_ticks_per_s",
    "rss_mb",
}


def test_bench_live_reports_positive_latencies_for_every_measured_bar() -> None:
    figures = run_live_bench(instruments=3, minutes=2)
    assert figures.keys() >= KEYS
    assert figures["db"] is False and figures["latency_to"] == "sink"
    assert "db_rows_committed" not in figures
    assert figures["engine_errors"] == 0
    # Every instrument trades in every simulated minute here: 3 x 2 bars, each with a signal written.
    assert figures["bars"] == 6
    assert figures["signals"] == figures["signals_written"] == 6
    assert figures["ticks_accepted"] == figures["ticks"] > 0
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p99"] <= figures["latency_ms_max"]
    # A signal is ready (engine) before it is written (sink), from the same close instant.
    assert 0 < figures["ready_ms_p50"] <= figures["latency_ms_p50"]
    assert figures["ready_ms_p99"] <= figures["latency_ms_p99"]
    # The same path in the replay thread's CPU time, one value per signal written.
    assert 0 < figures["latency_cpu_ms_p50"] <= figures["latency_cpu_ms_p99"]
    assert figures["ticks_per_s"] > 0 and figures["decode_ticks_per_s"] > figures["ticks_per_s"]
    assert figures["rss_mb"] > 0
    # The memory held at the end, split by checkpoint, is the engine's process's: the market was built
    # in a child, so no checkpoint of it and no frames held here.
    assert figures["rss_process"] == "engine"
    parts = figures["rss_breakdown_mb"]
    assert list(parts) == ["imports", "model_loaded", "engine_opened", "replay"]
    assert abs(sum(parts.values()) - figures["rss_held_mb"]) < 1.0
    assert parts["imports"] > 0
    assert figures["bench_frames_mb"] == 0.0
    assert figures["rss_held_mb_per_1000"] == round(figures["rss_held_mb"] * 1000.0 / 3, 1)
    # ... and each checkpoint split into the process's own pages and the libraries' file pages.
    split = figures["rss_parts_mb"]
    assert list(split) == list(parts)
    for mark in split.values():
        assert abs(mark["rss"] - (mark["anon"] + mark["file"] + mark["shmem"])) <= 0.2
    assert figures["rss_anon_held_mb"] == split["replay"]["anon"] > 0
    assert figures["rss_file_held_mb"] == split["replay"]["file"] > 0
    assert figures["rss_anon_held_mb_per_1000"] == round(figures["rss_anon_held_mb"] * 1000.0 / 3, 1)
    growth = figures["rss_parts_growth_mb"]
    assert growth["imports"] == split["imports"]
    assert growth["replay"]["anon"] == round(split["replay"]["anon"] - split["engine_opened"]["anon"], 1)
    assert figures["rss_end_parts_mb"]["rss"] > 0
    # Each measured minute's parts on the engine thread, and no kernel signature compiled or loaded
    # inside a minute: every kernel the path uses was ready when the engine opened.
    minutes = figures["minute_parts"]
    assert [m["minute"] for m in minutes] == ["09:15", "09:16"]
    for minute in minutes:
        # (no "close" part here: each bar is closed by its instrument's next tick, not by a feed close)
        assert {"bank", "signal_step", "predict", "emit", "commit", "rest"} <= minute["parts_cpu_ms"].keys()
        assert minute["parts_cpu_ms"]["signal_step"] >= minute["parts_cpu_ms"]["predict"] > 0.0
        assert minute["cpu_ms"] >= minute["parts_cpu_ms"]["bank"] > 0.0
        assert minute["latency_thread_ms"] > 0.0
        assert minute["compiles"] == [] and minute["new_signatures"] == 0
        assert minute["majflt"] == 0
    # A minute's latency is its slowest signal's: the run's median is at most the slowest minute's.
    assert max(m["latency_thread_ms"] for m in minutes) >= figures["latency_thread_cpu_ms_p50"] - 0.01


def test_bench_live_with_the_market_in_its_process_replays_the_same_bars_and_labels_its_rss() -> None:
    engine_only = run_live_bench(instruments=2, minutes=1)
    from tickwise.cli.bench import bench_app

    # The old layout through the command line, as the benchmark tables were measured.
    result = CliRunner().invoke(
        bench_app,
        ["live", "--instruments", "2", "--minutes", "1", "--no-db", "--json", "--market-in-process"],
    )
    assert result.exit_code == 0, result.output
    with_market = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("ticks", "frames", "bars", "signals", "signals_written", "engine_errors"):
        assert with_market[key] == engine_only[key], key
    # The fifth session's layout: its RSS includes the market (a checkpoint of its own) and the frames.
    assert with_market["rss_process"] == "engine+market"
    parts = with_market["rss_breakdown_mb"]
    assert list(parts) == ["imports", "bench_market_and_frames", "model_loaded", "engine_opened", "replay"]
    assert 0 < with_market["bench_frames_mb"] < with_market["rss_held_mb"]
    assert (
        abs(with_market["rss_held_live_mb"] - (with_market["rss_held_mb"] - with_market["bench_frames_mb"]))
        <= 0.05
    )


def test_the_bench_replay_process_imports_nothing_a_live_shard_does_not() -> None:
    """The replay process imports a shard's modules and the bench's own, never the simulated market."""
    import subprocess
    import sys

    from test_live_import_floor import SHARD_START

    child = (
        "import importlib, json, sys\n"
        f"for m in {SHARD_START!r}: importlib.import_module(m)\n"
        "before = set(sys.modules)\n"
        "import tickwise.bench.live\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [
        "tickwise.bench",
        "tickwise.bench.live",
        "tickwise.bench.live_market",
        "tickwise.bench.minute_parts",  # the standard library and numba, which a shard has imported
        "tickwise.bench.resident",  # reads /proc; standard library only
    ]


def test_bench_live_command_prints_one_json_line() -> None:
    from tickwise.cli.bench import bench_app

    result = CliRunner().invoke(
        bench_app, ["live", "--instruments", "2", "--minutes", "1", "--no-db", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()  # log lines (per bar batch) go to stderr
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["instruments"] == 2 and figures["minutes"] == 1 and figures["db"] is False
    assert figures["bars"] == 2 and figures["latency_ms_p99"] > 0


def test_bench_live_db_mode_needs_a_database_url() -> None:
    import pytest

    with pytest.raises(ValueError, match="database url"):
        run_live_bench(instruments=1, minutes=1, db=True)
