"""Wall time and peak RSS of loading one timeframe's training set from an existing data directory.

    PYTHONPATH=<checkout>/src python scripts/measure_training_load.py [timeframe] [spill]

with the environment of the run whose database it reads (``TICKWISE__SYSTEM__DATA_DIR`` ...). It runs
whichever loader the checkout on ``PYTHONPATH`` has: the per-instrument array load
(``load_timeframe`` + ``TrainingData.training_set``, issue 15) or the pandas load and merge before it
(``load_training_data`` + ``build_training_set``), so the same command measures both sides of a change.
``spill``: the array load keeps each instrument's matrix on disk, as ``tickwise historical`` does.
Prints one JSON line: seconds, rows, features, peak RSS of this process and its RSS before the load.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

import psutil


async def _measure(timeframe_name: str, spill: bool) -> dict[str, object]:
    from tickwise.bootstrap.historical import open_historical
    from tickwise.config import load_settings
    from tickwise.core.timeframe_features import calculator_for
    from tickwise.domain.timeframe import Timeframe
    from tickwise.pipelines.historical import train

    timeframe = Timeframe(timeframe_name)
    calculator = calculator_for(timeframe)
    async with open_historical(load_settings()) as ctx:
        before = psutil.Process().memory_info().rss
        began = time.perf_counter()
        if hasattr(train, "load_timeframe"):
            from tickwise.bootstrap.compute import training_loads

            async with training_loads(ctx.settings) as loads:
                data = (
                    await loads.get(ctx, calculator, timeframe, None, None, keep=False)
                    if spill
                    else (await train.load_timeframe(ctx, calculator, timeframe, None, None))
                )
                ts = data.training_set(data.last_candle.to_pydatetime())
            loader = "per-instrument arrays" + (", spilled to disk" if spill else "")
        else:  # the checkout before issue 15's load
            from tickwise.core.dataset import build_training_set
            from tickwise.core.training import candidate_features

            features, labels, closes = await train.load_training_data(ctx, calculator, timeframe, None, None)
            last = max(s.index.max() for s in closes.values())
            names = candidate_features(features, [n for n in calculator.names if n in features.columns])
            ts = build_training_set(
                features,
                labels,
                feature_set=calculator.feature_set,
                timeframe=str(timeframe),
                end=last.to_pydatetime(),
                feature_names=names,
                closes=closes,
            )
            loader = "pandas load and merge"
        seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "loader": loader,
        "timeframe": timeframe_name,
        "seconds": round(seconds, 2),
        "rows": len(ts),
        "features": len(ts.feature_names),
        "rss_before_mb": round(before / 2**20, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "bytes_per_row_above_start": round((peak - before) / max(len(ts), 1)),
    }


if __name__ == "__main__":
    print(
        json.dumps(asyncio.run(_measure(sys.argv[1] if len(sys.argv) > 1 else "1m", "spill" in sys.argv[2:])))
    )
