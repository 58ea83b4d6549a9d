"""Feature rows -> signals: the one scoring step both pipelines run.

Batch prediction (``tickwise predict``) calls :meth:`SignalModel.score` on every bar of an instrument at
once; the live pipeline calls it on a single bar. Both therefore apply the same readiness rule (every
model feature finite), the same :class:`~tickwise.core.predictor.Predictor` and the same
:class:`~tickwise.core.signals.SignalGenerator`, which is what makes live and batch signals identical.

A model may carry a **regime layer** (:class:`~tickwise.core.regime.RegimeLayer`, fitted on its training
window): it extends each feature row with the regime columns (filtered HMM state probabilities and
state, change-point run length and probability) before the predictor and the regime filter read it.
Batch computes them over each instrument's ordered bars (:meth:`RegimeLayer.frame`), live carries the
per-instrument state bar by bar (:meth:`RegimeLayer.step`): one recursion, so the extended rows agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tickwise.core.meta_model import meta_size
from tickwise.core.predictor import Predictor
from tickwise.core.regime import RegimeLayer
from tickwise.core.signals import SignalBatch, SignalGenerator, signal_ready
from tickwise.domain.errors import ModelError


@dataclass(frozen=True)
class ScoredBars:
    """The bars that could be scored (``ready``) and their signals, in the order of the ready bars."""

    ready: np.ndarray  # bool per input bar
    batch: SignalBatch
    # Meta-labeling, aligned with ``batch``: the meta model's P(the signal's trade clears costs) and the
    # position scale it gives (core.meta_model.meta_size); NaN without a signal, a meta model or meta_step.
    meta_prob: np.ndarray | None = None
    meta_size: np.ndarray | None = None


class SignalModel:
    """A predictor, an optional regime layer and a signal generator, scored together."""

    def __init__(
        self, predictor: Predictor, generator: SignalGenerator, layer: RegimeLayer | None = None
    ) -> None:
        self.predictor = predictor
        self.generator = generator
        self.layer = layer
        regime_columns = set(layer.columns) if layer is not None else set()
        filtered_on = [n for n in generator.regime_features if n.startswith(("regime_", "cp_"))]
        if layer is None and filtered_on:
            raise ModelError(
                f"the regime filter reads {', '.join(filtered_on)}, but model {predictor.version} has no "
                "regime layer: retrain it (`tickwise historical`) or turn signals.regime_filter off"
            )
        self._layer_columns = regime_columns

    @property
    def regime_columns(self) -> tuple[str, ...]:
        """The columns the regime layer adds to each row (none without a layer)."""
        return self.layer.columns if self.layer is not None else ()

    @property
    def needed_features(self) -> tuple[str, ...]:
        """Every stored feature the scoring reads: the model's, the regime layer's inputs, then the
        regime filter's (the layer's own columns are computed, not read)."""
        names = [n for n in self.predictor.feature_names if n not in self._layer_columns]
        if self.layer is not None:
            names += [n for n in self.layer.inputs if n not in names]
        names += [
            n for n in self.generator.regime_features if n not in names and n not in self._layer_columns
        ]
        return tuple(names)

    def extended_names(self, names: Sequence[str]) -> list[str]:
        """The column names of a row of ``names`` extended by the regime layer."""
        return [*names, *self.regime_columns]

    def column_indices(self, names: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
        """Positions of the model features and of the regime-filter features in a row laid out as
        ``names`` (extended rows: ``names`` ends with :attr:`regime_columns`)."""
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in (*self.needed_features, *self.regime_columns) if n not in index]
        missing += [n for n in self.predictor.feature_names if n not in index and n not in missing]
        if missing:
            raise ModelError(
                f"model {self.predictor.version} needs feature(s) the features lack: {', '.join(missing[:8])}"
            )
        model_idx = np.array([index[n] for n in self.predictor.feature_names], dtype=np.intp)
        return model_idx, {n: index[n] for n in self.generator.regime_features}

    def score(self, x_model: np.ndarray, regime: Mapping[str, np.ndarray]) -> ScoredBars:
        """Score bars: ``x_model`` has one row per bar in the model's feature order, ``regime`` one value
        per bar for each regime feature. Bars with a non-finite model feature are not scored."""
        x = np.asarray(x_model, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        ready = signal_ready(x)
        # Every bar ready (a live minute's usual case): the rows as they are, not a masked copy of all
        # of them (about 0.3 ms per 3,000 x 119 block, taken twice).
        every = bool(ready.all())
        x_ready = x if every else x[ready]
        probs = self.predictor.predict_matrix(x_ready)
        values = {
            name: np.asarray(regime[name], dtype=np.float64)[ready] for name in self.generator.regime_features
        }
        batch = self.generator.generate(probs[:, 0], probs[:, 1], values)
        meta_prob, meta_scale = self._meta(x_ready, probs, batch)
        return ScoredBars(ready=ready, batch=batch, meta_prob=meta_prob, meta_size=meta_scale)

    def _meta(self, x: np.ndarray, probs: np.ndarray, batch: SignalBatch) -> tuple[np.ndarray, np.ndarray]:
        """Meta probability and size of the bars with a signal (the meta model scores only those)."""
        prob = np.full(len(batch.direction), np.nan)
        size = np.full(len(batch.direction), np.nan)
        step = self.generator.meta_step
        fired = np.flatnonzero(batch.direction != 0)
        if step is None or len(fired) == 0:
            return prob, size
        meta = self.predictor.artifact.meta
        if meta is None:
            return prob, size
        side = batch.direction[fired].astype(np.float64)
        p_side = np.where(side == 1, probs[fired, 0], probs[fired, 1])
        prob[fired] = meta.predict(x[fired], p_side, side)
        size[fired] = meta_size(prob[fired], step)
        return prob, size
