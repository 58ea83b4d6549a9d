"""Model bundles on local disk: ``<data_dir>/models/<version>/`` (the ``models`` table records versions).

Implements ``ports.model_store.ModelStore``: a bundle is a set of named files (what they mean is
``core.model``'s business, not this adapter's). Saves are atomic: the files are written to a temporary
sibling directory that is renamed into place, so a killed run leaves either a complete bundle or none,
and a bundle directory that exists is complete. File I/O runs in a worker thread (the event loop of the
live mode keeps ticking while a model loads).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path

from tickwise.domain.errors import ModelError


class LocalModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise ModelError(f"invalid model version {version!r}")
        return self.root / version

    async def exists(self, version: str) -> bool:
        return await asyncio.to_thread(_non_empty_dir, self.path(version))

    async def save(self, version: str, files: Mapping[str, bytes]) -> str:
        target = self.path(version)
        for name in files:
            if not name or "/" in name or name.startswith("."):
                raise ModelError(f"invalid bundle file name {name!r}")
        await asyncio.to_thread(self._write, target, self.root / f".{version}.tmp", dict(files))
        return str(target)

    @staticmethod
    def _write(target: Path, tmp: Path, files: dict[str, bytes]) -> None:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)

    async def load(self, version: str, location: str | None = None) -> dict[str, bytes]:
        """The files of ``version`` (from ``location`` when the ``models`` row records another place)."""
        where = Path(location) if location else self.path(version)
        files = await asyncio.to_thread(_read_dir, where)
        if not files:
            raise ModelError(
                f"model {version} has no bundle at {where}; re-run `tickwise train` or restore the directory"
            )
        return files


def _non_empty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _read_dir(path: Path) -> dict[str, bytes]:
    if not path.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
