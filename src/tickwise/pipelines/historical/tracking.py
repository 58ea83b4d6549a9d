"""What a training run tells the experiment tracker (MLflow): parameters, metrics, tags, documents.

Pure payload building, kept apart from the training orchestration in ``train.py``; the tracker itself
is a port (``ports.experiment_tracker``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tickwise.core.fitting import FoldResult, TrainConfig
from tickwise.core.model import LgbParams
from tickwise.ports.experiment_tracker import ExperimentTracker


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """One trained model, as the tracker records it."""

    version: str
    params: LgbParams
    config: TrainConfig
    rows: int
    features: Sequence[str]
    feature_set: str
    trained_from: datetime
    trained_to: datetime
    metrics: Mapping[str, float | None]
    folds: Sequence[FoldResult]
    label_spec: Mapping[str, object]
    info: Mapping[str, object]


def run_params(run: TrainingRun) -> dict[str, object]:
    return {
        **run.params,
        "trials": run.config.trials,
        "folds": run.config.folds,
        "embargo_bars": run.config.embargo_bars,
        "rows": run.rows,
        "features": len(run.features),
        "feature_set": run.feature_set,
        "trained_from": run.trained_from.isoformat(),
        "trained_to": run.trained_to.isoformat(),
    }


def run_metrics(run: TrainingRun) -> dict[str, float]:
    """The numeric metrics, plus every fold's metrics as ``fold<k>_<name>``."""
    return {
        **{k: v for k, v in run.metrics.items() if isinstance(v, (int, float))},
        **{f"fold{f.fold}_{k}": v for f in run.folds for k, v in f.metrics.items()},
    }


def run_documents(run: TrainingRun) -> dict[str, object]:
    return {
        "feature_list.json": {"feature_set": run.feature_set, "names": list(run.features)},
        "label_spec.json": dict(run.label_spec),
        "folds.json": [f.metrics for f in run.folds],
        "training_info.json": dict(run.info),
    }


async def track(tracker: ExperimentTracker, run: TrainingRun, files: Mapping[str, bytes]) -> str:
    """Record ``run`` with the model bundle ``files``; returns the tracker's run id."""
    return await tracker.log_run(
        run_name=run.version,
        params=run_params(run),
        metrics=run_metrics(run),
        tags={"model_version": run.version, "feature_set": run.feature_set, "mode": "historical"},
        files=files,
        documents=run_documents(run),
    )
