"""Composition root of model governance: the ``models`` table, ``model_events``, the out-of-sample
comparison over stored data and MLflow's registry aliases, wired into ``ModelGovernance``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
from loguru import logger

from tickwise.adapters.mlflow.registry import MlflowAliasRegistry
from tickwise.adapters.timescale.model_event_repository import TimescaleModelEventRepository
from tickwise.bootstrap.historical import HistoricalContext, open_historical
from tickwise.config import Settings
from tickwise.core.fitting import TrainConfig
from tickwise.core.model import ModelArtifact
from tickwise.core.promotion import PromotionRule
from tickwise.core.walk_forward import WalkForwardSpec
from tickwise.pipelines.governance import GovernanceOutcome, ModelGovernance
from tickwise.pipelines.historical.comparison import OutOfSampleComparison
from tickwise.pipelines.historical.oos import OosOptions, OosOutcome
from tickwise.pipelines.historical.train import TrainOutcome
from tickwise.pipelines.models import load_model, signal_generator
from tickwise.pipelines.universe import select_universe
from tickwise.ports.model_events import ModelEvent
from tickwise.ports.repositories import ModelRecord

# What the CLI needs from model governance (cli imports bootstrap only, see docs/architecture.md).
__all__ = [
    "GovernanceContext",
    "GovernanceOutcome",
    "ModelEvent",
    "ModelGovernance",
    "ModelRecord",
    "comparison_for",
    "embargo_of",
    "govern_after_training",
    "governance_for",
    "oos_options_of",
    "open_governance",
    "promotion_rule_of",
    "retire_superseded_folds",
]


def embargo_of(settings: Settings) -> timedelta:
    """``model_training.embargo_bars`` bars of the signal timeframe, as wall-clock time."""
    delta: timedelta = settings.trading.signal_timeframe.delta
    return delta * settings.model_training.embargo_bars


def oos_options_of(settings: Settings) -> OosOptions:
    """``walk_forward:`` (and the embargo, seed and threshold of ``model_training:``) as pipeline options."""
    wf, mt = settings.walk_forward, settings.model_training
    schedule = WalkForwardSpec(
        refit_every=wf.refit_every_sessions,
        min_train_sessions=wf.min_train_sessions,
        window=wf.window,
        train_sessions=wf.train_sessions,
        embargo=pd.Timedelta(embargo_of(settings)),
        min_train_events=wf.min_train_events,
    )
    fold = TrainConfig(
        num_boost_round=wf.num_boost_round,
        seed=mt.seed,
        embargo_bars=mt.embargo_bars,
        max_train_rows=wf.max_train_rows,
        threshold=mt.signal_threshold,
    )
    return OosOptions(schedule=schedule, fold=fold)


def promotion_rule_of(settings: Settings) -> PromotionRule:
    p = settings.promotion
    return PromotionRule(
        test=p.test,
        alpha=p.alpha,
        min_days=p.min_days,
        bootstrap_samples=p.bootstrap_samples,
        seed=settings.model_training.seed,
    )


def comparison_for(ctx: HistoricalContext, rule: PromotionRule) -> OutOfSampleComparison:
    """Challenger-vs-champion comparison over the context's stored features and labels."""

    async def tokens() -> list[int]:
        return [i.instrument_token for i in await select_universe(ctx.instruments, ctx.options.symbols)]

    async def load(record: ModelRecord) -> ModelArtifact:
        return await load_model(ctx, record.model_version)

    return OutOfSampleComparison(
        features=ctx.features,
        labels=ctx.labels,
        tokens=tokens,
        load=load,
        generator=lambda artifact: signal_generator(ctx.options.signals, artifact),
        timeframe=ctx.options.signal_timeframe,
        embargo=embargo_of(ctx.settings),
        rule=rule,
    )


def governance_for(ctx: HistoricalContext, *, actor: str, aliases: bool = True) -> ModelGovernance:
    """``ModelGovernance`` over an open historical context (MLflow aliases unless ``aliases`` is False)."""
    settings = ctx.settings
    rule = promotion_rule_of(settings)
    compare = comparison_for(ctx, rule)
    registry = None
    if aliases:
        from tickwise.adapters.mlflow.tracker import tracking_uri

        registry = MlflowAliasRegistry(tracking_uri(settings))
    return ModelGovernance(
        ctx.models,
        TimescaleModelEventRepository(ctx.pool),
        compare,
        rule,
        aliases=registry,
        actor=actor,
        on_alias_error=lambda message: logger.warning(message),
    )


async def govern_after_training(governance: ModelGovernance, train: TrainOutcome) -> list[str]:
    """Record a freshly trained champion candidate and let the promotion rule decide; returns one line
    per decision and updates ``train.status`` to where the model stands now."""
    # Idempotent: a re-run after a kill between registering the model and this event completes the trail.
    auc = train.metrics.get("holdout_auc")
    evidence = {"holdout_auc": float(auc)} if isinstance(auc, (int, float)) else {}
    await governance.record_trained(
        train.model_version, "champion candidate (Optuna on the whole history)", evidence
    )
    outcomes = await governance.settle(train.model_version)
    for outcome in outcomes:
        if outcome.model_version == train.model_version:
            train.status = outcome.status
    return [
        f"{o.model_version}: {o.status}" + ("" if o.decision is None else f" ({o.decision.reason})")
        for o in outcomes
    ]


async def retire_superseded_folds(
    ctx: HistoricalContext, governance: ModelGovernance, oos: OosOutcome
) -> list[str]:
    """Retire the fold models the current walk-forward schedule no longer has (its configuration or the
    stored history's first session changed) and delete their historical signals, so every bar keeps
    exactly one out-of-sample row (of the instruments this run covers). Nothing happens when the
    schedule is empty (too little history)."""
    current = oos.versions()  # every timeframe's fold models and the ensemble's
    if not current:
        return []
    stale = [r.model_version for r in await ctx.models.list(status="fold") if r.model_version not in current]
    if not stale:
        return []
    # Only the instruments this schedule covers lose the old rows; a fold model is retired once it has
    # no historical row left (signals first: a run killed in between finishes the job when re-run).
    tokens = [i.instrument_token for i in await select_universe(ctx.instruments, ctx.options.symbols)]
    deleted = await ctx.signals.delete_historical(stale, tokens)
    still_used = await ctx.signals.versions_with_historical(stale)
    retired = [v for v in stale if v not in still_used]
    for version in retired:
        await governance.retire(
            version,
            reason="superseded by the current walk-forward schedule; its historical signals were removed",
        )
    return [
        f"{deleted:,} historical signals of superseded fold models removed, {len(retired)} of them retired"
    ]


@dataclass
class GovernanceContext:
    ctx: HistoricalContext
    governance: ModelGovernance
    events: TimescaleModelEventRepository


@asynccontextmanager
async def open_governance(
    settings: Settings, *, actor: str, url: str | None = None, aliases: bool = True
) -> AsyncIterator[GovernanceContext]:
    """The database (migrated) and a ``ModelGovernance`` acting as ``actor``."""
    async with open_historical(settings, url=url) as ctx:
        governance = governance_for(ctx, actor=actor, aliases=aliases)
        yield GovernanceContext(ctx, governance, TimescaleModelEventRepository(ctx.pool))
