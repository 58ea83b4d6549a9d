"""A minute's bank step split into contiguous row blocks on several threads (``FeatureBank.run_on``)
leaves the bank byte for byte as one block does: rows, refusals and every state array, over a long
random history with warm-up, refused bars, context closes, FFD filling up and (custom catalog) context
TA-Lib handles; small minutes stay on the calling thread; the compiled step keeps one signature."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from bank_support import CountingPool, bank_state
from numba import config as numba_config

from tickwise.core.features import bank as bank_module
from tickwise.core.features import kernels
from tickwise.core.features.bank import MIN_ROWS_PER_BLOCK, FeatureBank
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.features.layout import build_layout
from tickwise.core.features.spec import FeatureSpec
from tickwise.core.features.stream import epoch_minute
from tickwise.core.features.talib_catalog import HLC, ONE_MINUTE, TalibCall, context_calls

THREADS = (1, 2, 3)
NO_JIT: bool = numba_config.DISABLE_JIT  # type: ignore[attr-defined]

# One minute's input: instrument keys, their open instants, epoch minutes and (k, 6) values.
Minute = tuple[list[int], list[pd.Timestamp], np.ndarray, np.ndarray]


def _minutes(frames: dict[int, pd.DataFrame], live: int, seed: int) -> Iterator[Minute]:
    """Random minutes over the last ``live`` rows of each frame: a random subset of the instruments in
    a random order; some bars refused (no close, or the instrument's previous bar again)."""
    rng = np.random.default_rng(seed)
    pos = dict.fromkeys(frames, 0)
    cols = ["open", "high", "low", "close", "volume", "obi_5"]
    while any(p < live for p in pos.values()):
        keys = [k for k in rng.permutation(list(frames)).tolist() if pos[k] < live and rng.random() < 0.8]
        times, t_min, values = [], [], []
        for k in keys:
            frame = frames[k]
            at = len(frame) - live + pos[k]
            fault = rng.random()
            row = frame.iloc[at - 1 if fault >= 0.95 and pos[k] > 0 else at]
            value = row[cols].to_numpy(dtype=np.float64)
            if fault < 0.03:
                value[3] = np.nan
            elif fault < 0.95 or pos[k] == 0:
                pos[k] += 1
            times.append(row["time"])
            t_min.append(epoch_minute(row["time"]))
            values.append(value)
        yield keys, times, np.array(t_min, dtype=np.int64), np.array(values).reshape(len(keys), 6)


def _stepped_alike(
    calc: FeatureCalculator, frames: dict[int, pd.DataFrame], live: int, seed: int
) -> tuple[list[FeatureBank], list[CountingPool], int]:
    """One bank per entry of :data:`THREADS`, each with a stream per frame opened on all but its last
    ``live`` rows, stepped alike through :func:`_minutes` (:func:`_step_alike`); the banks, the pools
    of the threaded ones and the bars refused."""
    opened = {k: calc.open_stream(f.iloc[:-live].reset_index(drop=True)) for k, f in frames.items()}
    banks, pools = [], []
    for threads in THREADS:
        bank = FeatureBank(calc.layout, capacity=2)
        for key, stream in opened.items():
            bank.attach(key, stream.copy())
        if threads > 1:
            pools.append(CountingPool(threads - 1))
            bank.run_on(threads, pools[-1])
        banks.append(bank)
    try:
        refused = _step_alike(banks, _minutes(frames, live, seed))
    finally:
        for pool in pools:
            pool.shutdown()
    return banks, pools, refused


def _step_alike(banks: list[FeatureBank], minutes: Iterator[Minute]) -> int:
    """Step every bank through the same minutes; each must give the bytes and refusals of the first.
    Returns the bars refused."""
    refused = 0
    for keys, times, t_min, values in minutes:
        got = [bank.update_columns(keys, times, t_min, values) for bank in banks]
        rows, errors = got[0]
        refused += len(errors) - errors.count(None)
        for other_rows, other_errors in got[1:]:
            assert other_rows.tobytes() == rows.tobytes()
            assert [str(e) for e in other_errors] == [str(e) for e in errors]
    state = bank_state(banks[0])
    assert all(bank_state(bank) == state for bank in banks[1:])
    return refused


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a single row and up: a minute of a few dozen instruments splits into 2 or 3 blocks."""
    monkeypatch.setattr(bank_module, "MIN_ROWS_PER_BLOCK", 1)


@pytest.mark.usefixtures("small_blocks")
def test_a_long_random_history_stepped_in_two_or_three_blocks_leaves_the_bank_byte_equal_to_one(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    window = len(calculator.layout.ffd_w)
    live = 420  # more than a session: session ends, the partial last hour, many 5/15/60m closes
    # Histories too short for the lookbacks (warm-up mask), around FFD's window (it fills while
    # stepped), long ones, and some with missing minutes (context bars close late).
    lengths = [60, 300, window - 5, window + 2, 1_200, 2_000, 150, 900] * 4
    frames = {
        k: candle_factory(n + live, seed=300 + k, drop_every=(0, 0, 23, 0, 41)[k % 5])
        for k, n in enumerate(lengths)
    }
    banks, (two, three), refused = _stepped_alike(calculator, frames, live, seed=5)
    assert refused > 100
    # The minutes really were split, in 2 and in 3 blocks.
    assert len(two.blocks) > live / 2 and len(three.blocks) > live
    ffd = calculator.names.index(f"ffd_{round(calculator.spec.ffd_d * 100)}")
    assert np.isfinite(banks[0].col[2, ffd, 0]) and np.isfinite(banks[0].col[3, ffd, 0])


MIDPOINT = TalibCall("MIDPOINT", ("close",), (("midpoint_14", 0),), {"timeperiod": 14})


def _with_cci(tf: int) -> tuple[TalibCall, ...]:
    return (*context_calls(tf), TalibCall("CCI", HLC, ((f"cci_14_{tf}m", 0),), {"timeperiod": 14}))


@pytest.mark.usefixtures("small_blocks")
def test_a_catalog_with_context_talib_handles_stepped_in_blocks_leaves_the_bank_byte_equal(
    candle_factory: Callable[..., pd.DataFrame],
) -> None:
    # The context calls left to TA-Lib make the step defer the derived features of the rows that
    # closed a context bar (``n_fin``, written per block) to the handles' Python.
    spec = FeatureSpec()
    custom = FeatureCalculator(
        spec,
        layout=build_layout(spec, one_minute=(*ONE_MINUTE, MIDPOINT), context_catalog=_with_cci),
    )
    assert custom.layout.context_talib
    live = 130
    frames = {
        k: candle_factory(n + live, seed=500 + k, drop_every=(0, 17)[k % 2])
        for k, n in enumerate([50, 700, 1_400] * 3)
    }
    _, pools, refused = _stepped_alike(custom, frames, live, seed=9)
    assert refused > 10
    assert all(pool.blocks for pool in pools)


def test_a_minute_of_fewer_rows_than_two_blocks_stays_on_the_calling_thread(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    frame = candle_factory(700, seed=4)
    base = calculator.open_stream(frame.iloc[:-2].reset_index(drop=True))
    n = 2 * MIN_ROWS_PER_BLOCK
    bank = FeatureBank(calculator.layout, capacity=n)
    for key in range(n):
        bank.attach(key, base.copy())
    with CountingPool(1) as pool:
        bank.run_on(2, pool)
        for at, rows in ((-2, n - 1), (-1, n)):
            bar = frame.iloc[at]
            values = np.tile(
                bar[["open", "high", "low", "close", "volume", "obi_5"]].to_numpy(np.float64), (rows, 1)
            )
            t_min = np.full(rows, epoch_minute(bar["time"]), dtype=np.int64)
            _, errors = bank.update_rows(np.arange(rows), [bar["time"]] * rows, t_min, values)
            assert errors == [None] * rows
    # n - 1 rows: one block, no hand-off; n rows: the second half handed over.
    assert pool.blocks == [MIN_ROWS_PER_BLOCK]


def test_threads_need_a_pool_and_at_least_one(calculator: FeatureCalculator) -> None:
    bank = FeatureBank(calculator.layout)
    with pytest.raises(ValueError, match="need a pool"):
        bank.run_on(2, None)
    with pytest.raises(ValueError, match="at least 1"):
        bank.run_on(0, None)
    bank.run_on(1, None)
    assert bank.threads == 1


@pytest.mark.skipif(NO_JIT, reason="no compiled dispatcher without the JIT")
@pytest.mark.usefixtures("small_blocks")
def test_steps_in_blocks_compile_the_step_once(
    calculator: FeatureCalculator, candle_factory: Callable[..., pd.DataFrame]
) -> None:
    # A block's arrays are slices of the minute's: still C-contiguous, so no second specialisation.
    frames = {k: candle_factory(400, seed=k) for k in range(6)}
    _, pools, _ = _stepped_alike(calculator, frames, 3, seed=1)
    assert all(pool.blocks for pool in pools)
    dispatcher: Any = kernels.step_many
    assert len(dispatcher.signatures) == 1
