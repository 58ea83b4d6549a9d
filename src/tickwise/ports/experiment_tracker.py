"""ExperimentTracker: one finished run per training, with its parameters, metrics and model files.

Implementation: ``adapters.mlflow.tracker.MlflowTracker``; fake: ``tests/fakes.RecordingTracker``.
Parameters and documents are plain JSON-able data (numbers, strings, lists, dicts); the tracker
serialises them, so the seam says ``object`` rather than ``Any``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class ExperimentTracker(Protocol):
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
        """Record a finished run and return its id. ``files`` are the model bundle (logged under
        ``model/``), ``documents`` are logged as JSON files; ``params`` are logged as text."""
        ...
