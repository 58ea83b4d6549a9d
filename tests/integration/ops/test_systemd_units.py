"""The shipped and the generated systemd units pass `systemd-analyze verify`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tickwise.bootstrap.systemd_units import UnitPlan, render_units

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "deploy" / "systemd"
TICKWISE = str(Path(sys.executable).with_name("tickwise"))
SYSTEM_UNITS = Path("/usr/lib/systemd/system")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package systemd; scripts/setup.sh installs it)",
)


def verify(*units: Path, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = ["systemd-analyze", "verify", *(["--root", str(root)] if root else []), *map(str, units)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def install_root(tmp_path: Path, units: dict[str, str]) -> tuple[Path, list[Path]]:
    """A filesystem root as on the target machine: systemd's own units, /opt/tickwise, our units."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    script = root / "opt/tickwise/.venv/bin/tickwise"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for name, text in units.items():
        (etc / name).write_text(text)
    return root, [Path("/etc/systemd/system") / name for name in units]


def shipped() -> dict[str, str]:
    return {
        p.name: p.read_text()
        for p in sorted(SHIPPED.glob("tickwise-*"))
        if p.suffix in (".service", ".timer")
    }


def test_the_shipped_units_are_what_tickwise_schedule_renders_for_opt_tickwise() -> None:
    plan = UnitPlan(
        root=Path("/opt/tickwise"), tickwise=Path("/opt/tickwise/.venv/bin/tickwise"), user="tickwise"
    )
    assert shipped() == render_units(plan)
    assert set(shipped()) == {
        f"tickwise-{job}.{kind}"
        for job in ("live", "historical", "retention", "maintain")
        for kind in ("service", "timer")
    }


def test_the_shipped_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root, units = install_root(tmp_path, shipped())
    result = verify(*units, root=root)
    assert result.returncode == 0, result.stderr


def test_the_generated_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE__")}
    result = subprocess.run(
        [TICKWISE, "schedule", "--systemd", "--out", str(tmp_path / "units")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    units = sorted((tmp_path / "units").iterdir())
    assert len(units) == 8
    live = (tmp_path / "units" / "tickwise-live.service").read_text()
    assert f"ExecStart={TICKWISE} live --wait" in live and "Restart=on-failure" in live
    timer = (tmp_path / "units" / "tickwise-live.timer").read_text()
    assert "OnCalendar=*-*-* 08:45:00 Asia/Kolkata" in timer
    checked = verify(*units)
    assert checked.returncode == 0, checked.stderr


def test_verify_catches_a_broken_timer_so_the_checks_above_can_fail(tmp_path: Path) -> None:
    units = dict(shipped())
    units["tickwise-live.timer"] = units["tickwise-live.timer"].replace("08:45:00", "25:99:00")
    root, paths = install_root(tmp_path, units)
    result = verify(*paths, root=root)
    assert result.returncode != 0 and "calendar" in result.stderr.lower()


def test_the_schedule_command_refuses_a_bad_retention_and_a_missing_format(tmp_path: Path) -> None:
    bad = subprocess.run(
        [TICKWISE, "schedule", "--systemd", "--retention", "soon", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "expected a duration" in bad.stderr
    none = subprocess.run([TICKWISE, "schedule"], capture_output=True, text=True, timeout=60, check=False)
    assert none.returncode == 2 and "--systemd" in none.stderr
