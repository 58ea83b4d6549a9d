"""Model bundles on local disk: ``<data_dir>/models/<version>/`` (the ``models`` table records versions).

Saves are atomic: the bundle is written to a temporary sibling directory and renamed into place, so a
killed run leaves either a complete bundle or none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tickwise.core.model import ModelArtifact
from tickwise.domain.errors import ModelError


class LocalModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise ModelError(f"invalid model version {version!r}")
        return self.root / version

    def exists(self, version: str) -> bool:
        return (self.path(version) / "model.json").is_file()

    def save(self, artifact: ModelArtifact) -> Path:
        target = self.path(artifact.version)
        tmp = self.root / f".{artifact.version}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        artifact.save(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        return target

    def load(self, version: str, path: Path | None = None) -> ModelArtifact:
        """Load ``version`` (from ``path`` when the ``models`` row records another location)."""
        where = path or self.path(version)
        if not (where / "model.json").is_file():
            raise ModelError(
                f"model {version} has no bundle at {where}; re-run `tickwise train` or restore the directory"
            )
        artifact = ModelArtifact.load(where)
        if artifact.version != version:
            raise ModelError(f"bundle at {where} holds model {artifact.version}, not {version}")
        return artifact
