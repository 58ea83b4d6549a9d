"""A live process never imports the training stack: a fresh interpreter imports what a shard imports at
start-up, loads a model bundle and scores it, and none of the heavy libraries is in ``sys.modules``.

Each of them costs every live process resident memory it never uses (docs/benchmarks.md, "Live memory
per 1,000 instruments"): LightGBM imports scikit-learn and scipy.stats (about 60 MB), SQLAlchemy and
Alembic are for migrations, matplotlib for reports, Optuna and MLflow for training, Dask for the
historical mode's cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tickwise.core.model import ModelArtifact, fit_booster, lgb_params

HEAVY = (
    "lightgbm",
    "sklearn",
    "scipy.stats",
    "sqlalchemy",
    "alembic",
    "matplotlib",
    "optuna",
    "mlflow",
    "dask",
    "distributed",
)

# What `tickwise live --shard I/N` imports before its session runs: the CLI, the live use case and the
# modules its run_live imports (database context, broker, timeframes, metrics, model loading, universe),
# the shard supervisor, and the live pipeline itself.
SHARD_START = (
    "tickwise.cli.entry",
    "tickwise.bootstrap.live_imports",  # the entry leaves pyarrow out with it before the CLI loads
    "tickwise.cli.main",
    "tickwise.cli.live",
    "tickwise.bootstrap.live",
    "tickwise.bootstrap.context",
    "tickwise.bootstrap.broker",
    "tickwise.bootstrap.timeframes",
    "tickwise.bootstrap.shards",
    "tickwise.observability.metrics",
    "tickwise.observability.hooks",
    "tickwise.pipelines.models",
    "tickwise.pipelines.universe",
    "tickwise.pipelines.live.engine",
    "tickwise.pipelines.live.session",
    "tickwise.pipelines.live.consumer",
    "tickwise.pipelines.live.sinks",
    "tickwise.pipelines.live.writer",
    "tickwise.pipelines.live.timeframes",
    "tickwise.adapters.timescale",
    "tickwise.adapters.timescale.repair_window_repository",
    "tickwise.adapters.timescale.tick_repository",
    "tickwise.adapters.timescale.world_repository",
    "tickwise.adapters.timescale.candle_flag_repository",
    "tickwise.adapters.kite.ticker",
    "tickwise.adapters.kite.rest",
)

CHILD = """
import importlib, json, sys
from pathlib import Path
import numpy as np
for name in {modules!r}:
    importlib.import_module(name)
from tickwise.core.model import ModelArtifact
from tickwise.core.predictor import Predictor
bundle = Path({bundle!r})
files = {{p.name: p.read_bytes() for p in bundle.iterdir()}}
predictor = Predictor(ModelArtifact.from_files(files))
probs = predictor.predict_matrix(np.load(bundle.parent / "rows.npy"))
np.save(bundle.parent / "probs.npy", probs)
heavy = {heavy!r}
print(json.dumps({{
    "compiled": predictor.compiled,
    "loaded": sorted(h for h in heavy if h in sys.modules),
}}))
"""


def _bundle(tmp_path: Path) -> tuple[ModelArtifact, Path]:
    names = [f"f{i}" for i in range(5)]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, len(names)))
    y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(np.int8)
    boosters = {
        side: fit_booster(
            x, (y if side == 1 else 1 - y), params=lgb_params({}, 3), num_boost_round=15, feature_names=names
        )
        for side in (1, -1)
    }
    artifact = ModelArtifact("m-floor", boosters, tuple(names), "fs-floor")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name, data in artifact.to_files().items():
        (bundle / name).write_bytes(data)
    rows = rng.normal(size=(64, len(names)))
    rows[::7, 1] = np.nan
    np.save(tmp_path / "rows.npy", rows)
    return artifact, bundle


def test_a_live_shard_imports_and_scores_a_loaded_model_without_the_training_stack(tmp_path: Path) -> None:
    artifact, bundle = _bundle(tmp_path)
    code = CHILD.format(modules=SHARD_START, bundle=str(bundle), heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], f"a live process imported {report['loaded']}"
    assert report["compiled"]
    # ... and its probabilities are LightGBM's own, bit for bit.
    rows = np.load(tmp_path / "rows.npy")
    probs = np.load(tmp_path / "probs.npy")
    for j, side in enumerate((1, -1)):
        assert np.array_equal(probs[:, j], artifact.boosters[side].predict(rows, num_threads=1))


def test_the_import_check_sees_a_heavy_import_when_one_happens(tmp_path: Path) -> None:
    """The child's check is not vacuous: importing the historical mode does load the training stack."""
    _, bundle = _bundle(tmp_path)
    code = CHILD.format(modules=("tickwise.bootstrap.historical",), bundle=str(bundle), heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "lightgbm" in json.loads(out.stdout.strip().splitlines()[-1])["loaded"]


def test_the_bench_replay_process_imports_no_training_library(tmp_path: Path) -> None:
    """`tickwise bench live` replays in its own process, which must weigh what a shard weighs: its model
    is trained in a child and loaded as a bundle is. Only its simulated market needs scipy.signal (which
    imports scipy.stats); a live shard's simulator is another process."""
    _, bundle = _bundle(tmp_path)
    modules = ("tickwise.cli.main", "tickwise.cli.bench", "tickwise.bench.live")
    code = CHILD.format(modules=modules, bundle=str(bundle), heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert set(json.loads(out.stdout.strip().splitlines()[-1])["loaded"]) <= {"scipy.stats"}


def test_the_bench_models_round_count_is_the_training_default() -> None:
    from tickwise.bench.live import PRODUCTION_ROUNDS
    from tickwise.core.fitting import TrainConfig

    assert TrainConfig().num_boost_round == PRODUCTION_ROUNDS


PREPARE = """
import json, sys
import numpy as np, pandas as pd
from datetime import date
from tickwise.bootstrap.context import fit_in_child
from tickwise.core.candle_flags import CandleCheckConfig
from tickwise.pipelines.live.candle_checks import LiveCandleChecker
data = np.load({path!r})
frame = pd.DataFrame({{k: data[k] for k in ("open", "high", "low", "close", "volume")}})
frame.insert(0, "time", pd.to_datetime(data["time"], utc=True))
checker = LiveCandleChecker(CandleCheckConfig(), fit_many=fit_in_child)
checker.seed(1, frame)
print(json.dumps({{"fitted": checker.prepare(date.fromisoformat({day!r})), "sklearn": "sklearn" in sys.modules}}))
"""


def test_a_live_session_fits_its_anomaly_models_without_importing_scikit_learn(tmp_path: Path) -> None:
    """With data_quality on (the default) the session fits the week's IsolationForests before it
    starts: in a spawned child, so scikit-learn stays out of the live process."""
    from datetime import UTC, date, datetime, time

    from tickwise.domain.calendar import NSE

    days = NSE.trading_days(date(2026, 10, 5), date(2026, 10, 16))
    rng = np.random.default_rng(4)
    opens = [datetime.combine(d, time(3, 45), tzinfo=UTC) for d in days[:-1]]
    minute_ns = 60_000_000_000
    times = np.array([int(o.timestamp()) * 10**9 + m * minute_ns for o in opens for m in range(375)])
    close = 100 + np.cumsum(rng.normal(0, 0.05, len(times)))
    path = tmp_path / "history.npz"
    np.savez(
        path,
        time=times,
        open=close,
        high=close + 0.1,
        low=close - 0.1,
        close=close,
        volume=rng.integers(100, 1000, len(times)).astype(np.float64),
    )
    code = PREPARE.format(path=str(path), day=days[-1].isoformat())
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"fitted": 1, "sklearn": False}
