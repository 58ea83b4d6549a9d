"""MLflow model registry aliases ``champion`` and ``challenger`` for the ``models`` table's choices.

One registered model (``tickwise``) holds a registry version per tickwise model version that has an
MLflow run (tagged ``model_version``); the aliases point at those. The file store (the default,
``<data_dir>/mlruns``) supports the registry and aliases as well as a tracking server does. The
``models`` table stays authoritative: models without an MLflow run get no registry version, and the
alias is then cleared rather than left pointing at an older model.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

REGISTERED_MODEL = "tickwise"


class MlflowAliasRegistry:
    """ModelAliasRegistry on MLflow's model registry."""

    def __init__(self, uri: str, name: str = REGISTERED_MODEL) -> None:
        self._uri = uri
        self._name = name
        self._made: Any = None

    @property
    def _client(self) -> Any:
        """The MLflow client, made on first use: the import is slow and most runs change no alias."""
        if self._made is None:
            if self._uri.startswith("file:") or "://" not in self._uri:
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            from mlflow.tracking import MlflowClient

            self._made = MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)
        return self._made

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(self._name)
        except MlflowException:
            self._client.create_registered_model(
                self._name, description="tickwise models; the `models` table is authoritative"
            )

    def registry_version(self, model_version: str) -> str | None:
        """The registry version number of a tickwise model version, if registered."""
        self._ensure_model()
        for mv in self._client.search_model_versions(f"name='{self._name}'"):
            if mv.tags.get("model_version") == model_version:
                return str(mv.version)
        return None

    def point(self, alias: str, model_version: str, run_id: str | None) -> None:
        number = self.registry_version(model_version)
        if number is None:
            if run_id is None:
                self.clear(alias)  # no run to register: do not leave the alias on another model
                return
            # MLflow's file registry store builds an internal MlflowClient() on the *global* tracking
            # URI (default: ./mlflow.db in the working directory); point it at this store first.
            import mlflow

            mlflow.set_tracking_uri(self._uri)
            source = f"{self._client.get_run(run_id).info.artifact_uri}/model"
            mv = self._client.create_model_version(
                self._name, source, run_id=run_id, tags={"model_version": model_version}
            )
            number = str(mv.version)
        self._client.set_registered_model_alias(self._name, alias, number)

    def clear(self, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        self._ensure_model()
        with contextlib.suppress(MlflowException):  # no such alias: already clear
            self._client.delete_registered_model_alias(self._name, alias)

    def alias(self, alias: str) -> str | None:
        """The tickwise model version an alias points at (None when unset)."""
        from mlflow.exceptions import MlflowException

        self._ensure_model()
        try:
            mv = self._client.get_model_version_by_alias(self._name, alias)
        except MlflowException:
            return None
        value = mv.tags.get("model_version")
        return None if value is None else str(value)
