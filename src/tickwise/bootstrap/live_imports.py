"""What a live process leaves out of its imports: pyarrow.

pandas (2.x) imports pyarrow on its own import whenever pyarrow is installed, only to learn which
optional Arrow features it may offer. tickwise never uses Arrow (pyarrow is in the virtualenv for
Dask and MLflow, which run in the historical mode), yet a live shard that let pandas import it would
hold its libraries for the whole session: 33-49 MB of resident memory per process on the reference
machine, about 8 MB of it the process's own (docs/benchmarks.md, "Live memory without pyarrow").

Leaving it out has to happen before pandas is first imported, so the console script decides it from
the command line before the CLI's own imports (:mod:`tickwise.cli.entry`), and spawned live workers
(the bench's shards) call :func:`leave_out_pyarrow` as their first act. This module imports nothing
but :mod:`sys` so that calling it is not itself too late.
"""

from __future__ import annotations

import sys

LEFT_OUT = "pyarrow"


def leave_out_pyarrow() -> bool:
    """Make ``import pyarrow`` fail in this process from now on (pandas then offers no Arrow
    features, as when pyarrow is not installed); return whether it is out.

    When pyarrow is already imported it stays (a module cannot be unloaded), and this returns False.
    """
    if sys.modules.get(LEFT_OUT) is not None:
        return False
    # A None entry is Python's own way to make an import fail with ModuleNotFoundError.
    sys.modules[LEFT_OUT] = None  # type: ignore[assignment]
    return True


def pyarrow_imported() -> bool:
    """Whether pyarrow is loaded in this process (the bench reports it beside its memory figures)."""
    return sys.modules.get(LEFT_OUT) is not None
