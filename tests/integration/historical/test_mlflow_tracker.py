"""The MLflow adapter of ports.ExperimentTracker against a real MLflow file store in a temp directory."""

from __future__ import annotations

import json
from pathlib import Path

from tickwise.adapters.mlflow.tracker import MlflowTracker


async def test_a_tracked_run_holds_params_finite_metrics_documents_and_the_model_files(
    tmp_path: Path,
) -> None:
    tracker = MlflowTracker((tmp_path / "mlruns").as_uri())
    run_id = await tracker.log_run(
        run_name="m1",
        params={"num_leaves": 7, "feature_set": "fs"},
        metrics={"holdout_auc": 0.61, "broken": float("nan")},
        tags={"model_version": "m1"},
        files={"model.json": b'{"version": "m1"}', "long.txt": b"tree"},
        documents={"folds.json": [{"auc": 0.6}], "label_spec.json": {"k_pt": 2.0}},
    )
    _assert_stored(tracker.uri, run_id, tmp_path)


def _assert_stored(uri: str, run_id: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["model_version"] == "m1"
    assert run.data.params == {"num_leaves": "7", "feature_set": "fs"}
    assert run.data.metrics == {"holdout_auc": 0.61}  # NaN is not logged
    model_files = sorted(a.path for a in client.list_artifacts(run_id, "model"))
    assert model_files == ["model/long.txt", "model/model.json"]
    folds = Path(client.download_artifacts(run_id, "folds.json", str(tmp_path)))
    assert json.loads(folds.read_text()) == [{"auc": 0.6}]
