"""`tickwise backtest --from --to [--model VERSION | --oos] [--capital] [--json]`."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tickwise.cli.context import state
from tickwise.cli.historical import FROM_HELP, TO_HELP, parse_instant
from tickwise.config import Settings
from tickwise.domain.errors import ConfigError, TickwiseError
from tickwise.domain.time import IST

if TYPE_CHECKING:
    from tickwise.bootstrap.backtest import BacktestResult


def backtest(
    from_: Annotated[str, typer.Option("--from", help=FROM_HELP)],
    to: Annotated[str, typer.Option("--to", help=TO_HELP)],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model version whose historical signals to trade (default: the out-of-sample set).",
        ),
    ] = None,
    oos: Annotated[
        bool,
        typer.Option(
            "--oos",
            help="Trade the out-of-sample signal set (signals.sample = 'oos'); the default without --model.",
        ),
    ] = False,
    capital: Annotated[
        float | None,
        typer.Option("--capital", min=1.0, help="Starting capital in rupees (default: backtest.capital)."),
    ] = None,
    json_only: Annotated[
        bool, typer.Option("--json", help="Print the run's summary as one JSON line.")
    ] = False,
    signals: Annotated[
        str,
        typer.Option(
            "--signals",
            help="historical; live: the signals `tickwise live` stored; or paper: the signals the paper "
            "session --paper-run acted on, as recorded (paper parity check).",
        ),
    ] = "historical",
    paper_run: Annotated[
        str | None,
        typer.Option("--paper-run", help="The paper session (run id) whose signals --signals paper replays."),
    ] = None,
    prices: Annotated[
        str,
        typer.Option(
            "--prices", help="bars (1-minute candles), or ticks: the stored ticks, as paper trading fills."
        ),
    ] = "bars",
    sizing: Annotated[
        str | None,
        typer.Option(
            "--sizing",
            help="meta (scale positions by the signals' meta-label size), none, or both: a meta-sized and "
            "an unsized run of the same signals, side by side (default: both, or none when "
            "backtest.sizing is none).",
        ),
    ] = None,
) -> None:
    """Trade stored historical signals on 1-minute candles, net of Zerodha intraday costs; record the run."""
    from tickwise.bootstrap.backtest import backtest_request, run_backtest

    settings = state.settings()
    if model is not None and oos:
        raise ConfigError("--model and --oos exclude each other: pick one signal set")
    start = parse_instant(from_, end=False, option="--from")
    end = parse_instant(to, end=True, option="--to")
    assert start is not None and end is not None
    if model is None and not oos and signals == "historical":
        oos = True  # every historical row tickwise writes is out of sample; --model picks one model's rows
    request = backtest_request(
        settings,
        start,
        end,
        model_version=model,
        oos=oos,
        capital=capital,
        signal_mode=signals,
        prices=prices,
        sizing=sizing,
        paper_run=paper_run,
    )
    result = asyncio.run(run_backtest(settings, request))
    summary = summary_of(result)
    if json_only:
        typer.echo(json.dumps(summary, default=str))
        return
    print_summary(summary)


def summary_of(result: BacktestResult) -> dict[str, Any]:
    """A recorded run as the flat summary `--json` prints (run, range, sizes, then every metric)."""
    return {
        "run_id": result.run.run_id,
        "model_version": result.run.model_version,
        "from": result.run.start.isoformat(),
        "to": result.run.end.isoformat(),
        "signals": result.signals,
        "bars": result.bars,
        "seconds": round(result.seconds, 3),
        **result.metrics,
    }


def print_oos_backtest(settings: Settings, first: date, last: date) -> None:
    """`tickwise historical`'s last step: trade the out-of-sample history it wrote, print the summary."""
    from tickwise.bootstrap.backtest import backtest_request, run_backtest

    start = datetime.combine(first, time.min, IST)
    end = datetime.combine(last + timedelta(days=1), time.min, IST)
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        "\n[bold]out-of-sample backtest[/bold] of the historical signals, net of Zerodha intraday costs"
    )
    try:
        result = asyncio.run(run_backtest(settings, backtest_request(settings, start, end, oos=True)))
    except TickwiseError as exc:  # the history is written; say why there is no backtest, don't fail the run
        console.print(f"no backtest: {exc}")
        return
    print_summary(summary_of(result))


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{100 * float(value):.2f} %"
    if kind == "inr":
        return f"Rs {float(value):,.2f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


ROWS = (
    ("net_pnl", "net PnL", "inr"),
    ("return_on_capital", "return on capital", "pct"),
    ("gross_pnl", "gross PnL", "inr"),
    ("charges", "charges (brokerage, STT, exchange, SEBI, stamp, GST)", "inr"),
    ("slippage", "slippage", "inr"),
    ("costs_share_of_gross", "costs as share of gross", "pct"),
    ("trades", "trades", ""),
    ("trades_per_day", "trades per session", ""),
    ("hit_rate", "hit rate (net > 0)", "pct"),
    ("avg_win", "average win", "inr"),
    ("avg_loss", "average loss", "inr"),
    ("profit_factor", "profit factor", ""),
    ("sharpe", "Sharpe (daily, annualised)", ""),
    ("sortino", "Sortino (daily, annualised)", ""),
    ("max_drawdown", "max drawdown", "pct"),
    ("max_drawdown_sessions", "longest drawdown (sessions)", ""),
    ("exposure", "exposure (time with a position)", "pct"),
    ("turnover", "turnover", "inr"),
)


def print_summary(summary: dict[str, Any]) -> None:
    console = Console(highlight=False, soft_wrap=True)
    sample = str(summary.get("sample", "unknown"))
    table = Table(title=f"backtest {summary['run_id']} · {summary['model_version']} · {sample}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, kind in ROWS:
        table.add_row(label, _fmt(summary.get(key), kind))
    console.print(table)
    if summary.get("sample_note"):
        console.print(f"{sample}: {summary['sample_note']}")
    reasons = summary.get("exit_reasons") or {}
    console.print("exits: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    skipped = summary.get("skipped") or {}
    if skipped:
        console.print("signals not traded: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    unsized = summary.get("unsized")
    if isinstance(unsized, dict):
        compare = Table(title=f"meta-label sizing: sized vs unsized ({summary.get('unsized_run')})")
        compare.add_column("metric")
        compare.add_column("meta-sized", justify="right")
        compare.add_column("unsized", justify="right")
        for key, label, kind in ROWS:
            if key in unsized:
                compare.add_row(label, _fmt(summary.get(key), kind), _fmt(unsized.get(key), kind))
        console.print(compare)
    console.print(
        f"{summary['signals']} signals, {summary['bars']} one-minute bars in {summary['seconds']} s; "
        f"report: tickwise report --backtest {summary['run_id']}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("backtest")(backtest)
