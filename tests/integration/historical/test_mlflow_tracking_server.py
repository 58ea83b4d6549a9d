"""``model_training.mlflow_uri: http://...``: the MLflow adapter against a real ``mlflow server`` (the one
MLflow ships: uvicorn, an SQLite backend store and a served artifact store in a temp directory) on a
free loopback port. The server takes tens of seconds to start on a loaded 2-core machine: slow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickwise.adapters.mlflow.tracker import MlflowTracker, tracking_uri
from tickwise.config import load_settings

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # nosec B310: loopback only
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = (root / "server.log").open("wb")
    server = subprocess.Popen(  # nosec B603: a fixed argument list, no shell
        [
            str(mlflow_cli),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(1.0)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()


async def test_a_run_tracked_through_an_http_tracking_server_holds_params_metrics_and_model_files(
    mlflow_server: str, tmp_path: Path
) -> None:
    settings = load_settings(environ={"TICKWISE__MODEL_TRAINING__MLFLOW_URI": mlflow_server})
    assert tracking_uri(settings) == mlflow_server
    tracker = MlflowTracker(tracking_uri(settings))
    run_id = await tracker.log_run(
        run_name="f20261205-000000-abcdef",
        params={"num_leaves": 15, "trainer": "dask", "trainer_workers": 2},
        metrics={"oos_auc": 0.57, "broken": float("nan")},
        tags={"model_version": "f20261205-000000-abcdef", "kind": "fold"},
        files={"model.json": b'{"version": "f"}', "long.txt": b"tree"},
        documents={"label_spec.json": {"k_pt": 2.0}},
    )

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["kind"] == "fold"
    assert run.data.params == {"num_leaves": "15", "trainer": "dask", "trainer_workers": "2"}
    assert run.data.metrics == {"oos_auc": 0.57}
    assert sorted(a.path for a in client.list_artifacts(run_id, "model")) == [
        "model/long.txt",
        "model/model.json",
    ]
    # The artifacts went through the server (mlflow-artifacts:), not to a path on this machine.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    spec = client.download_artifacts(run_id, "label_spec.json", str(tmp_path))
    with open(spec, encoding="utf-8") as f:  # noqa: ASYNC230  (a small local file, after the fact)
        assert json.load(f) == {"k_pt": 2.0}
