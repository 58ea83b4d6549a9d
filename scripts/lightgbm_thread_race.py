"""Reproduce LightGBM's process-wide thread-count race, and show that ``LGBM_SetMaxThreads(1)`` ends it.

Two threads of one process: one trains (``num_threads`` 1, as tickwise's fits do) on a reused binned
Dataset, the other builds Datasets without ``num_threads`` (which resets LightGBM's process-wide count to
every core). Without the cap the process dies with a segmentation fault (exit code 139) within about a
minute on the 2-vCPU reference machine; with it, it prints the two threads' counts and exits 0.

    .venv/bin/python scripts/lightgbm_thread_race.py 50 nocap; echo $?
    .venv/bin/python scripts/lightgbm_thread_race.py 50 cap; echo $?

Measured figures: docs/scaling.md, "One LightGBM thread per process".
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time

import lightgbm as lgb
import numpy as np
from lightgbm import basic


def main(seconds: float, cap: bool) -> None:
    if cap:
        basic._safe_call(basic._LIB.LGBM_SetMaxThreads(ctypes.c_int(1)))  # type: ignore[attr-defined]  # as core.model
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 60))
    y = (x[:, 0] + rng.normal(size=20_000) > 0).astype(np.float64)
    params = {"objective": "binary", "max_bin": 63, "deterministic": True, "force_row_wise": True,
              "num_threads": 1, "verbosity": -1, "feature_pre_filter": False, "seed": 1}  # fmt: skip
    stop = time.monotonic() + seconds
    counts = [0, 0]

    def train() -> None:
        binned = lgb.Dataset(
            np.ascontiguousarray(x[:15_000]),
            params={"max_bin": 63, "verbosity": -1, "feature_pre_filter": False},
        )
        while time.monotonic() < stop:
            binned.set_label(y[:15_000])
            lgb.train(dict(params), binned, num_boost_round=5)
            counts[0] += 1

    def bin_without_a_thread_count() -> None:
        while time.monotonic() < stop:
            lgb.Dataset(
                np.ascontiguousarray(x[5_000:]), label=y[5_000:], params={"verbosity": -1}
            ).construct()
            counts[1] += 1

    threads = [threading.Thread(target=train), threading.Thread(target=bin_without_a_thread_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"no crash: {counts[0]} trainings and {counts[1]} Datasets built at once")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("cap", "nocap"):
        sys.exit("usage: lightgbm_thread_race.py SECONDS cap|nocap")
    main(float(sys.argv[1]), sys.argv[2] == "cap")
