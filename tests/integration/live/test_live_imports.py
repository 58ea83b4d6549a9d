"""A live process loads what live needs: training-only libraries stay out of its memory.

The live session is started for real (``run_live``) against a database that refuses connections, so
every import on the way to its first I/O happens; then the subprocess lists ``sys.modules``.
LightGBM (and the scikit-learn and scipy.stats its package imports) stay out too: the live process
scores a loaded model with the compiled trees, checked against the probe digest LightGBM recorded in the
bundle (core/text_booster.py); and so do Alembic, SQLAlchemy and psycopg2: the session migrates the
database in a short-lived child process (bootstrap/context.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

TRAINING_ONLY = (
    "optuna",
    "mlflow",
    "matplotlib",
    "hmmlearn",
    "dask",
    "distributed",
    "kiteconnect",
    "lightgbm",
    "sklearn",
    "scipy.stats",
    "sqlalchemy",
    "alembic",
    "psycopg2",
)

PROBE = r"""
import asyncio, json, sys
from tickwise.config import load_settings
from tickwise.bootstrap.live import LiveOptions, run_live

try:
    asyncio.run(run_live(load_settings(), LiveOptions(url="postgresql://tickwise_app@127.0.0.1:9/none", metrics=False)))
except Exception as exc:
    print(type(exc).__name__, file=sys.stderr)
print(json.dumps(sorted(sys.modules)))
"""


def test_starting_a_live_session_imports_no_training_only_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True
    )
    assert "StorageError" in done.stderr  # it got as far as opening the database
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "tickwise.pipelines.live.engine" in modules and "tickwise.core.tree_eval" in modules
    assert sorted(m for m in TRAINING_ONLY if m in modules) == []
