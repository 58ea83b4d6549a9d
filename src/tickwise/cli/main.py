"""The ``tickwise`` console script: one Typer app, command groups registered from sibling modules.

Errors: a ``TickwiseError`` prints one line and exits with its code (1 runtime, 2 configuration); any
other exception prints one line too, with the full traceback only under ``--debug``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tickwise.cli import auth, bench, db, historical, instruments, live, models, simulate
from tickwise.cli.context import CliState, state

app = typer.Typer(
    name="tickwise",
    help="Intraday signals for NSE on TimescaleDB (Kite Connect or the built-in simulator).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    env: Annotated[
        str | None, typer.Option("--env", help="Configuration environment (development, test, production).")
    ] = None,
) -> None:
    state.debug = debug
    state.environment = env


for module in (db, simulate, auth, instruments, historical, live, bench, models):
    module.register(app)


def run() -> None:
    """Entry point of the console script."""
    # Typer (standalone mode) handles usage errors (exit 2) and --help itself; everything else that
    # escapes a command ends here as one clear line and an exit code.
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:
        sys.exit(report_failure(exc, state))


def report_failure(exc: Exception, st: CliState) -> int:
    from tickwise.domain.errors import TickwiseError

    if st.debug:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, TickwiseError):
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    typer.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
    return 1


if __name__ == "__main__":
    run()
