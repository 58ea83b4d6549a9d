"""Issue #13, findings 7 and 11: configuration loading problems are one clear line with exit code 2,
and what tickwise creates under the data directory is private.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tickwise.bootstrap.observability import setup_logging
from tickwise.config import load_settings
from tickwise.observability.logging import configure_logging

TICKWISE = str(Path(sys.executable).with_name("tickwise"))


def _cli(config_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE") and k != "DATABASE_URL"}
    env["TICKWISE_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [TICKWISE, "db", "url", "--no-start"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "TICKWISE_CONFIG_DIR"),
        (b"system: 5\n", "must be a mapping"),
        (b"system:\n  log_level: \xff\n", "not UTF-8"),
        (b"a: &x [*x]\n", "refer to themselves"),
    ],
    ids=["missing-dir", "system-5", "not-utf8", "recursive-alias"],
)
def test_a_broken_configuration_is_one_line_and_exit_code_2(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    config_dir = tmp_path / "config"
    if content is not None:
        config_dir.mkdir()
        (config_dir / "config.yaml").write_bytes(content)
    result = _cli(config_dir)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_a_new_data_directory_and_its_log_file_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    settings = load_settings(environ={"TICKWISE__SYSTEM__DATA_DIR": str(data)})
    try:
        setup_logging(settings)
    finally:
        configure_logging("INFO")  # close the file sink
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "logs" / "tickwise.log").stat().st_mode & 0o777 == 0o600
