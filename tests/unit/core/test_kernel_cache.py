"""numba's kernel cache is keyed by the version of ``tickwise.core``'s sources (core/kernel_cache.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tickwise
from tickwise.core import kernel_cache
from tickwise.core.kernel_cache import kernel_cache_dir, sources_digest

SRC = Path(tickwise.__file__).resolve().parent.parent

_LABEL_ONCE = """
import numpy as np
import numba.core.config as config
from tickwise.core.labels.barrier import triple_barrier
n = 30
close = np.linspace(100.0, 101.0, n)
triple_barrier(close, close + 0.5, close - 0.5, close, np.full(n, 0.2), np.arange(5), 1, 1.0, 1.0, 5)
print(config.CACHE_DIR)
"""


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_digest_changes_when_any_core_file_changes_even_one_that_defines_no_kernel(
    tmp_path: Path,
) -> None:
    root = _tree(tmp_path, {"features/kernels.py": "k = 1\n", "features/fma.py": "def fma(): ...\n"})
    before = sources_digest(root)
    (root / "features" / "fma.py").write_text("def fma(): return 1\n")
    assert sources_digest(root) != before


def test_the_digest_changes_when_a_file_is_renamed_with_the_same_bytes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a.py": "x = 1\n"})
    before = sources_digest(root)
    (root / "a.py").rename(root / "b.py")
    assert sources_digest(root) != before


def test_a_base_already_ending_in_the_digest_is_kept_so_child_processes_do_not_nest_it() -> None:
    assert kernel_cache_dir(Path("/c"), "abc") == Path("/c/abc")
    assert kernel_cache_dir(Path("/c/abc"), "abc") == Path("/c/abc")


def _run(code: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_changing_a_core_file_a_kernel_does_not_define_compiles_into_a_fresh_cache(
    tmp_path: Path,
) -> None:
    # A copy of the package, so its sources can be changed; numba's default cache (no NUMBA_CACHE_DIR).
    shutil.copytree(SRC / "tickwise", tmp_path / "tickwise", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    env["PYTHONPATH"] = str(tmp_path)
    first = Path(_run(_LABEL_ONCE, tmp_path, env))
    assert first.parent == tmp_path / "tickwise" / "__pycache__" / "numba-kernels"
    assert list(first.rglob("barrier._triple_barrier_kernel-*.nbi")), "the kernel was not cached"

    fma = tmp_path / "tickwise" / "core" / "features" / "fma.py"
    fma.write_text(fma.read_text() + "\n# a change outside the labels kernel's own file\n")
    second = Path(_run(_LABEL_ONCE, tmp_path, env))

    assert second != first
    assert list(second.rglob("barrier._triple_barrier_kernel-*.nbi")), "the new version compiled afresh"
    assert first.exists(), "a version used a moment ago is kept for a checkout switching back"


def test_a_user_cache_directory_is_kept_as_the_base_with_the_version_under_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    code = "import os, tickwise.core; print(os.environ['NUMBA_CACHE_DIR'])"
    seen = Path(_run(code, SRC, env))
    assert seen == tmp_path / sources_digest(SRC / "tickwise" / "core")
    env["NUMBA_CACHE_DIR"] = str(seen)  # what a child process inherits
    assert Path(_run(code, SRC, env)) == seen


def test_a_new_version_keeps_the_two_most_recently_used_others_and_removes_the_rest(tmp_path: Path) -> None:
    base = tmp_path / "numba-kernels"
    for age, name in enumerate(["d", "c", "b", "a"]):  # "a" oldest
        (base / name).mkdir(parents=True)
        os.utime(base / name, (1_000_000 - age * 100, 1_000_000 - age * 100))
    os.utime(base / "a", None)  # used just now: the newest, although created first

    kernel_cache._prune_other_versions(base / "new", base)

    assert sorted(p.name for p in base.iterdir()) == ["a", "d"]
    assert kernel_cache.KEPT_OTHER_VERSIONS == 2


def test_reusing_a_version_marks_it_used_and_removes_nothing(tmp_path: Path) -> None:
    base = tmp_path / "numba-kernels"
    for name in ["old1", "old2", "old3", "mine"]:
        (base / name).mkdir(parents=True)
        os.utime(base / name, (1_000, 1_000))

    kernel_cache._prune_other_versions(base / "mine", base)

    assert len(list(base.iterdir())) == 4
    assert (base / "mine").stat().st_mtime > 1_000
