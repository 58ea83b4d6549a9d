"""MLflow experiment tracking: one run per training, with params, metrics, the model bundle and its
feature list.

Default store: an MLflow *file store* under ``<data_dir>/mlruns`` (no server needed; browse it with
``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri file://<data_dir>/mlruns``). Any other
tracking URI (``sqlite:///...``, ``http://...``) comes from ``model_training.mlflow_uri``. The URI is
always passed explicitly to the client, so nothing is written to ``./mlruns`` of the working directory.
MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``; this adapter sets it for its own
process when (and only when) the configured store is a file store.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tickwise.config import Settings

EXPERIMENT = "tickwise"


def tracking_uri(settings: Settings) -> str:
    """The MLflow tracking URI in use (configured, or the file store under data_dir/mlruns)."""
    if settings.model_training.mlflow_uri:
        return settings.model_training.mlflow_uri
    return (Path(settings.system.data_dir).resolve() / "mlruns").as_uri()


class MlflowTracker:
    """Thin wrapper over ``MlflowClient`` bound to one tracking URI and experiment."""

    def __init__(self, uri: str, experiment: str = EXPERIMENT) -> None:
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient  # heavy import (~5 s), only when training

        self.uri = uri
        self._client = MlflowClient(tracking_uri=uri)
        found = self._client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self._client.create_experiment(experiment)

    async def log_run(
        self,
        *,
        run_name: str,
        params: Mapping[str, object],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        files: Mapping[str, bytes],
        documents: Mapping[str, object],
    ) -> str:
        """Create a finished run and return its id (``ports.ExperimentTracker``). ``files`` (the model
        bundle) are logged under ``model/``, ``documents`` as JSON files. The MLflow client is
        synchronous: it runs in a worker thread."""
        return await asyncio.to_thread(
            self._log_run, run_name, dict(params), dict(metrics), dict(tags), dict(files), dict(documents)
        )

    def _log_run(
        self,
        run_name: str,
        params: dict[str, object],
        metrics: dict[str, float],
        tags: dict[str, str],
        files: dict[str, bytes],
        documents: dict[str, object],
    ) -> str:
        client = self._client
        run = client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        run_id: str = run.info.run_id
        try:
            for key, value in params.items():
                client.log_param(run_id, key, _short(value))
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(float(value)):
                    client.log_metric(run_id, key, float(value))
            for name, doc in documents.items():
                # log_dict's JSON form, without its dict-only signature (folds.json is a list).
                client.log_text(run_id, json.dumps(doc, indent=2), name)
            if files:
                with tempfile.TemporaryDirectory(prefix="tickwise-model-") as tmp:
                    for name, data in files.items():
                        (Path(tmp) / name).write_bytes(data)
                    client.log_artifacts(run_id, tmp, artifact_path="model")
        except Exception:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
        return run_id


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."
