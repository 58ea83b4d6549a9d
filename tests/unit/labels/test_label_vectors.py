"""Every row of both test-vector tables of labeling.md §7, through the kernel and through label_events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tickwise.core.labels import (
    BARRIER_NAMES,
    DROP_ATR_NAN,
    DROP_CENSORED,
    LabelSpec,
    label_events,
    triple_barrier,
)

# Tiny cases: also rerun with NUMBA_DISABLE_JIT=1 for the barrier kernel's coverage (make test).
pytestmark = pytest.mark.interpreted

Bars = dict[str, np.ndarray]


def flat_bars(n: int = 20) -> Bars:
    return {k: np.full(n, 100.0) for k in ("open", "high", "low", "close", "atr")} | {"atr": np.ones(n)}


def bar(k: int, x: float) -> Callable[[Bars], None]:
    def apply(b: Bars) -> None:
        for col in ("open", "high", "low", "close"):
            b[col][k] = x

    return apply


def cell(col: str, k: int, x: float) -> Callable[[Bars], None]:
    def apply(b: Bars) -> None:
        b[col][k] = x

    return apply


@dataclass(frozen=True)
class Case:
    name: str
    side: int
    changes: tuple[Callable[[Bars], None], ...]
    label: int | None  # None: dropped
    t1: int = -1
    exit: float = float("nan")
    barrier: str = ""
    ret: float = float("nan")
    ambiguous: bool = False
    t0: int = 0
    drop: int = 0


# fmt: off
LONG = [
    Case("H[3] = U", 1, (cell("high", 3, 102.0),), 1, 3, 102.0, "pt", 0.02),
    Case("L[2] = D", 1, (cell("low", 2, 98.5),), -1, 2, 98.5, "sl", -0.015),
    Case("bar 4 both", 1, (cell("high", 4, 102.5), cell("low", 4, 98.0)), -1, 4, 98.5, "both_sl_first",
         -0.015, ambiguous=True),
    Case("bar 2 gap over U", 1, (bar(2, 103.0),), 1, 2, 103.0, "pt_gap", 0.03),
    Case("bar 2 gap under D", 1, (bar(2, 97.0),), -1, 2, 97.0, "sl_gap", -0.03),
    Case("vertical up", 1, (cell("close", 10, 100.4), cell("high", 10, 100.5)), 1, 10, 100.4, "vertical",
         0.004),
    Case("no change", 1, (), 0, 10, 100.0, "vertical", 0.0),
    Case("ATR NaN", 1, (cell("atr", 0, float("nan")),), None, drop=DROP_ATR_NAN),
    Case("censored despite touch", 1, (cell("high", 17, 103.0),), None, t0=12, drop=DROP_CENSORED),
    Case("event bar ignored", 1, (cell("high", 0, 105.0),), 0, 10, 100.0, "vertical", 0.0),
    Case("between P0 and U", 1, (cell("high", 3, 101.6),), 0, 10, 100.0, "vertical", 0.0),
]

SHORT = [
    Case("L[3] = U", -1, (cell("low", 3, 98.0),), 1, 3, 98.0, "pt", 0.02),
    Case("H[2] = D", -1, (cell("high", 2, 101.5),), -1, 2, 101.5, "sl", -0.015),
    Case("bar 4 both", -1, (cell("low", 4, 97.5), cell("high", 4, 102.0)), -1, 4, 101.5, "both_sl_first",
         -0.015, ambiguous=True),
    Case("bar 2 gap under U", -1, (bar(2, 97.0),), 1, 2, 97.0, "pt_gap", 0.03),
    Case("bar 2 gap over D", -1, (bar(2, 103.0),), -1, 2, 103.0, "sl_gap", -0.03),
    Case("vertical down", -1, (cell("close", 10, 99.6), cell("low", 10, 99.5)), 1, 10, 99.6, "vertical",
         0.004),
    Case("no change (-0.0)", -1, (), 0, 10, 100.0, "vertical", 0.0),
    Case("ATR NaN", -1, (cell("atr", 0, float("nan")),), None, drop=DROP_ATR_NAN),
    Case("censored despite touch", -1, (cell("low", 17, 97.0),), None, t0=12, drop=DROP_CENSORED),
    Case("event bar ignored", -1, (cell("low", 0, 95.0),), 0, 10, 100.0, "vertical", 0.0),
    Case("PT before SL", -1, (cell("low", 3, 97.9), cell("high", 5, 101.6)), 1, 3, 98.0, "pt", 0.02),
]

# fmt: on

CASES = [pytest.param(c, id=f"long: {c.name}") for c in LONG] + [
    pytest.param(c, id=f"short: {c.name}") for c in SHORT
]


def build(case: Case) -> Bars:
    b = flat_bars()
    for change in case.changes:
        change(b)
    return b


def expected_label(case: Case, zero_mode: bool) -> int | None:
    if case.label is None:
        return None
    return 0 if zero_mode and case.barrier == "vertical" else case.label


@pytest.mark.parametrize("zero_mode", [False, True], ids=["sign", "zero"])
@pytest.mark.parametrize("case", CASES)
def test_kernel_reproduces_the_labeling_test_vector(case: Case, zero_mode: bool) -> None:
    b = build(case)
    res = triple_barrier(
        b["open"],
        b["high"],
        b["low"],
        b["close"],
        b["atr"],
        [case.t0],
        case.side,
        2.0,
        1.5,
        10,
        vertical_zero=zero_mode,
    )
    if case.label is None:
        assert res.barrier_code[0] == case.drop
        return
    assert res.label[0] == expected_label(case, zero_mode)
    assert res.t1_idx[0] == case.t1
    assert res.exit_price[0] == case.exit
    assert BARRIER_NAMES[res.barrier_code[0]] == case.barrier
    assert res.ret[0] == pytest.approx(case.ret, abs=1e-12)
    assert not np.signbit(res.ret[0]) or res.ret[0] != 0.0  # -0.0 is normalised to +0.0
    assert bool(res.ambiguous[0]) is case.ambiguous


@pytest.mark.parametrize("zero_mode", [False, True], ids=["sign", "zero"])
@pytest.mark.parametrize("case", CASES)
def test_label_events_reproduces_the_labeling_test_vector(case: Case, zero_mode: bool) -> None:
    b = build(case)
    times = pd.date_range("2025-01-06 09:15", periods=20, freq="1min", tz="Asia/Kolkata")
    candles = pd.DataFrame({"time": times} | {k: b[k] for k in ("open", "high", "low", "close")})
    spec = LabelSpec(warmup_bars=0, vertical_label="zero" if zero_mode else "sign")
    frame, counts = label_events(candles, spec, case.side, "1m", calendar=None, atr=b["atr"])
    row = frame[frame["time"] == times[case.t0]]
    if case.label is None:
        assert row.empty
        reason = "atr_nan" if case.drop == DROP_ATR_NAN else "censored"
        assert counts[reason] >= 1
        return
    assert len(row) == 1
    r = row.iloc[0]
    assert r["label"] == expected_label(case, zero_mode)
    assert r["t1"] == times[case.t1]
    assert r["t1_max"] == times[case.t0 + 10]
    assert r["exit_price"] == case.exit
    assert r["barrier"] == case.barrier
    assert r["ret"] == pytest.approx(case.ret, abs=1e-12)
    assert bool(r["ambiguous"]) is case.ambiguous
    assert r["side"] == case.side
