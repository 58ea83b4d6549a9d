"""``tickwise models list|show|promote|retire|rollback [--json]``: model governance from the shell.

Every change goes through ``ModelGovernance`` and appends to ``model_events`` (docs/models.md).
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tickwise.cli.context import state

if TYPE_CHECKING:  # the composition root is imported when a command runs, not when the CLI starts
    from tickwise.bootstrap.models import GovernanceOutcome, ModelEvent, ModelRecord

models_app = typer.Typer(
    name="models", help="List, inspect, promote, retire and roll back models.", no_args_is_help=True
)

JSON_HELP = "Print JSON instead of a table."
REASON_HELP = "Why (recorded in model_events)."


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no passwd entry in some containers; the audit trail still says it was the CLI
        return "cli"


def _console() -> Console:
    return Console(stderr=False, highlight=False, soft_wrap=True)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _record_json(record: ModelRecord) -> dict[str, object]:
    return {
        "model_version": record.model_version,
        "status": record.status,
        "created_at": _iso(record.created_at),
        "trained_from": _iso(record.trained_from),
        "trained_to": _iso(record.trained_to),
        "feature_set": record.feature_set,
        "features": len(record.feature_names),
        "mlflow_run_id": record.mlflow_run_id,
        "metrics": dict(record.metrics),
    }


def _event_json(event: ModelEvent) -> dict[str, object]:
    return {
        "time": _iso(event.time),
        "model_version": event.model_version,
        "event": event.event,
        "reason": event.reason,
        "actor": event.actor,
        "metrics": dict(event.metrics),
    }


def _auc(metrics: Mapping[str, object]) -> str:
    for key in ("oos_auc", "holdout_auc"):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return f"{value:.4f} ({key})"
    return "-"


def _ist(value: datetime | None) -> str:
    from tickwise.domain.time import IST

    return "-" if value is None else f"{value.astimezone(IST):%Y-%m-%d %H:%M}"


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@models_app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status: champion, challenger, retired or fold.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Model versions, newest first."""
    from tickwise.bootstrap.models import open_governance
    from tickwise.domain.errors import ConfigError

    if status is not None and status not in ("champion", "challenger", "retired", "fold"):
        raise ConfigError(f"--status {status!r}: expected champion, challenger, retired or fold")
    settings = state.settings()

    async def main() -> list[ModelRecord]:
        async with open_governance(settings, actor=_actor(), aliases=False) as g:
            return await g.ctx.models.list(status=status)  # type: ignore[arg-type]

    records = asyncio.run(main())
    if as_json:
        _print_json([_record_json(r) for r in records])
        return
    table = Table(title=f"models ({len(records)})")
    # Versions are copied into other commands: never wrap or truncate them.
    table.add_column(
        "model_version", no_wrap=True, min_width=max((len(r.model_version) for r in records), default=13)
    )
    for col in ("status", "trained (IST dates)", "AUC", "mlflow run"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.model_version,
            r.status,
            f"{_ist(r.trained_from)[:10]} .. {_ist(r.trained_to)[:10]}",
            _auc(r.metrics),
            r.mlflow_run_id or "-",
        )
    _console().print(table)


@models_app.command("show")
def show(
    version: Annotated[str, typer.Argument(help="Model version (see `tickwise models list`).")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """One model: its row in `models` and its whole history from `model_events`."""
    from tickwise.bootstrap.models import open_governance
    from tickwise.domain.errors import ModelError

    settings = state.settings()

    async def main() -> tuple[ModelRecord, list[ModelEvent]]:
        async with open_governance(settings, actor=_actor(), aliases=False) as g:
            record = await g.ctx.models.get(version)
            if record is None:
                raise ModelError(f"no model version {version!r} (see `tickwise models list`)")
            return record, await g.events.history(version)

    record, events = asyncio.run(main())
    if as_json:
        _print_json({**_record_json(record), "events": [_event_json(e) for e in events]})
        return
    console = _console()
    console.print(f"[bold]{record.model_version}[/bold]  status {record.status}")
    console.print(
        f"trained {_ist(record.trained_from)} .. {_ist(record.trained_to)} IST, AUC {_auc(record.metrics)}"
    )
    console.print(f"mlflow run {record.mlflow_run_id or '-'}, {len(record.feature_names)} features")
    if "trainer" in record.params:  # model_training.distributed (docs/scaling.md)
        console.print(
            f"trained by {record.params['trainer']} ({record.params.get('trainer_workers')} workers)"
        )
    table = Table(title="events (newest first)")
    for col in ("time (IST)", "event", "reason", "actor"):
        table.add_column(col)
    for e in events:
        table.add_row(_ist(e.time), e.event, e.reason, e.actor)
    console.print(table)


def _decision_line(outcome: GovernanceOutcome) -> str:
    d = outcome.decision
    return f"{outcome.model_version}: {outcome.status}" + ("" if d is None else f" ({d.reason})")


@models_app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="The challenger to promote.")],
    reason: Annotated[str, typer.Option("--reason", help=REASON_HELP)] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Promote even without significant evidence (recorded as forced).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Promote a challenger if it beats the champion on their common out-of-sample window."""
    from tickwise.bootstrap.models import open_governance

    settings = state.settings()

    async def main() -> GovernanceOutcome:
        async with open_governance(settings, actor=_actor()) as g:
            return await g.governance.consider(version, force=force, reason=reason)

    outcome = asyncio.run(main())
    promoted = outcome.status == "champion"
    if as_json:
        d = outcome.decision
        _print_json(
            {
                "model_version": outcome.model_version,
                "status": outcome.status,
                "promoted": promoted,
                "reason": None if d is None else d.reason,
            }
        )
    else:
        typer.echo(_decision_line(outcome))
    if not promoted:
        raise typer.Exit(1)


@models_app.command("retire")
def retire(
    version: Annotated[str, typer.Argument(help="A challenger or fold model to retire.")],
    reason: Annotated[str, typer.Option("--reason", help=REASON_HELP)] = "",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Retire a model (not the champion: promote another or roll back first)."""
    from tickwise.bootstrap.models import open_governance

    settings = state.settings()

    async def main() -> GovernanceOutcome:
        async with open_governance(settings, actor=_actor()) as g:
            return await g.governance.retire(version, reason=reason)

    outcome = asyncio.run(main())
    if as_json:
        _print_json({"model_version": outcome.model_version, "status": outcome.status})
    else:
        typer.echo(f"{outcome.model_version}: retired")


@models_app.command("rollback")
def rollback(
    reason: Annotated[str, typer.Option("--reason", help=REASON_HELP)] = "",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Demote the champion and restore the previous one (from model_events)."""
    from tickwise.bootstrap.models import open_governance

    settings = state.settings()

    async def main() -> tuple[str, str]:
        async with open_governance(settings, actor=_actor()) as g:
            return await g.governance.rollback(reason=reason)

    demoted, restored = asyncio.run(main())
    if as_json:
        _print_json({"rolled_back": demoted, "champion": restored})
    else:
        typer.echo(f"rolled back {demoted}; champion is now {restored}")


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to the root app."""
    app.add_typer(models_app)
