"""Historical-mode commands: ``tickwise historical``, ``backfill``, ``train``, ``predict``.

Dates are IST: ``YYYY-MM-DD`` (a ``--to`` date includes that whole day) or ``YYYY-MM-DD HH:MM``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tickwise.bootstrap.login import require_kite_login
from tickwise.cli.context import state
from tickwise.config import Settings
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

if TYPE_CHECKING:  # the composition root is imported when a command runs, not when the CLI starts
    from tickwise.bootstrap.historical import OosOutcome, TrainOutcome

FROM_HELP = "Start (IST): YYYY-MM-DD or 'YYYY-MM-DD HH:MM'."
TO_HELP = "End (IST): YYYY-MM-DD (the whole day is included) or 'YYYY-MM-DD HH:MM' (exclusive)."


def parse_instant(value: str | None, *, end: bool, option: str) -> datetime | None:
    """A CLI date/time in IST; a bare ``--to`` date means the start of the next day."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=IST)
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ConfigError(f"{option} {value!r}: expected YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (IST)") from None
    return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r}: expected a date YYYY-MM-DD (IST)") from None


def _console() -> Console:
    # soft_wrap: printed SQL and commands stay on one line each, so they can be copied as they are.
    return Console(stderr=False, highlight=False, soft_wrap=True)


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.{digits}f}"
    return str(value)


def _ist(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(IST):%Y-%m-%d %H:%M}"


def _where_to_look(console: Console, settings: Settings, version: str | None) -> None:
    from tickwise.bootstrap.database import database_url, redact_url
    from tickwise.bootstrap.historical import mlflow_uri

    uri = redact_url(mlflow_uri(settings))  # a tracking server's URI may carry user:password
    console.print("\n[bold]Where to look[/bold]")
    try:
        dsn = database_url(settings, start=False)
    except Exception:  # the summary must not fail on a cosmetic lookup
        dsn = "$(tickwise db url)"
    # Without a version: the out-of-sample history (each row names its walk-forward fold model).
    version_sql = f"s.model_version = '{version}'" if version else "s.sample = 'oos'"
    console.print(f'  psql "$(tickwise db url)"        # {dsn.split("@")[-1]}')
    console.print(
        "  SELECT model_version, status, metrics->>'holdout_auc' AS holdout_auc, metrics->>'oos_auc' AS oos_auc\n"
        "    FROM models ORDER BY created_at DESC;"
    )
    console.print(
        "  SELECT s.time, s.model_version, s.sample, s.direction, s.confidence, f.rsi_14, l.label, l.ret\n"  # nosec B608: a constant example query printed for the user, nothing interpolated
        "    FROM signals s\n"
        "    JOIN features f USING (instrument_token, timeframe, time)\n"
        "    JOIN labels l USING (instrument_token, timeframe, time)\n"
        f"   WHERE {version_sql} AND s.mode = 'historical'\n"
        "     AND f.feature_set = s.feature_set AND l.side = s.direction\n"
        "   ORDER BY s.time DESC LIMIT 20;"
    )
    prefix = "MLFLOW_ALLOW_FILE_STORE=true " if uri.startswith("file:") else ""
    console.print(f"  {prefix}mlflow ui --backend-store-uri {uri}")


def _train_table(console: Console, outcome: TrainOutcome) -> None:
    m = outcome.metrics
    table = Table(
        title=f"model {outcome.model_version} ({outcome.status}{', already trained' if outcome.skipped else ''})"
    )
    table.add_column("metric")
    table.add_column("CV (mean of folds)", justify="right")
    table.add_column("holdout", justify="right")
    for key in (
        "logloss",
        "auc",
        "long_auc",
        "short_auc",
        "long_precision",
        "short_precision",
        "trades",
        "gross_ret_mean",
        "cost_mean",
        "net_ret_mean",
        "net_pnl_inr",
    ):
        digits = 0 if key in ("trades", "net_pnl_inr") else 4
        table.add_row(
            key,
            _fmt(m.get(f"oos_{key}", float("nan")), digits),
            _fmt(m.get(f"holdout_{key}", float("nan")), digits),
        )
    console.print(table)
    console.print(
        f"trained on {outcome.rows:,} bars, {outcome.features} features, "
        f"{_ist(outcome.trained_from)} .. {_ist(outcome.trained_to)} IST; mlflow run {outcome.mlflow_run_id}"
    )


def _oos_summary(console: Console, oos: OosOutcome, governance: list[str]) -> None:
    """The out-of-sample history: fold models, rows, pooled AUC; then the promotion decisions."""
    if oos.note:
        console.print(f"out-of-sample history: {oos.note}")
    else:
        auc = oos.metrics.get("oos_auc", float("nan"))
        console.print(
            f"out-of-sample signals (historical, sample 'oos'): {oos.rows:,} rows from {len(oos.folds)} "
            f"walk-forward fold models, {oos.longs:,} long, {oos.shorts:,} short; "
            f"pooled out-of-sample AUC {_fmt(auc)} over {int(oos.metrics.get('oos_events', 0)):,} labelled bars"
        )
        if "oos_meta_auc" in oos.metrics:  # meta-labeling (docs/models.md#meta-labeling)
            console.print(
                f"  meta model: out-of-sample AUC {_fmt(oos.metrics['oos_meta_auc'])} over "
                f"{int(oos.metrics.get('oos_meta_events', 0)):,} proposals; {oos.meta_labels:,} labels.meta set"
            )
        first, last = oos.folds[0], oos.folds[-1]
        console.print(
            f"  scored {_ist(first.score_from)} .. end, each bar after its fold's labels + {oos.embargo} embargo; "
            f"last fold {last.model_version} trained to {_ist(last.trained_to)}"
        )
        for line in regime_lines(oos.regimes):
            console.print(f"  {line}")
    # The other signal timeframes and the ensemble (docs/models.md, "Several timeframes")
    for label, other in [
        *oos.timeframes.items(),
        *([("ensemble " + oos.ensemble.timeframe, oos.ensemble)] if oos.ensemble else []),
    ]:
        if other.note and not other.folds:
            console.print(f"  {label}: {other.note}")
            continue
        console.print(
            f"  {label}: {other.rows:,} out-of-sample rows from {len(other.folds)} fold models, "
            f"{other.longs:,} long, {other.shorts:,} short; pooled AUC {_fmt(other.metrics.get('oos_auc', float('nan')))} "
            f"over {int(other.metrics.get('oos_events', 0)):,} labelled bars"
        )
    for line in governance:
        console.print(f"promotion: {line}")


def regime_lines(regimes: Mapping[str, object]) -> list[str]:
    """The out-of-sample label-outcome P&L by regime state, and without/with the regime filter."""

    def one(m: Mapping[str, object]) -> str:
        trades, pnl = m.get("trades"), m.get("net_pnl_inr")
        hit = m.get("hit_rate_net")
        hit_text = f"{100 * hit:.1f} %" if isinstance(hit, float) and hit == hit else "-"
        if not isinstance(trades, (int, float)) or not isinstance(pnl, (int, float)):
            return "-"
        return f"{int(trades):,} trades, hit {hit_text}, net Rs {pnl:,.0f}"

    by_state = regimes.get("by_state")
    if not isinstance(by_state, list) or not by_state:
        return []
    parts = [
        f"{'unknown' if row.get('regime_state') is None else row.get('regime_state')}: {one(row)}"
        for row in by_state
        if isinstance(row, Mapping)
    ]
    lines = [
        "out of sample by regime state at the bar (0 = calmest; label outcomes, net): " + "; ".join(parts)
    ]
    unfiltered, filtered = regimes.get("unfiltered"), regimes.get("filtered")
    if isinstance(unfiltered, Mapping) and isinstance(filtered, Mapping):
        lines.append(f"regime filter: without {one(unfiltered)}; with {one(filtered)}")
    return lines


def historical() -> None:
    """The whole historical mode: instruments sync, backfill, roll-ups, features, labels, train, predict."""
    from tickwise.bootstrap.historical import Reporter, run_historical

    settings = state.settings()
    require_kite_login(settings)  # one line naming the login command, before any work
    console = _console()
    with Reporter(Console(stderr=True)) as reporter:
        summary = asyncio.run(run_historical(settings, reporter))
    bf, integ = summary.backfill, summary.integrity
    console.print(
        f"\n[bold]historical mode done[/bold] in {summary.timings.get('total', 0):.0f} s: "
        f"{summary.instruments} instruments, sessions {summary.first_day} .. {summary.last_day}"
    )
    if bf is not None:
        console.print(
            f"backfill: {bf.fetched_days} instrument-days fetched in {bf.fetch_ranges} ranges "
            f"({bf.already_stored} already stored), {bf.rows_written:,} candles written, {bf.rows_rejected} rejected"
        )
    if integ is not None:
        console.print(
            f"integrity: {integ.complete_sessions}/{integ.sessions} complete sessions, "
            f"{len(integ.partial_sessions)} partial, {len(integ.empty_sessions)} empty, "
            f"{integ.invalid_candles} invalid candles"
        )
    if summary.candle_flags is not None:
        console.print(f"data quality: {summary.candle_flags.summary()}")
    rollups = ", ".join(f"{k}: {v:,}" for k, v in summary.rollup_rows.items())
    console.print(
        f"rows written: rollups ({rollups}), features {summary.feature_rows:,}, labels {summary.label_rows:,}"
    )
    if summary.train is not None:
        _train_table(console, summary.train)
    elif summary.retrain:
        console.print(f"train: {summary.retrain}")
    if summary.predict is not None:
        p = summary.predict
        console.print(
            f"signals (historical, {p.model_version}): {p.rows:,} rows, {p.longs:,} long, {p.shorts:,} short"
        )
    if summary.oos is not None:
        _oos_summary(console, summary.oos, summary.governance)
        if summary.first_day is not None and summary.last_day is not None:
            from tickwise.cli.backtest import print_oos_backtest

            print_oos_backtest(settings, summary.first_day, summary.last_day)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in summary.timings.items())
    console.print(f"timings: {timings}")
    _where_to_look(console, settings, None)


def backfill(
    from_: Annotated[str | None, typer.Option("--from", help="First session (IST date YYYY-MM-DD).")] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Last session (IST date); default: the last completed one.")
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option(
            "--symbols", help="Comma-separated NSE symbols; default: trading.symbols or the universe."
        ),
    ] = None,
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="1m (rolled up to 5m/15m/60m) or 5m, 15m, 60m, 1d.")
    ] = "1m",
) -> None:
    """Gap-aware, idempotent candle backfill: fetch only the sessions not yet stored."""
    from tickwise.bootstrap.historical import Reporter, run_backfill

    settings = state.settings()
    require_kite_login(settings)  # one line naming the login command, before any work
    try:
        tf = Timeframe.parse(timeframe)
    except ValueError as exc:
        raise ConfigError(f"--timeframe: {exc}") from None
    first, last = _day(from_, "--from"), _day(to, "--to")
    if first and last and last < first:
        raise ConfigError(f"--to {last} is before --from {first}")
    wanted = tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else ()
    with Reporter(Console(stderr=True)) as reporter:
        summary = asyncio.run(
            run_backfill(settings, reporter, first=first, last=last, symbols=wanted, timeframe=tf)
        )
    bf = summary.backfill
    assert bf is not None
    _console().print(
        f"backfill {tf} {summary.first_day} .. {summary.last_day}, {summary.instruments} instruments: "
        f"{bf.fetched_days} instrument-days fetched in {bf.fetch_ranges} ranges, {bf.already_stored} already stored, "
        f"{bf.rows_written:,} candles written, {bf.rows_rejected} rejected"
    )
    if summary.candle_flags is not None:
        _console().print(f"data quality: {summary.candle_flags.summary()}")


def train(
    from_: Annotated[str | None, typer.Option("--from", help=FROM_HELP)] = None,
    to: Annotated[str | None, typer.Option("--to", help=TO_HELP)] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Optuna trials (default model_training.trials).")
    ] = None,
) -> None:
    """Walk-forward training on stored features and labels: MLflow run, models row, champion decision."""
    from tickwise.bootstrap.historical import Reporter, run_train

    settings = state.settings()
    start, end = parse_instant(from_, end=False, option="--from"), parse_instant(to, end=True, option="--to")
    with Reporter(Console(stderr=True)) as reporter:
        outcome = asyncio.run(run_train(settings, reporter, start=start, end=end, trials=trials))
    console = _console()
    _train_table(console, outcome)
    _where_to_look(console, settings, outcome.model_version)


def predict(
    from_: Annotated[str | None, typer.Option("--from", help=FROM_HELP)] = None,
    to: Annotated[str | None, typer.Option("--to", help=TO_HELP)] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model version; default: the champion.")
    ] = None,
) -> None:
    """Batch signals (mode historical) for a range with a given model version."""
    from tickwise.bootstrap.historical import Reporter, run_predict

    settings = state.settings()
    start, end = parse_instant(from_, end=False, option="--from"), parse_instant(to, end=True, option="--to")
    with Reporter(Console(stderr=True)) as reporter:
        outcome = asyncio.run(run_predict(settings, reporter, start=start, end=end, version=model))
    console = _console()
    console.print(
        f"signals written: {outcome.rows:,} (model {outcome.model_version}, mode historical, "
        f"{outcome.instruments} instruments, {outcome.longs:,} long, {outcome.shorts:,} short) in {outcome.seconds:.1f} s"
    )
    if outcome.in_sample:
        typer.echo(
            f"warning: {outcome.in_sample:,} of these rows score bars inside model {outcome.model_version}'s own "
            "training window (plus the embargo); they are stored with sample = 'in_sample' and say nothing "
            "about out-of-sample performance (see docs/models.md)",
            err=True,
        )
    _where_to_look(console, settings, outcome.model_version)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("historical")(historical)
    app.command("backfill")(backfill)
    app.command("train")(train)
    app.command("predict")(predict)
