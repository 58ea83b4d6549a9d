"""Composition root of paper trading (`tickwise live --paper`): the backtest's engine configuration,
the champion's barriers and the paper tables, handed to :class:`~tickwise.pipelines.live.paper.PaperTrader`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
from loguru import logger

from tickwise.adapters.timescale.paper_repository import TimescalePaperRepository
from tickwise.bootstrap.backtest import engine_config
from tickwise.config import Settings
from tickwise.core.trading import TradeEngine
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.pipelines.backtest.inputs import BarrierSpec
from tickwise.pipelines.live.paper import PaperBarriers, PaperTrader
from tickwise.ports.repositories import ModelRepository


def paper_run_id(now: datetime) -> str:
    """``paper-<IST date>-<time>-<6 hex>``: the ``run_id`` of the session's rows in the paper tables."""
    return f"paper-{now.astimezone(IST):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


async def paper_barriers(settings: Settings, models: ModelRepository, model_version: str) -> PaperBarriers:
    """The model's recorded label spec (as a backtest reads it), the configured labeling as fallback."""
    labeling = settings.trading.labeling
    default = BarrierSpec(
        k_pt=labeling.k_pt, k_sl=labeling.k_sl, horizon=labeling.horizon, atr_period=labeling.atr_period
    )
    record = await models.get(model_version)
    spec = BarrierSpec.of(None if record is None else record.label_spec, default)
    return PaperBarriers(
        k_pt=spec.k_pt, k_sl=spec.k_sl, horizon=spec.horizon, atr_column=f"atr_{spec.atr_period}"
    )


async def make_paper_trader(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    models: ModelRepository,
    model_version: str,
    universe: Sequence[Instrument],
    feature_names: Sequence[str],
    calendar: SessionCalendar,
    now: datetime,
) -> PaperTrader:
    """A paper trader on the ``backtest`` settings (capital, limits, costs, slippage, session times).

    Positions an earlier session left open (its process died before the square-off) are closed as
    ``interrupted`` first, so ``closed_at IS NULL`` always means "open in the running session"."""
    repository = TimescalePaperRepository(pool)
    run_id = paper_run_id(now)
    orphans = await repository.close_interrupted(run_id, now)
    if orphans:
        logger.warning(
            "paper: {} position(s) of an interrupted paper session closed as 'interrupted' (no trade recorded)",
            orphans,
        )
    return PaperTrader(
        engine=TradeEngine(engine_config(settings)),
        repository=repository,
        run_id=run_id,
        feature_names=feature_names,
        barriers=await paper_barriers(settings, models, model_version),
        lot_sizes={i.instrument_token: max(1, int(i.lot_size)) for i in universe},
        calendar=calendar,
        model_version=model_version,
    )
