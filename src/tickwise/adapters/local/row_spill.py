"""``RowSpill`` on local disk: each kept matrix is one raw float64 file under a scratch directory.

A gather opens the file as a read-only ``np.memmap`` for the duration of that gather only and copies the
rows out, so the pages resident in this process are those of the gather, not the file's: the training
load's memory is its keys and the rows in use (issue 15). Rows are read in file order and put back in
the caller's order. The directory is the spill's own and is removed by :meth:`ScratchRowSpill.close`
(or at the end of its ``with`` block). A run killed before that (SIGKILL, the OOM killer, a service
manager's stop timeout) leaves its directory behind: the directory's name carries its process id, and
the next spill under the same parent removes the directories of processes that no longer exist.

A kept column (:meth:`ScratchRowSpill.keep_column`: one 1-D typed array, e.g. a training set's t0 or a
side's labels) is one raw file too, read through a memmap that lives for one read only. Unlike the
matrices (kept as long as the load), a column's file is removed as soon as its :class:`FileColumn` is
garbage (``weakref.finalize``): a run builds training sets at many window ends, and each set's columns
go with it instead of piling up on the scratch disk until the run ends.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from types import TracebackType

import numpy as np

__all__ = ["FileColumn", "FileRows", "ScratchRowSpill", "remove_stale"]


class FileRows:
    """One kept matrix: ``shape`` float64 values, C order, in ``path``."""

    def __init__(self, path: Path, shape: tuple[int, int]) -> None:
        self.path = path
        self.shape = shape

    def __len__(self) -> int:
        return self.shape[0]

    def gather(self, local: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        local = np.asarray(local, dtype=np.int64)
        k = self.shape[1]
        idx = np.arange(k) if cols is None else np.asarray(cols, dtype=np.int64)
        if len(local) == 0 or self.shape[0] == 0 or k == 0:
            return np.empty((len(local), len(idx)), dtype=np.float64)
        order = np.argsort(local, kind="stable")  # read forward through the file
        mapped = np.memmap(self.path, dtype=np.float64, mode="r", shape=self.shape)
        try:
            rows = mapped[local[order]]
            picked = rows if cols is None else rows[:, idx]
        finally:
            del mapped  # unmapped now: its pages no longer count towards this process
        out = np.empty((len(local), len(idx)), dtype=np.float64)
        out[order] = picked
        return out


class FileColumn:
    """One kept 1-D array: ``length`` values of ``dtype`` in ``path`` (removed when this is garbage)."""

    def __init__(self, path: Path, dtype: np.dtype[np.generic], length: int) -> None:
        self.path = path
        self.dtype = dtype
        self.length = length
        self._remove = weakref.finalize(self, _unlink, path)

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> tuple[Path, np.dtype[np.generic], int]:
        # A copy sent to a worker process on this machine reads the same file; only the spilling
        # process's own column removes it (a finalizer does not travel with the copy).
        return self.path, self.dtype, self.length

    def __setstate__(self, state: tuple[Path, np.dtype[np.generic], int]) -> None:
        self.path, self.dtype, self.length = state

    def read(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """A new in-memory array of values ``rows`` (positions, a mask or a slice)."""
        if self.length == 0:
            return np.empty(0, dtype=self.dtype)[rows]
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.length,))
        try:
            out = np.array(mapped[rows], dtype=self.dtype)  # copied out: nothing refers to the map
        finally:
            del mapped  # unmapped now: its pages no longer count towards this process
        return out


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


_PREFIX = "training-rows-"


def _owner(directory: Path) -> int | None:
    """The process id in a spill directory's name (``training-rows-<pid>-<random>``), if it has one."""
    rest = directory.name.removeprefix(_PREFIX)
    pid, _, _ = rest.partition("-")
    return int(pid) if rest != directory.name and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


def remove_stale(parent: Path) -> int:
    """Remove the spill directories under ``parent`` whose process is gone; how many were removed.
    A directory whose name has no process id, or whose process still runs, is left alone."""
    removed = 0
    for directory in parent.glob(f"{_PREFIX}*"):
        pid = _owner(directory)
        if directory.is_dir() and pid is not None and pid != os.getpid() and not _alive(pid):
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed


class ScratchRowSpill:
    """Spills kept matrices to files in a fresh directory under ``parent`` (created if missing)."""

    def __init__(self, parent: Path) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.removed_stale = remove_stale(parent)
        self.directory = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent))
        self._names = itertools.count()

    def keep(self, values: np.ndarray) -> FileRows:
        values = np.ascontiguousarray(values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"a kept matrix has two dimensions, not {values.ndim}")
        path = self.directory / f"part-{next(self._names):06d}.f64"
        with path.open("wb") as f:
            values.tofile(f)
        return FileRows(path, (int(values.shape[0]), int(values.shape[1])))

    def keep_column(self, values: np.ndarray) -> FileColumn:
        values = np.ascontiguousarray(values)
        if values.ndim != 1:
            raise ValueError(f"a kept column has one dimension, not {values.ndim}")
        if values.dtype.hasobject:
            raise ValueError("a kept column holds numbers, not Python objects")
        path = self.directory / f"column-{next(self._names):06d}.{values.dtype.str.lstrip('<>|=')}"
        with path.open("wb") as f:
            values.tofile(f)
        return FileColumn(path, values.dtype, int(values.shape[0]))

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ScratchRowSpill:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
