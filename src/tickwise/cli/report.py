"""`tickwise report [--backtest RUN] [--out DIR]`: a self-contained HTML report of a backtest run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from tickwise.cli.context import state


def report(
    backtest: Annotated[
        str | None, typer.Option("--backtest", help="Run id (see backtest_runs; default: the latest run).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Directory for index.html and the PNGs (default: <data_dir>/reports/<run>)."
        ),
    ] = None,
) -> None:
    """Write the HTML report of a backtest: equity, drawdown, daily and monthly PnL, deciles, model, parity."""
    from tickwise.bootstrap.backtest import make_report

    settings = state.settings()
    data, files = asyncio.run(make_report(settings, backtest, out))
    typer.echo(f"report of {data.run_id} ({data.sample}): {files.html}")
    typer.echo(f"{len(files.images)} charts: {', '.join(p.name for p in files.images)}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("report")(report)
