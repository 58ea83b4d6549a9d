"""`bench live` scores with a production-shape model and measures the minute path against its per-bar
baseline on the same replay."""

from __future__ import annotations

from tickwise.bench.live import PRODUCTION_ROUNDS, run_live_bench


def test_bench_live_reports_a_production_shape_model_and_both_engine_paths_agree() -> None:
    minute = run_live_bench(instruments=2, minutes=1)
    per_bar = run_live_bench(instruments=2, minutes=1, per_bar=True)
    assert PRODUCTION_ROUNDS == 200
    assert minute["model_trees_per_side"] == {"long": PRODUCTION_ROUNDS, "short": PRODUCTION_ROUNDS}
    assert minute["model_trees"] == 2 * PRODUCTION_ROUNDS
    assert minute["model_features"] == minute["calculator_features"]  # every feature, as training
    assert (minute["engine_path"], per_bar["engine_path"]) == ("minute", "per-bar")
    for key in ("bars", "signals", "signals_written", "ticks_accepted", "engine_errors"):
        assert minute[key] == per_bar[key], key
    assert minute["bars"] == 2
