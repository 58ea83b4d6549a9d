"""Collect a recorded backtest into :class:`ReportData`: series, tables, model and parity sections.

In-sample numbers are labelled: a run over the OOS signal set is out-of-sample; a run of one model is
out-of-sample only when the model's training window ended before the run's ``from``, in-sample when
the run lies inside it, partly in-sample when they overlap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd

from tickwise.core.regime.performance import performance_by_regime
from tickwise.core.trading.metrics import confidence_deciles, daily_pnl, monthly_returns
from tickwise.domain.errors import DataValidationError
from tickwise.ports.backtests import BacktestRepository, BacktestRun
from tickwise.ports.reports import ParitySource, ReportData, SizingComparison
from tickwise.ports.repositories import ModelRecord, ModelRepository

Importance = Callable[[ModelRecord], Awaitable[Sequence[tuple[str, float]] | None]]
# The regime state at each trade's entry (pipelines.backtest.regimes.regime_at_entry), NaN = unknown.
RegimesAtEntry = Callable[[pd.DataFrame], Awaitable[np.ndarray]]


def sample_of(
    model_version: str, start: datetime, end: datetime, model: ModelRecord | None
) -> tuple[str, str]:
    """A run's sample label ("out-of-sample", "IN-SAMPLE", "partly in-sample", "unknown") and why."""
    if model_version == "oos":
        return (
            "out-of-sample",
            "every signal was scored by a model whose training window ended before its bar",
        )
    if model is None or model.trained_to is None:
        return "unknown", f"model {model_version} records no training window"
    if model.trained_to < start:
        return "out-of-sample", (
            f"model {model.model_version} was trained up to {model.trained_to:%Y-%m-%d %H:%M} UTC, before the run"
        )
    trained_from = model.trained_from or model.trained_to
    if trained_from <= start and end <= model.trained_to:
        return "IN-SAMPLE", (
            f"the run lies inside model {model.model_version}'s training window: these figures overstate "
            "what the model can do"
        )
    return "partly in-sample", (
        f"the run overlaps model {model.model_version}'s training window "
        f"({trained_from:%Y-%m-%d} .. {model.trained_to:%Y-%m-%d}): treat the figures as optimistic"
    )


async def collect_report(
    run_id: str | None,
    *,
    runs: BacktestRepository,
    models: ModelRepository,
    parity: ParitySource,
    importance: Importance,
    regimes: RegimesAtEntry | None = None,
) -> ReportData:
    """The report of ``run_id`` (default: the latest run)."""
    run = await (runs.get(run_id) if run_id else runs.latest())
    if run is None:
        what = f"backtest run {run_id!r}" if run_id else "any backtest run"
        raise DataValidationError(f"cannot find {what}: run `tickwise backtest --from ... --to ...` first")
    trades = await runs.trades(run.run_id)
    equity = await runs.equity(run.run_id)
    capital = float(run.params.get("capital", 1.0))
    session_days = [date.fromisoformat(d) for d in run.metrics.get("session_days", [])]
    daily = daily_pnl(trades, session_days)
    model_version = run.model_version
    if model_version == "oos":
        champion = await models.champion()
        model = champion
        note_model = "the current champion (the OOS set was scored by several fold models)"
    else:
        model = await models.get(model_version)
        note_model = f"model {model_version}"
    sample, sample_note = sample_of(
        model_version, run.start, run.end, None if model_version == "oos" else model
    )
    ranked = await importance(model) if model is not None else None
    importance_note = (
        f"LightGBM gain of {note_model}, both side models summed"
        if ranked
        else f"not available: no model bundle with feature importances for {note_model}"
    )
    by_day = await parity.parity_by_day()
    parity_note = (
        "bars scored by the same model in both live and historical mode, per IST day (latest 30 days)"
        if not by_day.empty
        else "no bar has both a live and a historical signal yet: run `tickwise live` and then "
        "`tickwise predict` over the same session to compare them"
    )
    sizing = await sizing_comparison(run, equity, runs)
    by_regime, regimes_note = await _by_regime(trades, regimes)
    return ReportData(
        run_id=run.run_id,
        model_version=model_version,
        sample=sample,
        sample_note=sample_note,
        start=run.start,
        end=run.end,
        created_at=run.created_at,
        params=run.params,
        metrics=run.metrics,
        equity=equity,
        daily=daily,
        monthly=monthly_returns(daily, capital),
        deciles=confidence_deciles(trades),
        trades=trades,
        importance=ranked,
        importance_note=importance_note,
        parity=None if by_day.empty else by_day,
        parity_note=parity_note,
        regimes=by_regime,
        regimes_note=regimes_note,
        sizing=sizing,
    )


async def sizing_comparison(
    run: BacktestRun, equity: pd.DataFrame, runs: BacktestRepository
) -> SizingComparison | None:
    """The meta-sized run ``run`` beside its unsized companion (``metrics.unsized_run``), or None."""
    companion_id = run.metrics.get("unsized_run")
    if not companion_id:
        return None
    companion = await runs.get(str(companion_id))
    if companion is None:  # deleted since: say nothing rather than compare with nothing
        return None
    keys = [k for k in run.metrics.get("unsized", {})]
    return SizingComparison(
        unsized_run_id=companion.run_id,
        sized={k: run.metrics.get(k) for k in keys},
        unsized={k: companion.metrics.get(k) for k in keys},
        sized_equity=equity,
        unsized_equity=await runs.equity(companion.run_id),
        meta_sized_signals=int(run.metrics.get("meta_sized_signals", 0)),
    )


async def _by_regime(trades: pd.DataFrame, regimes: RegimesAtEntry | None) -> tuple[pd.DataFrame | None, str]:
    """Performance by regime state at entry, and the note the report prints under it."""
    if regimes is None or trades.empty:
        return None, "no trades to group by regime"
    states = await regimes(trades)
    if not np.isfinite(states).any():
        return None, (
            "not available: no trade's model has a regime layer (models trained before regimes, or "
            "`regimes.enabled: false`)"
        )
    unknown = int((~np.isfinite(states)).sum())
    note = (
        "regime state at entry: the filtered HMM state (0 = calmest) of the signal's bar, from the regime "
        "layer of the model that scored it; states of different fold models are comparable because each "
        "fold orders its states by volatility"
    )
    if unknown:
        note += f"; {unknown} trade(s) without a regime (a model without a layer, or a warm-up bar)"
    return performance_by_regime(trades, states), note


def importance_shares(
    names: Sequence[str], gains: Sequence[Sequence[float]], top: int = 20
) -> list[tuple[str, float]]:
    """Feature importance as shares of the total gain (summed over side models), largest first."""
    total = pd.Series(0.0, index=list(names))
    for g in gains:
        total += pd.Series(list(g), index=list(names), dtype="float64")
    if total.sum() <= 0:
        return []
    shares = (total / total.sum()).sort_values(ascending=False).head(top)
    return [(str(k), float(v)) for k, v in shares.items()]
