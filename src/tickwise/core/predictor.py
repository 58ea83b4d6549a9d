"""Predictor: one model version applied to feature rows, in batch (historical) or one bar at a time (live).

Both pipelines use this class, so live and historical probabilities are computed by the same code:
rows are converted to a C-contiguous float64 matrix in the model's feature order and scored by each
side's booster, whose per-row prediction sums the trees in a fixed order. A booster is scored by its
compiled form (:mod:`tickwise.core.tree_eval`: the same trees in one numba loop, faster than
``Booster.predict`` on a minute's rows) only when that form reproduces ``Booster.predict`` bit for bit on
probe rows; otherwise (or with ``compiled=False``) LightGBM scores it. The result therefore depends only
on the row, never on the batch it came in, and :meth:`Predictor.predict_row` is bit-identical to the
matching row of :meth:`Predictor.predict_frame` (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tickwise.core.model import SIDE_NAMES, SIDES, ModelArtifact
from tickwise.core.text_booster import TextBooster
from tickwise.core.tree_eval import CompiledBooster, CompiledForest, UnsupportedModel, compile_booster
from tickwise.domain.errors import ModelError

PROBABILITY_COLUMNS = ("p_long", "p_short")


class Predictor:
    """Probabilities P(long wins), P(short wins) from a :class:`ModelArtifact`.

    ``feature_set`` (optional) is the feature set the caller's features were computed with; a model
    trained on another feature set is refused with :class:`ModelError` rather than fed wrong inputs.
    """

    def __init__(
        self,
        artifact: ModelArtifact,
        feature_set: str | None = None,
        *,
        compiled: bool = True,
        threads: int = 1,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.artifact = artifact
        # Threads that score row blocks of one call at once (compiled forest only; the same bits for
        # any count). 1 for batch work, which has its own processes; the live shard sets its spare cores.
        self.threads = threads
        self.feature_names: tuple[str, ...] = artifact.feature_names
        self._boosters = [artifact.boosters[s] for s in SIDES]
        # Compiled (and checked) on the first prediction: a predictor built to read its metadata pays nothing.
        self._compile = compiled
        self._fast: list[CompiledBooster | None] | None = None
        self._forest: CompiledForest | None = None  # both sides, when both compiled
        self.not_compiled_because: str | None = None  # set on the first prediction (bench and tests read it)
        if feature_set is not None:
            self.check_feature_set(feature_set)

    @property
    def compiled(self) -> bool:
        """Whether both sides are scored by their compiled form (bit-identical to LightGBM, checked)."""
        return all(c is not None for c in self._compiled())

    def _compiled(self) -> list[CompiledBooster | None]:
        if self._fast is None:
            done = [
                _compiled_or_none(b) if self._compile else (None, "compiled=False") for b in self._boosters
            ]
            self._fast = [c for c, _ in done]
            both = [c for c, _ in done if c is not None]
            self._forest = CompiledForest(both) if len(both) == len(done) else None
            self.not_compiled_because = "; ".join(why for _, why in done if why) or None
        return self._fast

    @property
    def version(self) -> str:
        return self.artifact.version

    @property
    def feature_set(self) -> str:
        return self.artifact.feature_set

    def check_feature_set(self, feature_set: str) -> None:
        if feature_set != self.artifact.feature_set:
            raise ModelError(
                f"model {self.artifact.version} was trained on feature set {self.artifact.feature_set!r} "
                f"but the features given are {feature_set!r}; recompute features with the model's feature "
                f"spec or train a new model (`tickwise train`)"
            )

    def check_columns(self, columns: Sequence[str]) -> None:
        missing = [name for name in self.feature_names if name not in set(columns)]
        if missing:
            shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise ModelError(
                f"model {self.artifact.version} needs {len(missing)} feature(s) the input lacks: {shown}"
            )

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """``(n, k)`` matrix in :attr:`feature_names` order -> ``(n, 2)`` probabilities (long, short)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ModelError(
                f"model {self.artifact.version} expects {len(self.feature_names)} features per row, got shape {x.shape}"
            )
        out = np.empty((x.shape[0], len(SIDES)), dtype=np.float64)
        if x.shape[0] == 0:
            return out
        compiled = self._compiled()
        if self._forest is not None:  # both sides in one compiled pass over the rows
            return self._forest.predict(x, self.threads)
        for j, (booster, fast) in enumerate(zip(self._boosters, compiled, strict=True)):
            # One thread: the live minute's rows are few, and shards and the event loop share the cores.
            out[:, j] = fast.predict(x) if fast is not None else booster.predict(x, num_threads=1)
        return out

    def predict_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """Features frame (columns named as the features, optional ``feature_set`` column) -> frame with
        ``p_long`` and ``p_short`` on the same index."""
        if "feature_set" in features.columns and len(features):
            sets = features["feature_set"].unique()
            if len(sets) != 1:
                raise ModelError(f"features of several feature sets in one batch: {sorted(map(str, sets))}")
            self.check_feature_set(str(sets[0]))
        self.check_columns(list(features.columns))
        x = features.loc[:, list(self.feature_names)].to_numpy(dtype=np.float64)
        probs = self.predict_matrix(x)
        return pd.DataFrame(probs, index=features.index, columns=list(PROBABILITY_COLUMNS))

    def predict_row(self, row: np.ndarray | Sequence[float]) -> tuple[float, float]:
        """One feature vector in :attr:`feature_names` order -> (p_long, p_short)."""
        x = np.asarray(row, dtype=np.float64).reshape(1, -1)
        probs = self.predict_matrix(x)
        return float(probs[0, 0]), float(probs[0, 1])

    def __repr__(self) -> str:
        sides = "/".join(SIDE_NAMES[s] for s in SIDES)
        return f"Predictor({self.artifact.version}, {len(self.feature_names)} features, {sides})"


def _compiled_or_none(booster: object) -> tuple[CompiledBooster | None, str | None]:
    """The booster's checked compiled form, or (None, why not): LightGBM then scores it.

    A booster loaded from a bundle (:class:`TextBooster`) is checked against the bundle's record of
    LightGBM's probabilities, without importing LightGBM (core/text_booster.py); one trained in this
    process is a ``lightgbm.Booster``, and LightGBM is loaded already.
    """
    try:
        if isinstance(booster, TextBooster):
            return booster.compiled(), None
        import lightgbm as lgb

        if not isinstance(booster, lgb.Booster):
            return None, f"not a LightGBM booster: {type(booster).__name__}"
        return compile_booster(booster), None
    except (UnsupportedModel, KeyError, ValueError) as exc:
        return None, str(exc)
