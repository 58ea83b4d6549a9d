"""Composition root of the historical mode: settings -> options, database (migrated), repositories,
calendar, model store, experiment tracker; and the commands' use cases (run, backfill, train, predict).

The broker is opened separately (``bootstrap.broker.open_broker``) and only by the steps that need it
(sync and backfill), so ``tickwise train`` and ``tickwise predict`` work without Kite or the simulator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime

import asyncpg
import pandas as pd
from loguru import logger

from tickwise.adapters.mlflow.tracker import MlflowTracker, tracking_uri
from tickwise.adapters.timescale.candle_flag_repository import TimescaleCandleFlagRepository
from tickwise.adapters.timescale.world_repository import TimescaleWorldRepository
from tickwise.bootstrap.compute import DerivePlan, derive_plan, open_trainer, training_loads
from tickwise.bootstrap.context import (
    HistoricalContext,
    candle_check_config,
    live_candle_checks,
    models_dir,
    open_historical,
    signal_generator,
    signal_options_of,
)
from tickwise.bootstrap.universe import default_symbols
from tickwise.config import Settings
from tickwise.core.ensemble import EnsembleSpec
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.fitting import TrainConfig
from tickwise.core.labels import LabelSpec
from tickwise.core.meta_training import MetaTrainConfig
from tickwise.core.regime import ChangePointSpec, RegimeSpec
from tickwise.core.retrain import RetrainDecision, retrain_decision
from tickwise.core.walk_forward import WalkForwardSpec
from tickwise.domain.instrument import Instrument
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.historical.candle_checks import CandleQuality, check_universe
from tickwise.pipelines.historical.oos import OosOutcome
from tickwise.pipelines.historical.options import HistoricalOptions
from tickwise.pipelines.historical.predict import PredictOutcome
from tickwise.pipelines.historical.progress import Reporter, StepProgress
from tickwise.pipelines.historical.run import (
    DeriveSpec,
    HistoricalSummary,
    derive,
    oos_step,
    predict_step,
    roll_up_all,
    sync_and_backfill,
    timed,
    train_step,
)
from tickwise.pipelines.historical.train import TrainOutcome
from tickwise.ports.experiment_tracker import ExperimentTracker
from tickwise.ports.historical_source import HistoricalSource
from tickwise.ports.hooks import PipelineHooks

# What the CLI needs from the historical mode (cli imports bootstrap only, see docs/architecture.md).
__all__ = [
    "HistoricalContext",
    "HistoricalSummary",
    "OosOutcome",
    "PredictOutcome",
    "Reporter",
    "TrainOutcome",
    "candle_check_config",
    "historical_options",
    "live_candle_checks",
    "mlflow_uri",
    "models_dir",
    "open_historical",
    "run_backfill",
    "run_historical",
    "run_predict",
    "run_train",
    "signal_generator",
    "signal_options_of",
]


def label_spec_of(settings: Settings) -> LabelSpec:
    lab = settings.trading.labeling
    return LabelSpec(
        atr_period=lab.atr_period,
        k_pt=lab.k_pt,
        k_sl=lab.k_sl,
        horizon=lab.horizon,
        vertical_label=lab.vertical_label,
        warmup_bars=lab.warmup_bars,
        cost_threshold=lab.cost_threshold,
    )


def train_config_of(settings: Settings) -> TrainConfig:
    mt = settings.model_training
    return TrainConfig(
        folds=mt.folds,
        trials=mt.trials,
        num_boost_round=mt.num_boost_round,
        early_stopping_rounds=mt.early_stopping_rounds,
        seed=mt.seed,
        embargo_bars=mt.embargo_bars,
        threshold=mt.signal_threshold,
        optuna_storage=mt.optuna_storage.get_secret_value(),
    )


def meta_train_config_of(settings: Settings) -> MetaTrainConfig:
    meta = settings.signals.meta
    return MetaTrainConfig(
        cv_folds=meta.cv_folds,
        min_events=meta.min_events,
        num_boost_round=meta.num_boost_round,
        cost_threshold=settings.trading.labeling.cost_threshold,
    )


def historical_options(settings: Settings) -> HistoricalOptions:
    """``settings`` mapped to the plain options the historical pipeline runs with."""
    trading = settings.trading
    return HistoricalOptions(
        symbols=tuple(trading.symbols),
        default_symbols=default_symbols(settings),
        backfill_days=trading.backfill_days,
        chunk_sessions=settings.compute.chunk_sessions,
        # a signal timeframe needs its roll-ups even when trading.timeframes does not list it
        timeframes=tuple(
            dict.fromkeys(
                (*trading.timeframes, *(tf for tf in trading.all_signal_timeframes if tf is not Timeframe.M1))
            )
        ),
        signal_timeframe=trading.signal_timeframe,
        signal_timeframes=trading.all_signal_timeframes,
        ensemble=ensemble_spec_of(settings),
        label_spec=label_spec_of(settings),
        train=train_config_of(settings),
        signals=signal_options_of(settings),
        meta=meta_train_config_of(settings),
        regime=regime_spec_of(settings),
    )


def regime_spec_of(settings: Settings) -> RegimeSpec | None:
    """``regimes`` -> the regime layer's fit settings, or None when ``regimes.enabled`` is false."""
    rs = settings.regimes
    if not rs.enabled:
        return None
    cp = rs.change_point
    return RegimeSpec(
        n_states=rs.n_states,
        n_iter=rs.n_iter,
        seed=settings.model_training.seed,
        max_fit_rows=rs.max_fit_rows,
        change_point=ChangePointSpec(
            hazard=cp.hazard, max_run_length=cp.max_run_length, change_window=cp.change_window
        ),
    )


def ensemble_spec_of(settings: Settings) -> EnsembleSpec | None:
    """``ensemble:`` as the pipeline's spec (None when disabled or with one signal timeframe)."""
    ens = settings.ensemble
    if not ens.enabled or len(settings.trading.all_signal_timeframes) < 2:
        return None
    schedule = WalkForwardSpec(
        refit_every=ens.refit_every_sessions,
        min_train_sessions=ens.min_train_sessions,
        min_train_events=ens.min_train_events,
        embargo=pd.Timedelta(ens.timeframe.delta * settings.model_training.embargo_bars),
    )
    return EnsembleSpec(timeframe=ens.timeframe, schedule=schedule, regularization=ens.regularization)


def mlflow_uri(settings: Settings) -> str:
    """The MLflow tracking URI in use (configured, or the file store under data_dir/mlruns)."""
    return tracking_uri(settings)


def candle_quality(
    settings: Settings, pool: asyncpg.Pool, hooks: PipelineHooks | None = None
) -> CandleQuality | None:
    """The candle checks of a run (None when ``data_quality.enabled`` is false)."""
    if not settings.data_quality.enabled:
        return None
    return CandleQuality(
        TimescaleCandleFlagRepository(pool), candle_check_config(settings), hooks or NullHooks()
    )


def tracker_factory(settings: Settings) -> Callable[[], ExperimentTracker]:
    """A factory, not a tracker: MLflow's import is slow and only a run that trains needs it."""
    return lambda: MlflowTracker(tracking_uri(settings))


async def run_historical(
    settings: Settings, reporter: StepProgress, *, url: str | None = None
) -> HistoricalSummary:
    """``tickwise historical``: sync, backfill, derive, train, predict, in order."""
    from tickwise.bootstrap.broker import open_broker

    summary = HistoricalSummary()
    began = time.perf_counter()
    async with open_historical(settings, url=url) as ctx:
        # compute.scheduler: inline, a pool of processes or Dask tasks. Opened before the backfill, so a
        # pool's workers start (imports, numba's cache) while the candles are fetched, not after.
        async with derive_plan_of(ctx) as plan:
            async with open_broker(settings) as broker:
                universe = await sync_and_backfill(
                    ctx, broker.rest, broker.rest, broker.now(), reporter, summary
                )
                universe += await _continuous_futures(settings, ctx, broker.rest, summary)
            await TimescaleWorldRepository(ctx.pool).replace_universe(universe)  # Grafana's instrument picker
            with timed(summary, "derive"):
                await derive(
                    ctx,
                    universe,
                    reporter,
                    summary,
                    quality=candle_quality(settings, ctx.pool),
                    executor=plan.executor,
                    task=plan.task,
                )
        decision = await _retrain_decision(ctx)
        summary.retrain = decision.reason
        # model_training.distributed: the boosters train on compute.scheduler's cluster
        async with open_trainer(settings, ctx.url) as trainer, training_loads(settings) as loads:
            # one load per timeframe, spilled to disk: the training step's is reused below
            # Historical signals come only from walk-forward fold models, out of sample (docs/models.md),
            # on every run (a run with new sessions extends the history); the champion candidate is
            # judged by the promotion rule, never by its own window.
            from tickwise.bootstrap.models import (
                govern_after_training,
                governance_for,
                oos_options_of,
                retire_superseded_folds,
            )

            governance = governance_for(ctx, actor="tickwise historical")

            async def train() -> None:
                with timed(summary, "train"):
                    summary.train = await train_step(
                        ctx, reporter, tracker_factory=tracker_factory(settings), trainer=trainer, loads=loads
                    )

            async def oos() -> None:
                with timed(summary, "oos"):
                    summary.oos = await oos_step(
                        ctx,
                        reporter,
                        oos_options_of(settings),
                        tracker_factory=tracker_factory(settings),
                        on_trained=lambda r: governance.record_trained(
                            r.model_version, "walk-forward fold model"
                        ),
                        trainer=trainer,
                        loads=loads,
                    )

            # The fold models have fixed parameters: they depend neither on the champion candidate
            # (trained on the model_training.retrain_every_days cadence) nor on its tuning, so they
            # train at the same time (issue 14): Optuna's trials run one after the other and leave
            # the fit workers idle between them, which the folds' fits fill. The training step starts first, so it reads
            # the primary timeframe's load and the fold models take it from there (``TrainingLoads``).
            with timed(summary, "train+oos"):
                await _both(train() if decision.due else None, oos())
        assert summary.oos is not None  # oos() ran to its end, or the TaskGroup raised
        with timed(summary, "governance"):
            summary.governance = await retire_superseded_folds(ctx, governance, summary.oos)
            if summary.train is not None:
                summary.governance += await govern_after_training(governance, summary.train)
    summary.timings["total"] = round(time.perf_counter() - began, 2)
    return summary


async def _both(first: Coroutine[None, None, None] | None, second: Coroutine[None, None, None]) -> None:
    """Run ``first`` (when given) and ``second`` at once, ``first`` started first; when one fails,
    the other is cancelled (a ``TaskGroup``'s rule) and the failure is raised as it was, not wrapped in
    the group: the command names it (e.g. a ``ModelError``) as it did when the steps ran in turn."""
    try:
        async with asyncio.TaskGroup() as group:
            if first is not None:
                group.create_task(first)
            group.create_task(second)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0]  # noqa: B904 - the step's own error and traceback, not the group's


async def _continuous_futures(
    settings: Settings, ctx: HistoricalContext, source: HistoricalSource, summary: HistoricalSummary
) -> list[Instrument]:
    """``trading.futures``: each underlying's continuous front-month series over the backfill window."""
    underlyings = settings.trading.futures
    if not underlyings or summary.first_day is None or summary.last_day is None:
        return []
    from tickwise.core.futures import RollRule
    from tickwise.pipelines.historical.futures import backfill_continuous

    synthetic, reports = await backfill_continuous(
        underlyings,
        ctx.instruments,
        ctx.candles,
        source,
        summary.first_day,
        summary.last_day,
        RollRule.of(settings.trading.futures_roll_sessions, settings.trading.futures_roll),
        ctx.calendar,
    )
    for r in reports:
        logger.info(
            "continuous {} ({}): {} days built, {} uncovered, {} failed, {} rolls",
            r.underlying,
            r.token,
            r.days_built,
            len(r.uncovered_days),
            len(r.failed_days),
            len(r.rolls),
        )
    return synthetic


def derive_plan_of(ctx: HistoricalContext) -> AbstractAsyncContextManager[DerivePlan]:
    """Where derive runs (``compute.scheduler``), bound to this context's database."""
    return derive_plan(ctx.settings, ctx.url, ctx.calendar, DeriveSpec.of(ctx.options))


async def _retrain_decision(ctx: HistoricalContext) -> RetrainDecision:
    """The retrain cadence (``model_training.retrain_every_days``) applied to the stored champion."""
    champion = await ctx.models.champion()
    return retrain_decision(
        champion_version=champion.model_version if champion else None,
        champion_created_at=champion.created_at if champion else None,
        champion_feature_set=champion.feature_set if champion else None,
        feature_set=FeatureCalculator().feature_set,
        now=datetime.now(UTC),
        every_days=ctx.settings.model_training.retrain_every_days,
    )


async def run_backfill(
    settings: Settings,
    reporter: StepProgress,
    *,
    first: date | None = None,
    last: date | None = None,
    symbols: Sequence[str] = (),
    timeframe: Timeframe = Timeframe.M1,
    url: str | None = None,
) -> HistoricalSummary:
    """``tickwise backfill``: sync, backfill ``timeframe``, and (for 1m) roll up to the higher timeframes."""
    from tickwise.bootstrap.broker import open_broker

    summary = HistoricalSummary()
    async with open_historical(settings, url=url) as ctx:
        async with open_broker(settings) as broker:
            universe = await sync_and_backfill(
                ctx,
                broker.rest,
                broker.rest,
                broker.now(),
                reporter,
                summary,
                first=first,
                last=last,
                symbols=symbols,
                timeframe=timeframe,
            )
            if timeframe is Timeframe.M1 and not symbols:  # the continuous futures series are 1m series
                universe += await _continuous_futures(settings, ctx, broker.rest, summary)
        if timeframe is Timeframe.M1:
            summary.rollup_rows = await roll_up_all(ctx, universe)
            quality = candle_quality(settings, ctx.pool)
            if quality is not None:
                summary.candle_flags = await check_universe(ctx.candles, universe, quality, ctx.calendar)
    return summary


async def run_train(
    settings: Settings,
    reporter: StepProgress,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    trials: int | None = None,
    url: str | None = None,
) -> TrainOutcome:
    """``tickwise train``: build the roll-ups, features and labels the stored candles lack (after a
    feature change: the new feature set's rows), then walk-forward training, MLflow run, models row,
    and the promotion rule. Candles come from ``tickwise historical`` or ``tickwise backfill``."""
    from tickwise.bootstrap.models import govern_after_training, governance_for
    from tickwise.pipelines.universe import select_universe

    async with open_historical(settings, url=url) as ctx:
        universe = await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
        async with derive_plan_of(ctx) as plan:  # incremental: writes only missing rows
            await derive(
                ctx,
                universe,
                reporter,
                HistoricalSummary(),
                quality=candle_quality(settings, ctx.pool),
                executor=plan.executor,
                task=plan.task,
            )
        # model_training.distributed; the load spilled to disk
        async with open_trainer(settings, ctx.url) as trainer, training_loads(settings) as loads:
            outcome = await train_step(
                ctx,
                reporter,
                start=start,
                end=end,
                trials=trials,
                tracker_factory=tracker_factory(settings),
                trainer=trainer,
                loads=loads,
            )
        await govern_after_training(governance_for(ctx, actor="tickwise train"), outcome)
        return outcome


async def run_predict(
    settings: Settings,
    reporter: StepProgress,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    version: str | None = None,
    url: str | None = None,
) -> PredictOutcome:
    """``tickwise predict``: batch signals (mode historical) with a model version (champion by default)."""
    async with open_historical(settings, url=url) as ctx:
        return await predict_step(ctx, reporter, start=start, end=end, version=version)
