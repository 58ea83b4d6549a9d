"""Old vs new, side by side in one process: purged CV splits, regime columns of several fold models, the
regime HMM fit and the candle checks (issue 14, fourth session; docs/benchmarks.md).

The old modules are loaded from another checkout's ``src`` (``git archive <commit> src | tar -x -C DIR``)
under private names; every figure is CPU seconds of this process (``time.process_time``), and every pair
of outputs is checked equal (``np.array_equal`` / ``assert_frame_equal``) before its time is printed.

    PYTHONPATH=src .venv/bin/python scripts/bench_regime_cv_checks.py --old-src /tmp/old/src
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd


def _load(name: str, path: Path, replace: dict[str, str] | None = None) -> ModuleType:
    source = path.read_text()
    for old, new in (replace or {}).items():
        source = source.replace(old, new)
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    sys.modules[name] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def _cpu(run: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    out = None
    start = time.process_time()
    for _ in range(repeat):
        out = run()
    return (time.process_time() - start) / repeat, out


def _regime_rows(tokens: int, sessions: int) -> pd.DataFrame:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "regime"))
    from regime_data import regime_rows

    return regime_rows(tokens=tuple(range(1, tokens + 1)), sessions=sessions, seed=3)


def bench_cv(old: ModuleType, rows: int) -> dict[str, float]:
    from tickwise.core import cv

    rng = np.random.default_rng(1)
    t0 = pd.DatetimeIndex(np.sort(rng.integers(0, 60 * 86_400, size=rows)) * 1_000_000_000).tz_localize("UTC")
    t1 = t0 + pd.to_timedelta(rng.integers(1, 11, size=rows), unit="min")
    new_s, new = _cpu(lambda: list(cv.PurgedWalkForward(n_splits=4, embargo=10).split(t0, t1)), 3)
    old_s, got = _cpu(lambda: list(old.PurgedWalkForward(n_splits=4, embargo=10).split(t0, t1)), 3)
    assert all(np.array_equal(a, b) for x, y in zip(new, got, strict=True) for a, b in zip(x, y, strict=True))
    return {"events": rows, "old_split_cpu_s": round(old_s, 4), "new_split_cpu_s": round(new_s, 4)}


def bench_regime(old_layer: ModuleType, folds: int, tokens: int, sessions: int) -> dict[str, object]:
    from tickwise.core.regime import RegimeSpec, change_points
    from tickwise.core.regime import layer as new_layer

    rows = _regime_rows(tokens, sessions)
    spec = RegimeSpec(n_iter=30)
    times = pd.DatetimeIndex(rows["time"])
    cuts = [times.min() + (times.max() - times.min()) * (k + 2) / (folds + 2) for k in range(folds)]
    windows = [rows[times <= cut] for cut in cuts]
    fit_new, fit_old = 0.0, 0.0
    layers = []
    for window in windows:
        s, new = _cpu(lambda w=window: new_layer.fit_regime_layer(w, spec))
        fit_new += s
        s, got = _cpu(lambda w=window: old_layer.fit_regime_layer(w, spec))
        fit_old += s
        for name in ("startprob", "transmat", "means", "variances"):
            assert np.array_equal(getattr(new.hmm, name), getattr(got.hmm, name)), name
        layers.append((new, got))
    change_points.clear_cache()
    frame_new, frame_old = 0.0, 0.0
    for new, got in layers:
        s, a = _cpu(lambda n=new: n.frame(rows))
        frame_new += s
        old_one = old_layer.RegimeLayer.from_dict(got.to_dict())
        s, b = _cpu(lambda o=old_one: o.frame(rows))
        frame_old += s
        assert np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True)
    return {
        "bars": len(rows),
        "fold_models": folds,
        "old_hmm_fit_cpu_s": round(fit_old, 3),
        "new_hmm_fit_cpu_s": round(fit_new, 3),
        "old_frame_cpu_s": round(frame_old, 3),
        "new_frame_cpu_s": round(frame_new, 3),
    }


def _candles(instruments: int, sessions: int) -> list[pd.DataFrame]:
    from tickwise.adapters.kite.simulator.market import Market
    from tickwise.adapters.kite.simulator.universe import Universe
    from tickwise.domain.calendar import NSE
    from tickwise.domain.time import IST

    universe = Universe(instruments, NSE, today=date(2026, 11, 30))
    market = Market(universe, seed=11, bad_prints=0.002)
    days = NSE.trading_days(date(2026, 6, 1), date(2026, 11, 27))[-sessions:]
    frames = []
    for m in universe.equities[:instruments]:
        token = m.instrument.instrument_token
        start = datetime.combine(days[0], dtime(0), tzinfo=IST)
        end = datetime.combine(days[-1], dtime(23), tzinfo=IST)
        rows = market.candles(token, 1, start, end, datetime(2030, 1, 1, tzinfo=IST))
        frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])
        frame["time"] = pd.to_datetime(frame["time"]).dt.tz_convert("UTC")
        frame["instrument_token"] = token
        frames.append(frame)
    return frames


def bench_checks(old: ModuleType, instruments: int, sessions: int) -> dict[str, object]:
    from tickwise.core import candle_flags

    frames = _candles(instruments, sessions)
    candle_flags.flag_candles(frames[0])  # compiles (or loads) the scorer's kernel before timing
    old.flag_candles(frames[0])
    new_s, old_s, flags = 0.0, 0.0, 0
    for frame in frames:
        s, a = _cpu(lambda f=frame: candle_flags.flag_candles(f))
        new_s += s
        s, b = _cpu(lambda f=frame: old.flag_candles(f))
        old_s += s
        pd.testing.assert_frame_equal(a, b)
        flags += len(a)
    return {
        "bars": sum(len(f) for f in frames),
        "flags": flags,
        "old_cpu_s": round(old_s, 3),
        "new_cpu_s": round(new_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-src", type=Path, required=True, help="the src directory of the old checkout")
    parser.add_argument("--instruments", type=int, default=11)
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--folds", type=int, default=8)
    args = parser.parse_args()
    core = args.old_src / "tickwise" / "core"
    old_cv = _load("old_cv", core / "cv.py")
    _load("old_regime_kernels", core / "regime" / "kernels.py")
    old_layer = _load(
        "old_regime_layer",
        core / "regime" / "layer.py",
        {"from tickwise.core.regime.kernels import": "from old_regime_kernels import"},
    )
    old_flags = _load("old_candle_flags", core / "candle_flags.py")
    # Compile (or load) both sides' kernels before timing anything.
    warm = _regime_rows(1, 2)
    fitted = dataclasses.replace(old_layer.fit_regime_layer(warm, old_layer.RegimeSpec(n_iter=2)))
    fitted.frame(warm)
    from tickwise.core.regime import RegimeSpec, fit_regime_layer

    fit_regime_layer(warm, RegimeSpec(n_iter=2)).frame(warm)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    report = {
        "load_average_at_start": load,
        "cv": bench_cv(old_cv, args.instruments * args.sessions * 345),
        "regime": bench_regime(old_layer, args.folds, args.instruments, args.sessions),
        "candle_checks": bench_checks(old_flags, args.instruments, args.sessions),
        "load_average_at_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
