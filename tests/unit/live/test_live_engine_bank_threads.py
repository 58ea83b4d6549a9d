"""The live engine steps its feature bank on its predictor's scoring threads (the predictor's own pool),
and a minute stepped in blocks gives the signals and rows of a minute stepped on one thread."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import pytest
from live_models import frame_bars, small_step

from tickwise.bench.features import synthetic_candles
from tickwise.core import tree_eval
from tickwise.core.candles import ClosedBars
from tickwise.core.features import bank as bank_module
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.predictor import Predictor
from tickwise.core.signals import SignalGenerator
from tickwise.pipelines.live.engine import FeatureRow, LiveEngine, PendingSignal, SignalStep

HIST, LIVE = 600, 20
TOKENS = tuple(range(301, 313))


@pytest.fixture(scope="module")
def calc() -> FeatureCalculator:
    return FeatureCalculator()


def _step(calc: FeatureCalculator, threads: int) -> SignalStep:
    """:func:`small_step`'s model, scored on ``threads`` threads (the same bits for any count)."""
    artifact = small_step(calc, seed=17, rounds=30, version="m-threads").predictor.artifact
    return SignalStep(Predictor(artifact, threads=threads), SignalGenerator(threshold=0.3), calc.names)


def _row(table: str, row: object) -> tuple[object, ...]:
    if isinstance(row, FeatureRow):
        return (table, row.instrument_token, row.time, row.values.tobytes())
    if isinstance(row, PendingSignal):
        return (table, row.signal, row.closed_at)
    return (table, repr(row))


def _collect(out: list[tuple[object, ...]], table: str, rows: Sequence[object]) -> None:
    out.extend(_row(table, r) for r in rows)


def test_an_engine_steps_its_bank_on_its_predictors_threads_and_pool(calc: FeatureCalculator) -> None:
    two = LiveEngine(calc, _step(calc, 2), lambda table, rows: None)
    assert two.bank.threads == 2
    assert two.bank._pool is tree_eval.scoring_pool(1)  # the predictor's pool, not a second one
    assert LiveEngine(calc, _step(calc, 1), lambda table, rows: None).bank.threads == 1
    plain = LiveEngine(calc, lambda token, t, row: None, lambda table, rows: None)
    assert plain.bank.threads == 1


def test_minutes_stepped_on_two_threads_give_the_rows_of_one_thread(
    calc: FeatureCalculator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bank_module, "MIN_ROWS_PER_BLOCK", 1)  # a dozen instruments split in two
    frames = {t: synthetic_candles(HIST + LIVE, seed=t) for t in TOKENS}
    outs: list[list[tuple[object, ...]]] = []
    signals: list[list[Any]] = []
    for threads in (1, 2):
        out: list[tuple[object, ...]] = []
        engine = LiveEngine(
            calc,
            _step(calc, threads),
            partial(_collect, out),
            wall=lambda: 0.0,
        )
        assert engine.bank.threads == threads
        for t, f in frames.items():
            engine.open_instrument(t, f.iloc[:HIST])
        got: list[Any] = []
        for m in range(LIVE):
            bars = [frame_bars(t, f.iloc[HIST + m : HIST + m + 1])[0] for t, f in frames.items()]
            got.extend(engine.process_many(ClosedBars.of(bars), 0.0))
        outs.append(out)
        signals.append(got)
    assert signals[0] == signals[1]
    assert outs[0] == outs[1]
    assert sum(s is not None for s in signals[0]) > 0  # real signals compared, not only Nones
