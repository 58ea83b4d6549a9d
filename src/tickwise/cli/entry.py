"""The ``tickwise`` console script: decide what the process leaves out, then run the CLI.

The CLI's modules import pandas (and pandas imports pyarrow) as they load, so a choice about pyarrow
must come before them: this module reads the command from the arguments with nothing but the standard
library and, for a command that runs the live engine in this process (``tickwise live``, ``tickwise bench
live``), leaves pyarrow out (:mod:`tickwise.bootstrap.live_imports`). Every other command runs as before.
``python -m tickwise.cli.main`` still works; it loads the CLI first, so it keeps pyarrow.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# The top-level options that take a value (``tickwise --env production live``); the flags take none.
_VALUED = frozenset({"--env"})


def is_live_command(args: Sequence[str]) -> bool:
    """Whether ``args`` (the arguments after the program's name) run the live engine in this process:
    ``live ...`` or ``bench live ...``, after any top-level options."""
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
            if len(words) == 2:
                break
    return words[:1] == ["live"] or words == ["bench", "live"]


def run() -> None:
    """Entry point of the console script."""
    if is_live_command(sys.argv[1:]):
        from tickwise.bootstrap.live_imports import leave_out_pyarrow

        leave_out_pyarrow()
    from tickwise.cli.main import run as run_cli

    run_cli()


if __name__ == "__main__":
    run()
