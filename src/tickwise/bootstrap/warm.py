"""Compile every numba kernel once, on tiny inputs, so that numba's on-disk cache holds them.

A fresh clone has no compiled kernels: the first feature computation, label run or live start pays
numba's compile (about 25 CPU-s for every kernel; 176 before issue 14's third session split the
feature step). ``tickwise warm`` (run by ``make setup``) calls each kernel entry through the public
code path the pipelines use, so the cached specialisation is exactly the one they load later: same
argument types and array layouts. With a warm cache the steps take under 2 CPU-s (the cache is
loaded, nothing is compiled), so it is safe to run again.

The cache lives in one directory per version of ``tickwise.core``'s sources
(``core.kernel_cache``: ``src/tickwise/__pycache__/numba-kernels/<digest>``, or under ``NUMBA_CACHE_DIR``). ``compile_report`` measures a cold compile by running this
module in a child process with ``NUMBA_CACHE_DIR`` set to an empty temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numba.core import event

__all__ = ["KernelWarm", "compile_report", "kernel_signatures", "warm_derive", "warm_kernels"]


@dataclass(frozen=True)
class KernelWarm:
    """One warm-up step: what it ran, how long it took and what numba compiled for it."""

    step: str
    wall_s: float
    cpu_s: float
    compiled: dict[str, float]  # entry dispatcher -> CPU seconds of its compile (empty: cache hit)


class _CompileTimes(event.Listener):
    """CPU seconds of each outermost numba compile (nested callee compiles count in their caller)."""

    def __init__(self) -> None:
        self.depth = 0
        self.start = 0.0
        self.times: dict[str, float] = {}

    def on_start(self, ev: event.Event) -> None:
        if self.depth == 0:
            self.start = time.process_time()
        self.depth += 1

    def on_end(self, ev: event.Event) -> None:
        self.depth -= 1
        if self.depth == 0:
            func = ev.data["dispatcher"].py_func
            name = f"{func.__module__.removeprefix('tickwise.core.')}.{func.__name__}"
            self.times[name] = self.times.get(name, 0.0) + time.process_time() - self.start


@contextmanager
def _recording() -> Iterator[_CompileTimes]:
    listener = _CompileTimes()
    event.register("numba:compile", listener)  # type: ignore[no-untyped-call]
    try:
        yield listener
    finally:
        event.unregister("numba:compile", listener)  # type: ignore[no-untyped-call]


def _candles(n: int) -> pd.DataFrame:
    from tickwise.bench.features import synthetic_candles

    return synthetic_candles(n)


def _features() -> None:
    from tickwise.core.features.calculator import FeatureCalculator
    from tickwise.core.features.chunked import ChunkedFeatures

    calc = FeatureCalculator()
    candles = _candles(400)
    chunked = ChunkedFeatures(calc)
    chunked.compute(candles, chunked.start())  # fold, ffd_batch, apply_derived (historical derive)


def _stream() -> None:
    from tickwise.core.features.bank import FeatureBank
    from tickwise.core.features.calculator import FeatureCalculator

    calc = FeatureCalculator()
    candles = _candles(400)
    stream = calc.open_stream(candles.iloc[:398])
    stream.update(candles.iloc[398])  # step_derive (one live stream)
    bank = FeatureBank(calc.layout)
    bank.attach(1, stream)
    bank.update_many([1], [candles.iloc[399]])  # step_many (the live engine's bank)


def _labels() -> None:
    from tickwise.core.labels.barrier import triple_barrier

    c = 100.0 + np.arange(30, dtype=np.float64)
    triple_barrier(c, c + 1.0, c - 1.0, c, np.ones(30), np.arange(5), 1, 1.0, 1.0, 3)


def _regime() -> None:
    from tickwise.core.regime.kernels import observations
    from tickwise.core.regime.layer import GaussianHmm, RegimeLayer

    inputs = np.column_stack([np.linspace(-0.001, 0.001, 20), np.full(20, 0.05)])
    observations(np.ascontiguousarray(inputs))
    hmm = GaussianHmm.from_dict(
        {
            "startprob": [0.5, 0.5],
            "transmat": [[0.9, 0.1], [0.1, 0.9]],
            "means": [[0.0, -3.0], [0.0, -2.0]],
            "variances": [[1.0, 1.0], [1.0, 1.0]],
        }
    )
    times = pd.date_range("2026-01-05 03:45", periods=20, freq="1min", tz="UTC")
    RegimeLayer(hmm=hmm).batch(times, inputs)


def _isolation() -> None:
    from sklearn.ensemble import IsolationForest

    from tickwise.core.isolation_pack import IsolationPack

    x = np.random.default_rng(0).normal(size=(32, 3))
    pack = IsolationPack()
    pack.add("k", IsolationForest(n_estimators=2, random_state=0).fit(x))
    pack.score(x[:2], ["k", "k"])


def _live_minute() -> None:
    from datetime import datetime

    import lightgbm as lgb

    from tickwise.core.aggregation import RollupBuilder
    from tickwise.core.tree_eval import CompiledForest, parse_model
    from tickwise.domain.candle import Candle
    from tickwise.domain.time import IST
    from tickwise.domain.timeframe import Timeframe

    t = datetime(2026, 1, 5, 9, 15, tzinfo=IST)
    RollupBuilder().on_candles([Candle(1, Timeframe.M1, t, 1.0, 1.0, 1.0, 1.0, 1)])  # live roll-ups
    x = np.random.default_rng(0).normal(size=(64, 2))
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lgb.Dataset(x, (x[:, 0] > 0).astype(np.int8)),
        num_boost_round=2,
    )
    model = parse_model(booster.model_to_string())
    CompiledForest([model, model]).predict(x[:2])  # the live predictor's compiled trees


STEPS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("features (historical derive)", _features),
    ("features (live stream and bank)", _stream),
    ("live minute (roll-ups, compiled trees)", _live_minute),
    ("labels (triple barrier)", _labels),
    ("regime (HMM filter, change points)", _regime),
    ("candle checks (isolation forests)", _isolation),
)


def warm_derive() -> None:
    """The kernels of the historical derive only (features, labels): a derive worker's start-up."""
    _features()
    _labels()


def warm_kernels() -> list[KernelWarm]:
    """Run every step once; compiled code goes to numba's cache (or is loaded from it)."""
    done = []
    for name, run in STEPS:
        with _recording() as rec:
            w0, c0 = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        done.append(
            KernelWarm(name, round(wall, 3), round(cpu, 3), {k: round(v, 3) for k, v in rec.times.items()})
        )
    return done


def kernel_signatures() -> dict[str, int]:
    """Specialisations compiled (or loaded) in this process per kernel entry: one each is the goal
    (an int64/float64 or C/A-layout mismatch between callers compiles a whole kernel again)."""
    from tickwise.core import aggregation, isolation_pack, tree_eval
    from tickwise.core.features import candles, derived, ffd, kernels
    from tickwise.core.labels import barrier
    from tickwise.core.regime import kernels as regime

    entries = {
        "features.kernels.fold": kernels.fold,
        "features.kernels.step_derive": kernels.step_derive,
        "features.kernels.step_many": kernels.step_many,
        "features.kernels._native_talib_1": kernels._native_talib_1,
        "features.kernels._native_talib_2": kernels._native_talib_2,
        "features.kernels._native_talib_3": kernels._native_talib_3,
        "features.kernels._context_bar": kernels._context_bar,
        "features.candles.candles": candles.candles,
        "features.derived.apply_derived": derived.apply_derived,
        "features.ffd.ffd_batch": ffd.ffd_batch,
        "labels.barrier._triple_barrier_kernel": barrier._triple_barrier_kernel,
        "regime.kernels.observations": regime.observations,
        "regime.kernels.regime_steps": regime.regime_steps,
        "isolation_pack._depths": isolation_pack._depths,
        "aggregation._roll": aggregation._roll,
        "tree_eval._predict": tree_eval._predict,
    }
    return {name: len(getattr(d, "signatures", ())) for name, d in entries.items()}


def compile_report(cold: bool = True) -> dict[str, object]:
    """Warm every kernel in a child process, with an empty cache when ``cold``: per step wall / CPU
    seconds, the compile CPU seconds per entry, and the specialisations per entry."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="tickwise-numba-") as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        proc = subprocess.run(
            [sys.executable, "-m", "tickwise.bootstrap.warm", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"warm-up child failed: {proc.stderr.strip()[-2000:]}")
    report: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["cold"] = cold
    return report


def _main() -> None:
    w0, c0 = time.perf_counter(), time.process_time()
    import tickwise.core.features.kernels  # noqa: F401  (explicit-signature parts compile at import)

    imported = {"wall_s": round(time.perf_counter() - w0, 3), "cpu_s": round(time.process_time() - c0, 3)}
    steps = warm_kernels()
    figures = {
        "import_kernels": imported,
        "steps": [asdict(s) for s in steps],
        "signatures": kernel_signatures(),
        "total_wall_s": round(time.perf_counter() - w0, 3),
        "total_cpu_s": round(time.process_time() - c0, 3),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    _main()
