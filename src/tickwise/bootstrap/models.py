"""Composition root of model governance: the ``models`` table, ``model_events``, the out-of-sample
comparison over stored data and MLflow's registry aliases, wired into ``ModelGovernance``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from tickwise.adapters.mlflow.registry import MlflowAliasRegistry
from tickwise.adapters.timescale.model_event_repository import TimescaleModelEventRepository
from tickwise.bootstrap.historical import HistoricalContext, open_historical
from tickwise.config import Settings
from tickwise.core.model import ModelArtifact
from tickwise.core.promotion import PromotionRule
from tickwise.pipelines.governance import ModelGovernance
from tickwise.pipelines.historical.comparison import OutOfSampleComparison
from tickwise.pipelines.historical.oos import embargo_of
from tickwise.pipelines.historical.predict import signal_generator
from tickwise.pipelines.historical.universe import select_universe
from tickwise.ports.repositories import ModelRecord


def promotion_rule_of(settings: Settings) -> PromotionRule:
    p = settings.promotion
    return PromotionRule(
        test=p.test,
        alpha=p.alpha,
        min_days=p.min_days,
        bootstrap_samples=p.bootstrap_samples,
        seed=settings.model_training.seed,
    )


def governance_for(ctx: HistoricalContext, *, actor: str, aliases: bool = True) -> ModelGovernance:
    """``ModelGovernance`` over an open historical context (MLflow aliases unless ``aliases`` is False)."""
    settings = ctx.settings

    async def tokens() -> list[int]:
        return [i.instrument_token for i in await select_universe(ctx.instruments, settings.trading.symbols)]

    def load(record: ModelRecord) -> ModelArtifact:
        artifact: ModelArtifact = ctx.store.load(
            record.model_version, Path(record.artifact_path) if record.artifact_path else None
        )
        return artifact

    rule = promotion_rule_of(settings)
    compare = OutOfSampleComparison(
        features=ctx.features,
        labels=ctx.labels,
        tokens=tokens,
        load=load,
        generator=lambda artifact: signal_generator(settings, artifact),
        timeframe=settings.trading.signal_timeframe,
        embargo=embargo_of(settings),
        rule=rule,
    )
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
