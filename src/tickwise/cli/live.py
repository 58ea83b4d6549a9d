"""`tickwise live [--until TIME] [--speed X]`: the whole live mode (Kite, or the simulator without credentials)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tickwise.bootstrap.login import require_kite_login
from tickwise.cli.context import state

if TYPE_CHECKING:
    from tickwise.bootstrap.live import LiveOptions, SessionReport
    from tickwise.config import Settings


def live(
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Stop at an IST clock time (10:30) or after market time (+45m). Default: 15:30."
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            min=0.1,
            max=10_000,
            help="Simulator only: simulated seconds per real second (default: broker.simulator.speed, 60).",
        ),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults", help="Simulator only: fault script ('10:05 abort; 10:20 stall 8s') or @file."
        ),
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", help="Comma-separated NSE symbols (default: trading.symbols or all)."),
    ] = None,
    json_only: Annotated[
        bool, typer.Option("--json", help="Print the session report as one JSON line.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Every-day mode: exit 0 at once on a weekend/holiday or after the close, else sleep "
            "until the pre-open (09:00 IST) and run the session.",
        ),
    ] = False,
    paper: Annotated[
        bool,
        typer.Option(
            "--paper",
            help="Also paper-trade the signals on the live ticks with the backtest's trade engine "
            "(paper_trades, paper_positions).",
        ),
    ] = False,
    today: Annotated[
        str | None, typer.Option("--today", envvar="TICKWISE_TODAY", hidden=True, help="Rehearse a date.")
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            min=1,
            max=3,
            help="Worker processes, each with its own Kite connection and a fixed share of the instruments "
            "(default: live.shards; null = one per core, at most 3, and 1 for a small universe).",
        ),
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", hidden=True, help="Run as shard I/N of a sharded session.")
    ] = None,
) -> None:
    """Stream ticks, build candles, compute features and signals into TimescaleDB until the session ends."""
    from tickwise.domain.errors import ConfigError

    settings = state.settings()
    require_kite_login(settings)  # one line naming the login command, before any work
    if until is not None:
        from tickwise.bootstrap.schedule import check_until

        check_until(until)  # the syntax, before anything starts (the real day is known once the clock is)
    script = faults
    if script and script.startswith("@"):
        try:
            script = Path(script[1:]).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the fault script {script[1:]}: {exc}") from None
    # After validating the options (a typo fails now, not after a night of waiting) and before
    # importing the live mode (heavy: a closed day must exit at once).
    if wait:
        from tickwise.bootstrap.credentials import uses_simulator
        from tickwise.cli.schedule import session_today

        if today is None and uses_simulator(settings):
            # The simulated session is the trading day after the last stored candle, on the simulator's
            # own clock: there is no wall-clock pre-open to wait for (`--today` rehearses a real day).
            typer.echo("simulator: the simulated session runs now (it does not follow the wall clock)")
        elif not session_today(settings, today):
            return
    from tickwise.bootstrap.live import LiveOptions
    from tickwise.bootstrap.shards import parse_shard

    try:
        place = parse_shard(shard) if shard is not None else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    options = LiveOptions(
        until=until,
        speed=speed,
        faults=script,
        symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else (),
        reload=state.reload_settings,  # SIGHUP: re-read the configuration files and the environment
        paper=paper,
        shard=place,
    )
    if place is None:
        from tickwise.bootstrap.shards import resolve_shard_count

        count = shards if shards is not None else asyncio.run(resolve_shard_count(settings, options.symbols))
        if count > 1:
            _run_sharded(settings, options, count, today=today, json_only=json_only)
            return
    report = asyncio.run(_main(settings, options))
    if not json_only:
        typer.echo(
            f"live session {report.day} ended ({report.ended_by}): {report.bars} bars, {report.signals} signals, "
            f"{report.ticks_accepted}/{report.ticks} ticks accepted, {report.gaps} gaps, {report.repairs} repairs "
            f"({report.repaired_bars} bars via REST), latency p50 {report.latency_ms_p50} ms p99 {report.latency_ms_p99} ms"
        )
        if report.paper is not None:
            p = report.paper
            typer.echo(
                f"paper session {p['run_id']}: {p['trades']} trades, net {p['net_pnl']} INR, "
                f"{p['signals']} signals taken, {p['open_positions']} open at the end"
            )
        if report.spilled_files_left:
            typer.echo(
                f"warning: {report.spilled_files_left} write batch(es) kept on disk; they are written on the next run"
            )
        if report.dropped_rows:
            typer.echo(
                f"warning: rows dropped (neither memory nor the spill directory could hold them): {report.dropped_rows}"
            )
        if report.repair_windows_left:
            typer.echo(
                f"warning: {report.repair_windows_left} repair window(s) left open; the next `tickwise live` repairs them first"
            )
    typer.echo(json.dumps(asdict(report), default=str))


def _run_sharded(
    settings: Settings, options: LiveOptions, count: int, *, today: str | None, json_only: bool
) -> None:
    """`tickwise live` over ``count`` shard processes under the supervisor (bootstrap/shards.py)."""
    from tickwise.bootstrap.shards import ShardSupervisor, live_command, run_shards

    command = live_command()
    if options.speed is not None:
        command += ["--speed", f"{options.speed:g}"]
    if options.faults:
        command += ["--faults", options.faults]
    if options.symbols:
        command += ["--symbols", ",".join(options.symbols)]
    if today is not None:
        command += ["--today", today]
    supervisor = ShardSupervisor(command, count, data_dir=Path(settings.system.data_dir), until=options.until)
    report = asyncio.run(run_shards(supervisor))
    summary = {
        "shards": [asdict(r) for r in report.shards],
        **{
            k: report.total(k)
            for k in ("bars", "signals", "ticks", "ticks_accepted", "gaps", "repairs", "errors")
        },
        "ok": report.ok,
    }
    if not json_only:
        for r in report.shards:
            s = r.report or {}
            typer.echo(
                f"shard {r.shard}/{count}: {s.get('bars', 0)} bars, {s.get('signals', 0)} signals, "
                f"{r.restarts} restart(s), exit {r.exit_codes[-1] if r.exit_codes else '?'}, "
                f"latency p99 {s.get('latency_ms_p99')} ms"
            )
    typer.echo(json.dumps(summary, default=str))
    if not report.ok:
        raise typer.Exit(1)


async def _main(settings: Settings, options: LiveOptions) -> SessionReport:
    from tickwise.bootstrap.live import run_live

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform/thread
            loop.add_signal_handler(sig, stop.set)
    return await run_live(settings, options, stop=stop)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("live")(live)
