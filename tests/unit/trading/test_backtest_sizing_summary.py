"""The backtest summary prints a meta-sized run beside its unsized twin."""

from __future__ import annotations

import pytest

from tickwise.cli.backtest import print_summary


def test_the_summary_shows_the_meta_sized_and_the_unsized_figures_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = {
        "run_id": "bt-sized", "model_version": "oos", "sample": "out-of-sample", "signals": 3, "bars": 10,
        "seconds": 0.1, "net_pnl": 143.0, "trades": 2, "unsized_run": "bt-unsized",
        "unsized": {"net_pnl": 334.44, "trades": 2},
    }  # fmt: skip
    print_summary(summary)
    out = capsys.readouterr().out
    assert "sized vs unsized (bt-unsized)" in out
    row = next(line for line in out.splitlines() if "net PnL" in line and "334.44" in line)
    assert "Rs 143.00" in row


def test_a_run_without_an_unsized_twin_prints_no_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary({"run_id": "bt-1", "model_version": "m1", "signals": 0, "bars": 0, "seconds": 0.0})
    assert "unsized" not in capsys.readouterr().out
