"""A derive pool worker imports the derive and nothing of training: the module its task and start-up
live in (``bootstrap.derive_worker``) leaves LightGBM, scikit-learn, Dask, Optuna and MLflow out, which
each worker imported (about 1 CPU-s) when the task lived in ``bootstrap.compute``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

TRAINING_MODULES = (
    "lightgbm",
    "sklearn",
    "dask",
    "distributed",
    "optuna",
    "mlflow",
    "hmmlearn",
    "tickwise.bootstrap.compute",
    "tickwise.bootstrap.fit_pool",
    "tickwise.pipelines.historical.train",
    "tickwise.pipelines.historical.oos",
)


def _imported_by(module: str) -> list[str]:
    probe = (
        f"import json, sys; import {module}; "
        f"print(json.dumps([m for m in {list(TRAINING_MODULES)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    got: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def test_a_derive_worker_imports_no_training_module() -> None:
    assert _imported_by("tickwise.bootstrap.derive_worker") == []


def test_the_probe_sees_the_training_modules_bootstrap_compute_brings() -> None:
    # The check itself can fail: the composition root of the trainers imports them.
    assert {"lightgbm", "sklearn", "tickwise.bootstrap.fit_pool"} <= set(
        _imported_by("tickwise.bootstrap.compute")
    )
