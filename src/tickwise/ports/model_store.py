"""ModelStore: where trained model bundles are kept, as named files (the ``models`` table records versions).

A bundle crosses this port as ``{file name: bytes}``; turning a ``core.model.ModelArtifact`` into files
and back is pure computation in ``core.model`` (``to_files`` / ``from_files``), so the store knows
nothing about LightGBM and the core does no I/O. Implementation: ``adapters.local.model_store``
(a directory per version); fake: ``tests/fakes.InMemoryModelStore``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class ModelStore(Protocol):
    async def exists(self, version: str) -> bool:
        """True when a complete bundle of ``version`` is stored."""
        ...

    async def save(self, version: str, files: Mapping[str, bytes]) -> str:
        """Store the bundle atomically (all files or none) and return its location (recorded in
        ``models.artifact_path``)."""
        ...

    async def load(self, version: str, location: str | None = None) -> dict[str, bytes]:
        """The files of ``version`` (from ``location`` when the ``models`` row records one);
        ``ModelError`` when no complete bundle is there."""
        ...
