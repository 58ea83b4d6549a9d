"""Batch signals: a model version (champion by default) applied to stored features, written to ``signals``
with mode ``historical``.

Each row's ``sample`` says whether its bar lies after the model's training window (``trained_to``, which
includes the labels' ends) plus the embargo (``oos``) or not (``in_sample``); scoring a model over its own
training window still works, and the outcome counts those rows so the CLI can warn.

A signal's ``time`` is the open of the bar whose close produced it; ``available_at`` is that bar's close
instant (``time + timeframe``); ``latency_ms`` is NULL for historical signals. Only bars whose model
features are all finite get a signal (:func:`signal_ready`; the warm-up bars have none), the same rule
the live pipeline applies. Writes upsert on the contract key, so re-running is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.core.model import ModelArtifact
from tickwise.core.predictor import Predictor
from tickwise.core.regime import layer_of
from tickwise.core.signal_model import SignalModel
from tickwise.core.signals import SignalGenerator
from tickwise.domain.errors import ModelError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.context import HistoricalPorts
from tickwise.pipelines.historical.date_chunks import history_chunks
from tickwise.pipelines.models import load_model, signal_generator
from tickwise.pipelines.universe import select_universe


def signals_frame(
    features: pd.DataFrame,
    predictor: Predictor,
    generator: SignalGenerator,
    timeframe: Timeframe,
    mode: str = "historical",
) -> pd.DataFrame:
    """Features of one instrument -> signal rows (contract columns + ``size``, and ``meta_prob`` /
    ``meta_size`` when the model has a meta model and the generator a meta step, NaN otherwise).

    A model with a regime layer needs the regime columns: computed here over the frame's bars (each
    instrument's whole sessions must be in it, from the session's first bar), unless the caller already
    added them over a longer stretch (``oos`` computes them once over the whole history)."""
    layer = layer_of(predictor.artifact.regime)
    model = SignalModel(predictor, generator, layer)
    if layer is not None and not set(layer.columns) <= set(features.columns):
        features = layer.with_columns(features)
    model.column_indices(list(features.columns))  # a clear ModelError when a needed feature is absent
    x = features.loc[:, list(predictor.feature_names)].to_numpy(dtype=np.float64)
    regime = {n: features[n].to_numpy(dtype=np.float64) for n in generator.regime_features}
    scored = model.score(x, regime)
    features = features[scored.ready]
    batch = scored.batch
    times = pd.DatetimeIndex(features["time"])
    nan = np.full(len(times), np.nan)
    meta_prob = nan if scored.meta_prob is None else scored.meta_prob
    meta_size = nan if scored.meta_size is None else scored.meta_size
    return pd.DataFrame(
        {
            "instrument_token": features["instrument_token"].to_numpy(dtype=np.int64),
            "timeframe": str(timeframe),
            "time": times,
            "available_at": times + timeframe.delta,
            "model_version": predictor.version,
            "direction": batch.direction.astype(np.int64),
            "confidence": batch.confidence,
            "mode": mode,
            "feature_set": predictor.feature_set,
            "latency_ms": np.nan,
            "size": batch.size,
            "meta_prob": meta_prob,
            "meta_size": meta_size,
        }
    )


def sample_of(times: pd.Series, artifact: ModelArtifact, embargo: timedelta) -> np.ndarray:
    """``oos`` for bars strictly after the model's ``trained_to`` plus the embargo, else ``in_sample``
    (a model without a recorded training window is never trusted to be out of sample)."""
    if artifact.trained_to is None:
        return np.full(len(times), "in_sample", dtype=object)
    after = pd.DatetimeIndex(times) > pd.Timestamp(artifact.trained_to + embargo)
    return np.where(after, "oos", "in_sample").astype(object)


def session_open_before(start: datetime | None) -> datetime | None:
    """Midnight IST of ``start``'s day: every bar of that session is at or after it."""
    if start is None:
        return None
    local = start.astimezone(IST)
    return datetime(local.year, local.month, local.day, tzinfo=IST)


@dataclass
class PredictOutcome:
    model_version: str
    rows: int
    longs: int
    shorts: int
    instruments: int
    start: datetime | None
    end: datetime | None
    seconds: float
    # rows whose bar lies inside the model's training window plus the embargo (sample 'in_sample')
    in_sample: int = 0


async def predict_signals(
    ctx: HistoricalPorts,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    version: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PredictOutcome:
    """Score every instrument's stored features in ``[start, end)`` and write the signals.

    Each instrument is read, scored and written in date-range chunks of ``options.chunk_sessions``
    whole sessions (issue 15), so what the stage holds is one chunk's features and signals, whatever the
    history's length. Chunking changes no signal: the predictor, the meta model and the signal generator
    score each bar from its own row, and the regime layer (the only recursion) restarts at each
    session's open, which is never inside a chunk."""
    began = time.perf_counter()
    options = ctx.options
    timeframe = options.signal_timeframe
    artifact = await load_model(ctx, version)
    if artifact.timeframe != str(timeframe):
        raise ModelError(f"model {artifact.version} predicts {artifact.timeframe} bars, not {timeframe}")
    predictor = Predictor(artifact)
    generator = signal_generator(options.signals, artifact)
    model = SignalModel(predictor, generator, layer_of(artifact.regime))
    # The regime recursion restarts at each session's open: read from the open of ``start``'s session.
    read_from = session_open_before(start) if model.layer is not None else start
    universe = await select_universe(ctx.instruments, options.symbols, options.default_symbols)
    tokens = [i.instrument_token for i in universe]
    scorer = _ChunkScorer(
        ctx,
        predictor,
        generator,
        model.needed_features,
        start if read_from != start else None,
        timeframe.delta * options.train.embargo_bars,
    )
    counts = _Counts()
    for k, token in enumerate(tokens):
        chunks = await history_chunks(
            ctx.candles, ctx.calendar, token, timeframe, options.chunk_sessions, read_from, end
        )
        scored = [await scorer.score(token, lo, hi, counts) for lo, hi in chunks]
        counts.instruments += any(scored)
        if progress is not None:
            progress(k + 1, len(tokens))
    if counts.instruments == 0:
        raise ModelError(
            f"no stored features of feature set {artifact.feature_set} in the range; "
            "run `tickwise historical` to compute them"
        )
    return PredictOutcome(
        artifact.version,
        counts.rows,
        counts.longs,
        counts.shorts,
        counts.instruments,
        start,
        end,
        time.perf_counter() - began,
        counts.in_sample,
    )


@dataclass
class _Counts:
    """What :class:`PredictOutcome` counts, summed over the chunks."""

    rows: int = 0
    longs: int = 0
    shorts: int = 0
    in_sample: int = 0
    instruments: int = 0


@dataclass(frozen=True)
class _ChunkScorer:
    """Reads, scores and writes one date-range chunk of one instrument's features."""

    ctx: HistoricalPorts
    predictor: Predictor
    generator: SignalGenerator
    columns: tuple[str, ...]
    # The caller's ``start`` when the chunks are read from its session's open (the regime layer's
    # warm-up): the signals before it are computed but not written. None: every signal is written.
    keep_from: datetime | None
    embargo: timedelta

    async def score(self, token: int, lo: datetime | None, hi: datetime | None, counts: _Counts) -> bool:
        """Score ``[lo, hi)`` of ``token`` into ``counts``; False when the chunk has no stored features."""
        timeframe = self.ctx.options.signal_timeframe
        artifact = self.predictor.artifact
        features = await self.ctx.features.read_frame(
            token, timeframe, artifact.feature_set, lo, hi, columns=list(self.columns)
        )
        if features.empty:
            return False
        frame = signals_frame(features, self.predictor, self.generator, timeframe)
        del features
        if self.keep_from is not None:
            frame = frame[frame["time"] >= pd.Timestamp(self.keep_from)].reset_index(drop=True)
        frame["sample"] = sample_of(frame["time"], artifact, self.embargo)
        counts.in_sample += int((frame["sample"] == "in_sample").sum())
        counts.rows += await self.ctx.signals.add_frame(frame)
        counts.longs += int((frame["direction"] == 1).sum())
        counts.shorts += int((frame["direction"] == -1).sum())
        return True
