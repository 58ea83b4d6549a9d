"""`tickwise warm`: compile every numba kernel once so that later runs load it from numba's cache."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("warm")(warm)


def warm(
    json_only: Annotated[bool, typer.Option("--json", help="Print only the JSON line.")] = False,
) -> None:
    """Compile (or load from the cache) every numba kernel on tiny inputs; idempotent, no database.

    ``make setup`` runs it, so a fresh clone's first ``tickwise historical`` or ``tickwise live`` does
    not pay numba's compile. The cache is ``__pycache__`` next to the sources (or NUMBA_CACHE_DIR).
    """
    from tickwise.bootstrap.warm import kernel_signatures, warm_kernels

    steps = warm_kernels()
    if not json_only:
        for s in steps:
            what = ", ".join(f"{k} {v:.1f} s" for k, v in s.compiled.items()) or "cached"
            typer.echo(f"{s.step:>36}: {s.wall_s:6.1f} s wall, {s.cpu_s:6.1f} s CPU ({what})")
    figures = {
        "wall_s": round(sum(s.wall_s for s in steps), 3),
        "cpu_s": round(sum(s.cpu_s for s in steps), 3),
        "compiled": {k: v for s in steps for k, v in s.compiled.items()},
        "signatures": kernel_signatures(),
    }
    typer.echo(json.dumps(figures))
