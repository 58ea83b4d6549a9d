"""Wiring of the longer signal timeframes and the ensemble into the live engine.

The 1m signals come from the champion. A longer timeframe (5m, 15m in ``trading.signal_timeframes``)
has no champion of its own: live scores it with its newest walk-forward fold model, the one whose
score window is open in the historical out-of-sample history, so live continues that history. The
ensemble is the newest ensemble fold of ``ensemble.timeframe``; its members are the newest fold model
of each member timeframe (1m included: the ensemble was trained on fold models' probabilities, not
the champion's). A timeframe or an ensemble without a fold model yet is skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from loguru import logger

from tickwise.config import Settings
from tickwise.core.ensemble import StackedLogistic, ensemble_generator
from tickwise.core.model import ModelArtifact
from tickwise.core.predictor import Predictor
from tickwise.core.signals import SignalGenerator
from tickwise.core.timeframe_features import calculator_for
from tickwise.domain.errors import ModelError
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import SignalStep
from tickwise.pipelines.live.timeframes import EnsembleStep, MemberModel, TimeframeScorer
from tickwise.pipelines.models import ModelSource, load_model
from tickwise.ports.repositories import ModelRecord


def _score_from(record: ModelRecord) -> pd.Timestamp:
    value = record.params.get("score_from")
    return pd.Timestamp(str(value)) if value else pd.Timestamp(record.trained_to or 0, tz="UTC")


def newest_folds(records: Sequence[ModelRecord]) -> dict[str, ModelRecord]:
    """Per timeframe, the fold model with the latest score window (``params.score_from``); ensemble
    folds are keyed ``ensemble:<timeframe>``. Folds recorded before timeframes existed are 1m."""
    out: dict[str, ModelRecord] = {}
    for record in records:
        if record.status != "fold":
            continue
        timeframe = str(record.params.get("timeframe", "1m"))
        key = f"ensemble:{timeframe}" if record.params.get("kind") == "ensemble" else timeframe
        best = out.get(key)
        if best is None or _score_from(record) > _score_from(best):
            out[key] = record
    return out


@dataclass
class LiveTimeframes:
    scorers: list[TimeframeScorer]
    ensemble: EnsembleStep | None
    artifacts: dict[str, ModelArtifact] = field(default_factory=dict)  # the scorers' models by timeframe
    ensemble_label_spec: Mapping[str, object] = field(default_factory=dict)

    def generators(self, settings: Settings) -> list[SignalGenerator]:
        """The signal generators ``settings`` gives each scorer, then the ensemble (a SIGHUP reload:
        built first, so an invalid value changes nothing)."""
        from tickwise.bootstrap.context import signal_generator, signal_options_of

        out = [signal_generator(settings, self.artifacts[str(s.timeframe)]) for s in self.scorers]
        if self.ensemble is not None:
            options = signal_options_of(settings)
            out.append(
                ensemble_generator(
                    self.ensemble_label_spec,
                    threshold=options.threshold,
                    kelly_fraction=options.kelly_fraction,
                    max_position=options.max_position,
                )
            )
        return out

    def set_generators(self, generators: Sequence[SignalGenerator]) -> None:
        """Score the next bars with ``generators`` (as :meth:`generators` returns them)."""
        for scorer, generator in zip(self.scorers, generators, strict=False):
            if isinstance(scorer.step, SignalStep):
                scorer.step.set_generator(generator)
        if self.ensemble is not None:
            self.ensemble.generator = generators[-1]

    @property
    def versions(self) -> list[str]:
        """The model versions live scores besides the champion (for the start-up log)."""
        out = [s.step.predictor.version for s in self.scorers if isinstance(s.step, SignalStep)]
        return out + ([self.ensemble.version] if self.ensemble is not None else [])


async def live_timeframes(settings: Settings, source: ModelSource) -> LiveTimeframes:
    """The scorers of the longer signal timeframes and the ensemble step (see the module docstring)."""
    from tickwise.bootstrap.context import signal_generator, signal_options_of

    wanted = [tf for tf in settings.trading.all_signal_timeframes if tf is not Timeframe.M1]
    ens = settings.ensemble
    use_ensemble = ens.enabled and len(settings.trading.all_signal_timeframes) > 1
    if not wanted and not use_ensemble:
        return LiveTimeframes([], None)
    folds = newest_folds(await source.models.list(status="fold"))
    predictors: dict[str, Predictor] = {}
    artifacts: dict[str, ModelArtifact] = {}
    for key in {str(tf) for tf in settings.trading.all_signal_timeframes}:
        record = folds.get(key)
        if record is None:
            continue
        try:
            artifact = await load_model(source, record.model_version)
        except (ModelError, OSError, ValueError) as exc:
            logger.warning("live: {} fold model {} not loaded: {}", key, record.model_version, exc)
            continue
        predictors[key] = Predictor(artifact)
        artifacts[key] = artifact
    scorers = []
    for tf in wanted:
        calculator = calculator_for(tf)
        predictor = predictors.get(str(tf))
        if predictor is None:
            logger.warning("live: no {} fold model yet: no {} signals (run `tickwise historical`)", tf, tf)
            continue
        generator = signal_generator(settings, artifacts[str(tf)])
        scorers.append(
            TimeframeScorer(tf, calculator, SignalStep(predictor, generator, calculator.names, tf))
        )
    step = None
    label_spec: Mapping[str, object] = {}
    record = folds.get(f"ensemble:{ens.timeframe}") if use_ensemble else None
    if use_ensemble and record is None:
        logger.warning("live: no ensemble fold model yet: no ensemble signals (run `tickwise historical`)")
    if record is not None:
        stacked = record.params.get("stacked")
        layer = StackedLogistic.from_dict(stacked if isinstance(stacked, dict) else {})
        missing = [m for m in layer.members if m not in predictors]
        if missing:
            logger.warning(
                "live: ensemble {} lacks member model(s) {}: not scored", record.model_version, missing
            )
        else:
            options = signal_options_of(settings)
            label_spec = record.label_spec or {}
            generator = ensemble_generator(
                label_spec,
                threshold=options.threshold,
                kelly_fraction=options.kelly_fraction,
                max_position=options.max_position,
            )
            members = {
                m: MemberModel(predictors[m], calculator_for(Timeframe(m)).names) for m in layer.members
            }
            step = EnsembleStep(record.model_version, layer, generator, ens.timeframe, members)
    used = {str(s.timeframe): artifacts[str(s.timeframe)] for s in scorers}
    return LiveTimeframes(scorers, step, used, label_spec)
