"""The ``tickwise`` console script: one Typer app, command groups registered from sibling modules.

Errors: a ``TickwiseError`` prints one line and exits with its code (1 runtime, 2 configuration); any
other exception prints one line too, with the full traceback only under ``--debug``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tickwise.cli import (
    alerts,
    auth,
    backtest,
    bench,
    db,
    historical,
    instruments,
    live,
    models,
    report,
    schedule,
    simulate,
    status,
    warm,
)
from tickwise.cli.context import CliState, state

app = typer.Typer(
    name="tickwise",
    help="Intraday signals for NSE on TimescaleDB (Kite Connect or the built-in simulator).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        from tickwise.bootstrap.status import tickwise_version

        typer.echo(f"tickwise {tickwise_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    env: Annotated[
        str | None, typer.Option("--env", help="Configuration environment (development, test, production).")
    ] = None,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log one JSON object per line (config: system.log_json).")
    ] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit."),
    ] = False,
) -> None:
    state.debug = debug
    state.environment = env
    state.log_json = True if log_json else None


for module in (
    db,
    simulate,
    auth,
    alerts,
    instruments,
    historical,
    live,
    bench,
    models,
    backtest,
    report,
    status,
    schedule,
    warm,
):
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
    from tickwise.bootstrap.observability import mask
    from tickwise.domain.errors import TickwiseError

    # Exception text may quote a DSN, a URI or a token: every line goes through the log masker.
    if st.debug:
        import traceback

        typer.echo(mask("".join(traceback.format_exception(exc))).rstrip("\n"), err=True)
    if isinstance(exc, TickwiseError):
        typer.echo(mask(f"error: {exc}"), err=True)
        return exc.exit_code
    typer.echo(mask(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"), err=True)
    return 1


if __name__ == "__main__":
    run()
