"""`bench features` reports the bank's update with the live engine's Bars and columns next to the per-bar reader."""

from __future__ import annotations

from typing import Any

from tickwise.bench.features import run_features_bench


def _small_bench(instruments: int) -> dict[str, Any]:
    """The bench on a few thousand candles and a few instruments (the threaded bank on 1,100): every
    figure, in seconds."""
    return run_features_bench(
        n_candles=4_000,
        instruments=instruments,
        live_history=1_500,
        live_bars=2,
        batch_repeats=1,
        instrument_bars=2_000,
        bank_threads_instruments=1_100,
    )


def test_the_features_bench_times_the_bank_with_live_bars_as_well_as_with_rows() -> None:
    out = _small_bench(instruments=4)
    assert out["bank_update_bars_cpu_ms_1000"] >= 0.0
    assert out["bank_update_cpu_ms_1000"] >= 0.0
    assert out["instruments"] == 4


def test_the_features_bench_times_minutes_that_close_every_context_timeframe() -> None:
    out = _small_bench(instruments=3)
    assert len(out["bank_update_ctx_close_cpu_ms_samples"]) == 2
    assert out["bank_update_ctx_close_cpu_ms_1000"] > 0.0
    assert out["bank_update_other_minutes_cpu_ms_1000"] > 0.0


def test_the_features_bench_times_the_live_engines_columns_and_checks_they_give_the_rows_path_s_rows() -> (
    None
):
    out = _small_bench(instruments=3)
    assert out["bank_update_columns_rows_equal"] is True
    assert 0.0 < out["bank_update_columns_cpu_ms_1000"] <= out["bank_update_columns_cpu_ms_p90_1000"]
    assert out["bank_update_columns_ctx_close_cpu_ms_1000"] > 0.0
    assert out["bank_update_columns_other_minutes_cpu_ms_1000"] > 0.0


def test_the_features_bench_times_the_bank_on_two_threads_in_wall_time_with_the_rows_of_one() -> None:
    out = _small_bench(instruments=3)
    assert out["bank_update_columns_wall_ms_1000"] > 0.0
    threaded = out["bank_update_columns_threads"]
    assert threaded["instruments"] == 1_100  # two blocks of 550 rows: the minutes really split
    assert threaded["rows_equal"] is True
    assert threaded["wall_ms_threads1"] > 0.0 and threaded["wall_ms_threads2"] > 0.0
    assert threaded["cpu_ms_threads1"] > 0.0 and threaded["cpu_ms_threads2"] > 0.0
