"""`tickwise bench checks`: a small run of the minute's candle checks against the per-bar path."""

from __future__ import annotations

import pytest

from tickwise.bench.checks import run_checks_bench, session_days, synthetic_session_candles


def test_bench_checks_reports_the_minute_cost_and_flags_equal_to_the_batch() -> None:
    figures = run_checks_bench(instruments=4, minutes=3, history_sessions=5, baseline_sample=1, verify=4)
    assert figures["flags_equal_batch"] is True and figures["verified_instruments"] == 4
    assert figures["instruments_with_model"] == 4  # five sessions before a Monday: every model fitted
    assert 0 < figures["minute_ms_p50"] <= figures["minute_ms_max"]
    assert figures["baseline_bar_ms_p50"] > 0 and figures["checker_mb"] > 0


def test_the_synthetic_sessions_hold_bad_prints_the_checks_can_find() -> None:
    frame = synthetic_session_candles(session_days(3), seed=1, bad_every=50)
    assert len(frame) == 4 * 375
    assert (frame["volume"] == 0).any()  # zero-volume prints
    with pytest.raises(ValueError, match="must be >= 1"):
        run_checks_bench(instruments=0)


def test_bench_checks_command_prints_one_json_line() -> None:
    import json

    from typer.testing import CliRunner

    from tickwise.cli.bench import bench_app

    result = CliRunner().invoke(bench_app, ["checks", "--instruments", "2", "--minutes", "1", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["instruments"] == 2 and figures["flags_equal_batch"] is True
