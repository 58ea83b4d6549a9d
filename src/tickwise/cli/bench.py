"""`tickwise bench ingest|features|live|codec`: benchmarks whose last printed line is one JSON object.

Add a benchmark with ``@bench_app.command("name")`` in this module; print human lines first (unless
``--json``) and finish with :func:`emit`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from tickwise.cli.context import state

bench_app = typer.Typer(
    help="Benchmarks; the last line printed is one JSON object of figures.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print only the JSON line.")]


def emit(figures: dict[str, Any], *, json_only: bool) -> None:
    """Print the figures (human lines unless ``json_only``), then the JSON object as the last line."""
    if not json_only:
        for key, value in figures.items():
            typer.echo(f"{key:>28}: {value}")
    typer.echo(json.dumps(figures, sort_keys=False))


@bench_app.command("ingest")
def ingest(
    rows: Annotated[
        int, typer.Option("--rows", min=1, max=20_000_000, help="Candle rows to write.")
    ] = 200_000,
    instruments: Annotated[int, typer.Option("--instruments", min=1, help="Instruments the rows span.")] = 50,
    json_only: JsonOption = False,
) -> None:
    """Candle bulk write rows/s (fresh and re-written) vs a plain `psql \\copy` of the same rows."""
    from tickwise.bootstrap.bench import ingest_bench

    emit(ingest_bench(state.settings(), rows=rows, instruments=instruments), json_only=json_only)


@bench_app.command("labels")
def labels(
    events: Annotated[
        int, typer.Option("--events", min=1, max=50_000_000, help="Events to label.")
    ] = 1_000_000,
    json_only: JsonOption = False,
) -> None:
    """Triple-barrier kernel time for N long events (H = 10) on a random walk, and the label shares."""
    from tickwise.bootstrap.bench import labels_bench

    emit(labels_bench(events=events), json_only=json_only)


@bench_app.command("codec")
def codec(
    ticks: Annotated[
        int, typer.Option("--ticks", min=100, max=5_000_000, help="Full-mode ticks to decode.")
    ] = 50_000,
    json_only: JsonOption = False,
) -> None:
    """Kite binary decoder throughput: full-mode ticks/s on one core (simulated market and random frames)."""
    from tickwise.bootstrap.bench import codec_bench

    emit(codec_bench(ticks=ticks), json_only=json_only)


@bench_app.command("checks")
def checks(
    instruments: Annotated[int, typer.Option("--instruments", min=1, help="Bars per minute.")] = 1000,
    minutes: Annotated[int, typer.Option("--minutes", min=1, max=375, help="Minutes checked.")] = 10,
    json_only: JsonOption = False,
) -> None:
    """Live candle checks of one closed minute for N instruments, against the previous per-bar path."""
    from tickwise.bench.checks import run_checks_bench

    emit(run_checks_bench(instruments=instruments, minutes=minutes), json_only=json_only)


@bench_app.command("features")
def features(
    candles: Annotated[
        int, typer.Option("--candles", min=10_000, max=20_000_000, help="1m candles of one instrument.")
    ] = 1_000_000,
    instruments: Annotated[
        int, typer.Option("--instruments", min=1, help="Live streams updated per bar.")
    ] = 1000,
    json_only: JsonOption = False,
) -> None:
    """Full feature set candles/s (vs the bare TA-Lib calls) and one live bar update for N instruments."""
    from tickwise.bootstrap.bench import features_bench

    emit(features_bench(candles=candles, instruments=instruments), json_only=json_only)


@bench_app.command("compile")
def compile_(
    warm: Annotated[
        bool, typer.Option("--warm", help="Use the existing numba cache instead of an empty one.")
    ] = False,
    json_only: JsonOption = False,
) -> None:
    """Numba compile time of every kernel entry on an empty cache (a fresh clone), and its signatures."""
    from tickwise.bootstrap.warm import compile_report

    emit(compile_report(cold=not warm), json_only=json_only)


@bench_app.command("live")
def live(
    instruments: Annotated[
        int,
        typer.Option(
            "--instruments", min=1, max=9000, help="Full-mode instruments streamed (3,000 per shard)."
        ),
    ] = 500,
    minutes: Annotated[
        int, typer.Option("--minutes", min=1, max=375, help="Simulated session minutes measured.")
    ] = 5,
    db: Annotated[
        bool,
        typer.Option(
            "--db/--no-db",
            help="Write through the live table writers into the database and time up to the signal's "
            "commit (rows kept in a reserved 1989 window, removed after); --no-db: in-memory sinks.",
        ),
    ] = True,
    shards: Annotated[
        int,
        typer.Option("--shards", min=1, max=3, help="Processes, each replaying its share (as live.shards)."),
    ] = 1,
    margin: Annotated[
        float | None,
        typer.Option(
            "--feed-close-margin",
            min=0.0,
            help="live.feed_close_margin_s of the replay (default 0.3; omit the rule with --grace-only).",
        ),
    ] = 0.3,
    grace_only: Annotated[
        bool, typer.Option("--grace-only", help="Close quiet instruments' bars on the clock's grace only.")
    ] = False,
    gc_freeze: Annotated[
        bool,
        typer.Option(
            "--gc-freeze/--no-gc-freeze",
            help="The engine's minute pauses the garbage collector and freezes what it keeps (as "
            "`tickwise live`); --no-gc-freeze: Python's default collector, for comparison.",
        ),
    ] = True,
    market_in_process: Annotated[
        bool,
        typer.Option(
            "--market-in-process",
            help="Build the simulated market in the process that runs the engine (the fifth session's "
            "layout: its RSS includes the market); default: in a child, so the RSS is the engine's.",
        ),
    ] = False,
    trace_memory: Annotated[
        int,
        typer.Option(
            "--trace-memory",
            min=0,
            help="Report the N source lines holding the most memory the engine allocated (tracemalloc; slow).",
        ),
    ] = 0,
    predict_threads: Annotated[
        int | None,
        typer.Option(
            "--predict-threads",
            min=1,
            help="Threads scoring a minute's rows (live.predict_threads; default: the shard's spare cores).",
        ),
    ] = None,
    json_only: JsonOption = False,
) -> None:
    """Live pipeline on the simulated market: candle-close and minute-end -> signal latency p50/p99, ticks/s, RSS."""
    from tickwise.bootstrap.bench import live_bench

    figures = live_bench(
        state.settings(),
        instruments=instruments,
        minutes=minutes,
        db=db,
        shards=shards,
        feed_close_margin_s=None if grace_only else margin,
        freeze_gc=gc_freeze,
        market_in_process=market_in_process,
        trace_memory=trace_memory,
        predict_threads=predict_threads,
    )
    emit(figures, json_only=json_only)


@bench_app.command("backtest")
def backtest(
    instruments: Annotated[int, typer.Option("--instruments", min=1, max=1000, help="Instruments.")] = 11,
    sessions: Annotated[int, typer.Option("--sessions", min=1, max=80, help="Sessions of 1m bars.")] = 60,
    json_only: JsonOption = False,
) -> None:
    """Trade engine over demo-sized synthetic data (in memory): bars/s, signals/s, trades/s."""
    from tickwise.bench.backtest import run_backtest_bench

    emit(run_backtest_bench(instruments=instruments, sessions=sessions), json_only=json_only)


def register(app: typer.Typer) -> None:
    """Add the bench command group to the root app."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("historical")
def historical(
    instruments: Annotated[
        int,
        typer.Option("--instruments", min=2, max=9000, help="Instruments (simulated equities + NIFTY 50)."),
    ] = 11,
    sessions: Annotated[
        int, typer.Option("--sessions", min=1, max=2500, help="Sessions of 1m history.")
    ] = 60,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="inline, processes or tcp://host:8786 (default: compute.scheduler)."
        ),
    ] = None,
    chunk_sessions: Annotated[
        int | None,
        typer.Option(
            "--chunk-sessions", min=1, help="Sessions per derive chunk (default: compute.chunk_sessions)."
        ),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option(
            "--stages",
            help="Comma-separated, in order, starting with backfill: backfill, checks, derive, train, "
            "predict (default backfill,checks,derive; train and predict use a lean model: 2 trials, "
            "no meta model, no regimes, no ensemble).",
        ),
    ] = None,
    seed: Annotated[
        str,
        typer.Option(
            "--seed",
            help="How the 1m candles arrive: rest (the Kite REST client against the simulator) or "
            "direct (the simulator's generator in this process, through the same COPY path).",
        ),
    ] = "rest",
    json_only: JsonOption = False,
) -> None:
    """Historical stages into a throw-away database: wall time, peak RSS, rows/s per stage.

    Each stage's figures are printed to stderr as a JSON line as soon as the stage ends."""
    from tickwise.bootstrap.bench import historical_bench, historical_bench_options

    def on_stage(figures: dict[str, object]) -> None:
        print(json.dumps(figures), file=sys.stderr, flush=True)

    try:
        historical_bench_options(stages, seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    figures = historical_bench(
        state.settings(),
        instruments=instruments,
        sessions=sessions,
        scheduler=scheduler,
        chunk_sessions=chunk_sessions,
        stages=stages,
        seed=seed,
        on_stage=on_stage,
    )
    emit(figures, json_only=json_only)
