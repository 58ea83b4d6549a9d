"""`tickwise warm` / `tickwise bench compile`: every numba kernel compiled once, one specialisation each."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tickwise.bootstrap.warm import STEPS, compile_report, kernel_signatures, warm_kernels
from tickwise.cli.main import app

ENTRIES = (
    "features.kernels.fold",
    "features.kernels.step_derive",
    "features.kernels.step_many",
    "features.kernels._native_talib_1",
    "features.kernels._native_talib_2",
    "features.kernels._native_talib_3",
    "features.kernels._context_bar",
    "features.candles.candles",
    "features.derived.apply_derived",
    "features.ffd.ffd_batch",
    "labels.barrier._triple_barrier_kernel",
    "regime.kernels.observations",
    "regime.kernels.regime_steps",
    "isolation_pack._depths",
    "aggregation._roll",
    "tree_eval._predict",
)


def test_warming_runs_every_step_and_compiles_or_loads_every_kernel_entry() -> None:
    done = warm_kernels()
    assert [d.step for d in done] == [name for name, _ in STEPS]
    assert all(d.wall_s >= 0.0 and d.cpu_s >= 0.0 for d in done)
    signatures = kernel_signatures()
    assert tuple(signatures) == ENTRIES
    # In this process other tests may have called a kernel too; each entry exists at least once.
    assert all(n >= 1 for n in signatures.values()), signatures


def test_the_pipelines_paths_leave_exactly_one_specialisation_per_kernel_entry() -> None:
    # A fresh child process (the cache as it is: normally warm) runs the pipelines' paths only: a
    # second signature would mean some caller passes another dtype or layout and pays a whole
    # compile of that kernel again.
    report = compile_report(cold=False)
    assert report["cold"] is False
    assert report["signatures"] == dict.fromkeys(ENTRIES, 1)
    steps = report["steps"]
    assert isinstance(steps, list) and [s["step"] for s in steps] == [name for name, _ in STEPS]


@pytest.mark.slow
def test_a_cold_report_compiles_every_entry_in_an_empty_cache() -> None:
    report = compile_report(cold=True)
    compiled = {k: v for s in report["steps"] for k, v in s["compiled"].items()}  # type: ignore[attr-defined]
    for entry in (
        "features.kernels.fold",
        "features.kernels.step_derive",
        "labels.barrier._triple_barrier_kernel",
    ):
        assert compiled[entry] > 0.0, compiled
    assert report["signatures"] == dict.fromkeys(ENTRIES, 1)
    # the explicit-signature parts compile when kernels.py is imported, not at the first call
    assert report["import_kernels"]["cpu_s"] > 1.0  # type: ignore[index]


def test_the_warm_command_prints_the_signatures_as_its_last_json_line() -> None:
    result = CliRunner().invoke(app, ["warm"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert any("features (historical derive)" in line for line in lines[:-1])
    figures = json.loads(lines[-1])
    assert set(figures["signatures"]) == set(ENTRIES) and figures["cpu_s"] >= 0.0


def test_bench_compile_reports_the_warm_cache_without_compiling_the_feature_step() -> None:
    from tickwise.cli.bench import bench_app

    warm_kernels()  # the cache holds every kernel now
    result = CliRunner().invoke(bench_app, ["compile", "--warm", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    compiled = {k for s in figures["steps"] for k in s["compiled"]}
    assert "features.kernels.fold" not in compiled and "features.kernels.step_derive" not in compiled


def test_make_setup_warms_the_kernels_after_installing_and_before_the_stamp() -> None:
    from pathlib import Path

    makefile = (Path(__file__).parents[3] / "Makefile").read_text().splitlines()
    start = makefile.index(next(line for line in makefile if line.startswith("$(STAMP):")))
    recipe = []
    for line in makefile[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    assert (
        recipe.index("bash scripts/setup.sh")
        < recipe.index("$(TICKWISE) warm")
        < recipe.index("touch $(STAMP)")
    )
