"""The ``tickwise`` CLI run in the test's own process, for tests that check a command's output and exit
code rather than the console script itself.

A console-script subprocess pays the whole stack's import (pandas, LightGBM, the numba kernels' cache,
MLflow for the ``models`` commands: 2-5 CPU seconds, several times that on a loaded CI machine) for each
command; in-process the imports are paid once per test session. A file that moves its commands here
keeps at least one real subprocess, so the console script's own path stays tested.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr
from io import StringIO

from typer.testing import CliRunner

from tickwise.cli.context import state
from tickwise.cli.main import app, report_failure

# What a test's subprocess environment leaves out of the parent's (a developer's TICKWISE__ overrides).
SCRUBBED_PREFIXES = ("TICKWISE__", "KITE_")


def invoke(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``tickwise <args>`` in-process with ``env`` over the parent's environment, minus the
    ``TICKWISE__*``, ``KITE_*`` and ``DATABASE_URL`` that ``env`` does not name; an exception that
    escapes the command is one line and an exit code, as the console script maps it
    (``tickwise.cli.main.run``)."""
    unset: dict[str, str | None] = {
        name: None
        for name in os.environ
        if (name.startswith(SCRUBBED_PREFIXES) or name == "DATABASE_URL") and name not in env
    }
    state._settings = None  # the CLI state caches settings per process; a new process would not
    try:
        result = CliRunner().invoke(app, list(args), env=unset | dict(env))
        code, stderr = result.exit_code, result.stderr
        if isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit):
            mapped = StringIO()
            with redirect_stderr(mapped):
                code = report_failure(result.exception, state)
            stderr += mapped.getvalue()
    finally:
        state._settings = None
        state.debug, state.environment, state.log_json = False, None, None
    return subprocess.CompletedProcess(["tickwise", *args], code, result.stdout, stderr)
