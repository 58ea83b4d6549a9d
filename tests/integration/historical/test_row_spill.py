"""The disk spill of the training load: kept matrices gather back bit for bit in any row order and
column choice, a gather leaves no mapping behind, and closing removes the files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tickwise.adapters.local.row_spill import ScratchRowSpill


def test_kept_rows_gather_back_bit_for_bit_in_the_callers_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(500, 7))
    values[rng.random(values.shape) < 0.1] = np.nan
    values[0, 0] = -0.0
    with ScratchRowSpill(tmp_path) as spill:
        kept = spill.keep(values)
        assert len(kept) == 500 and kept.path.stat().st_size == values.nbytes
        local = np.array([499, 3, 3, 0, 250])
        assert np.array_equal(kept.gather(local).view(np.int64), values[local].view(np.int64))
        cols = np.array([6, 0])
        assert np.array_equal(
            kept.gather(local, cols).view(np.int64), values[np.ix_(local, cols)].view(np.int64)
        )
        assert kept.gather(np.empty(0, dtype=np.int64), cols).shape == (0, 2)
        assert spill.keep(np.empty((0, 7))).gather(np.empty(0, dtype=np.int64)).shape == (0, 7)
        directory = spill.directory
        maps = Path("/proc/self/maps").read_text()
        assert str(kept.path) not in maps  # the gather's mapping is gone
    assert not directory.exists()


def test_a_matrix_that_is_not_two_dimensional_is_refused(tmp_path: Path) -> None:
    with ScratchRowSpill(tmp_path) as spill, pytest.raises(ValueError, match="two dimensions"):
        spill.keep(np.zeros(3))


def test_a_spill_left_by_a_killed_run_is_removed_by_the_next_one_and_a_running_ones_is_kept(
    tmp_path: Path,
) -> None:
    # A run that dies without closing its spill (here: a child process that exits at once).
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = tmp_path / f"training-rows-{child.stdout.strip()}-abc123"
    (dead / "part-000000.f64").parent.mkdir()
    (dead / "part-000000.f64").write_bytes(b"\0" * 64)
    running = tmp_path / f"training-rows-{os.getppid()}-def456"  # our parent process still runs
    running.mkdir()
    unknown = tmp_path / "training-rows-xyz"  # no process id in the name: not ours to judge
    unknown.mkdir()
    with ScratchRowSpill(tmp_path) as spill:
        assert spill.removed_stale == 1
        assert not dead.exists() and running.exists() and unknown.exists()
        assert spill.directory.name.startswith(f"training-rows-{os.getpid()}-")
