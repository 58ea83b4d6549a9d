"""Where numba keeps the compiled kernels: one cache directory per version of ``core``'s sources.

numba's on-disk cache (``cache=True``) is checked against the modification time of the one file that
defines the function. A kernel in ``features/kernels.py`` that calls or inlines code from
``features/candles.py`` or ``features/fma.py``, or reads a module-level constant from another file (numba
freezes globals at compile time), keeps the old compiled code when only those files change, as after a
``git pull``: features would be computed with the old code, silently. Keying the cache directory by a
digest of every source file in ``tickwise.core`` turns any change there into one cold compile (about
25 CPU-s; ``tickwise warm`` pays it ahead) instead.

``tickwise.core`` applies this when it is first imported, before any kernel is decorated: that is the
only moment numba reads the setting for the kernels, and it must hold in every process that compiles
them (Dask workers, shards, test children), each of which imports ``tickwise.core`` itself. numba
re-reads ``NUMBA_CACHE_DIR`` from the environment at every compile, so the directory is set there.
A ``NUMBA_CACHE_DIR`` given by the user is kept as the base: the digest becomes a directory under it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

__all__ = ["KEPT_OTHER_VERSIONS", "apply_kernel_cache", "kernel_cache_dir", "sources_digest"]

_CORE = Path(__file__).resolve().parent
_DEFAULT_BASE = _CORE.parent / "__pycache__" / "numba-kernels"


def sources_digest(root: Path = _CORE) -> str:
    """A short digest of the relative paths and bytes of every ``.py`` file under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def kernel_cache_dir(base: Path, digest: str) -> Path:
    """``base/<digest>``; a ``base`` that already ends in the digest (a child process inheriting the
    parent's setting) is kept as it is."""
    return base if base.name == digest else base / digest


KEPT_OTHER_VERSIONS = 2


def _prune_other_versions(cache: Path, base: Path = _DEFAULT_BASE, keep: int = KEPT_OTHER_VERSIONS) -> None:
    """Remove all but the ``keep`` most recently used other versions under ``base``.

    Keeping a few, not one, is for a checkout that moves between branches (or two checkouts sharing the
    directory): going back to a version used a moment ago should not pay the cold compile again, while
    the directory still cannot grow with every ``git pull``."""
    # Only in tickwise's own default location: a base the user chose is theirs to manage.
    if cache.parent != base:
        return
    if cache.exists():
        os.utime(cache)  # "used": the pruning order below is by last use, not by creation
        return
    others = [p for p in base.glob("*") if p.is_dir() and p != cache]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in others[keep:]:
        shutil.rmtree(stale, ignore_errors=True)


def apply_kernel_cache() -> Path | None:
    """Point numba's cache at this version's directory (``None`` when numba is told not to compile,
    ``NUMBA_DISABLE_JIT=1``, and nothing is cached)."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return None
    given = os.environ.get("NUMBA_CACHE_DIR", "")
    cache = kernel_cache_dir(Path(given) if given else _DEFAULT_BASE, sources_digest())
    _prune_other_versions(cache)
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba imported before tickwise.core: its copy of the setting too
        numba_config.CACHE_DIR = str(cache)  # type: ignore[attr-defined]
    return cache
