"""The secondary (meta) model of meta-labeling and the bet size it gives (labeling.md §6, AFML ch. 3, 10).

The primary model proposes a side; the meta model, one LightGBM binary booster, predicts the probability
that the proposed side's triple-barrier trade clears the cost threshold (``labels.meta = 1``). Its inputs
are the primary model's features in the same order, then the primary probability of the proposed side
and the side itself (+1/−1), so the scoring step passes the very row it gave the primary model.

This module is what scoring needs (live and batch): the booster, its (de)serialisation and the bet size.
Fitting it lives in ``core.meta_training`` (training-only: it reads labels and runs purged CV).

Bet size (AFML snippet 10.1 with two classes): ``z = (p − 1/2)/sqrt(p(1 − p))``, ``size = 2Φ(z) − 1``,
clipped at 0 (a meta probability below one half means "do not take the primary's trade", never "take
the other side": the meta model only judges the primary's side) and rounded to multiples of ``step``
(snippet 10.3). AFML also averages the sizes of concurrently open bets (snippet 10.2); the trade engine
holds at most one position per instrument, so no two bets of an instrument are open together and the
average is the bet itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tickwise.core.text_booster import TextBooster
from tickwise.core.tree_eval import CompiledBooster, UnsupportedModel
from tickwise.domain.errors import ModelError

if TYPE_CHECKING:  # loading a bundle to score never imports LightGBM (core/text_booster.py)
    from tickwise.core.text_booster import AnyBooster

META_INPUTS: tuple[str, str] = ("primary_p", "primary_side")
"""The two inputs the meta model takes after the primary model's features."""

META_BOOSTER_FILE = "meta.txt"
META_INFO_FILE = "meta.json"

_erf = np.frompyfunc(math.erf, 1, 1)


def bet_size(p: npt.ArrayLike, side: npt.ArrayLike, k: int = 2) -> npt.NDArray[np.float64]:
    """AFML snippet 10.1: ``z = (p − 1/k)/sqrt(p(1 − p))``, ``size = side·(2Φ(z) − 1)`` in [−1, 1].

    ``p`` is the meta model's P(meta = 1) for the primary ``side``; ``k`` the number of classes.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    prob = np.asarray(p, dtype=np.float64)
    if np.any((prob < 0.0) | (prob > 1.0)) or np.any(np.isnan(prob)):
        raise ValueError("probabilities must lie in [0, 1]")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (prob - 1.0 / k) / np.sqrt(prob * (1.0 - prob))
    # p = 0 or 1 gives z = ∓inf, where Φ is exactly 0 or 1.
    phi = 0.5 * (1.0 + np.asarray(_erf(np.asarray(z) / math.sqrt(2.0)), dtype=np.float64))
    return np.asarray(side, dtype=np.float64) * (2.0 * phi - 1.0)


def discretise_bet(size: npt.ArrayLike, step: float) -> npt.NDArray[np.float64]:
    """Round bet sizes to multiples of ``step`` (AFML snippet 10.3), clipped to [−1, 1]."""
    if not 0.0 < step <= 1.0:
        raise ValueError(f"step must lie in (0, 1], got {step}")
    return np.clip(np.round(np.asarray(size, dtype=np.float64) / step) * step, -1.0, 1.0)


def meta_size(p: npt.ArrayLike, step: float) -> npt.NDArray[np.float64]:
    """Position scale in [0, 1] from the meta probability ``p``: the AFML bet size for the primary's side,
    no bet below p = 1/2, discretised to ``step``."""
    return discretise_bet(np.maximum(bet_size(p, 1.0), 0.0), step)


@dataclass(frozen=True)
class MetaModel:
    """A fitted meta model: the booster and the primary features it was trained after."""

    booster: AnyBooster
    feature_names: tuple[str, ...]  # the primary model's features, in its order
    metrics: Mapping[str, Any] = field(default_factory=dict)
    # A loaded booster's compiled form (checked bit-identical to LightGBM), built on the first prediction;
    # a list so the frozen model can fill it; [None] when LightGBM scores it.
    _fast: list[CompiledBooster | None] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expected = (*self.feature_names, *META_INPUTS)
        if tuple(self.booster.feature_name()) != expected:
            raise ModelError("the meta booster was trained on other inputs than its feature list says")

    def _compiled(self) -> CompiledBooster | None:
        if not self._fast:
            fast = None
            if isinstance(self.booster, TextBooster):
                try:
                    fast = self.booster.compiled()
                except (UnsupportedModel, KeyError, ValueError):
                    fast = None
            self._fast.append(fast)
        return self._fast[0]

    def predict(
        self, x: np.ndarray, primary_p: npt.ArrayLike, side: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """P(meta = 1) of each row: ``x`` in :attr:`feature_names` order, the primary probability of the
        proposed side and the side. Row by row the same as one batch (LightGBM scores rows alone)."""
        rows = meta_inputs(x, primary_p, side)
        if rows.shape[1] != len(self.feature_names) + len(META_INPUTS):
            raise ModelError(f"the meta model expects {len(self.feature_names)} features, got {x.shape}")
        if rows.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        fast = self._compiled()
        if fast is not None:  # the same bits as LightGBM (checked when compiled)
            return fast.predict(rows)
        return np.asarray(self.booster.predict(rows, num_threads=1), dtype=np.float64)

    def to_files(self) -> dict[str, bytes]:
        """``meta.txt`` (LightGBM text model, round-trips bit-exactly) and ``meta.json``."""
        info = {"feature_names": list(self.feature_names), "metrics": dict(self.metrics)}
        return {
            META_BOOSTER_FILE: self.booster.model_to_string().encode(),
            META_INFO_FILE: json.dumps(info, indent=2, sort_keys=True, default=float).encode(),
        }

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], *, probe: str | None = None) -> MetaModel | None:
        """The meta model of a bundle, or None when the bundle has none (a model trained without one);
        ``probe``: the bundle's record of LightGBM's probabilities on the probe rows (``model.json``)."""
        if META_BOOSTER_FILE not in files:
            return None
        if META_INFO_FILE not in files:
            raise ModelError(f"a model bundle has {META_BOOSTER_FILE} but no {META_INFO_FILE}")
        info = json.loads(files[META_INFO_FILE])
        return cls(
            booster=TextBooster(files[META_BOOSTER_FILE].decode(), probe),
            feature_names=tuple(info["feature_names"]),
            metrics=info.get("metrics", {}),
        )


def meta_inputs(x: np.ndarray, primary_p: npt.ArrayLike, side: npt.ArrayLike) -> np.ndarray:
    """The meta model's input rows: primary features, then the primary probability and the side."""
    features = np.asarray(x, dtype=np.float64)
    if features.ndim == 1:
        features = features.reshape(1, -1)
    p = np.asarray(primary_p, dtype=np.float64).reshape(-1, 1)
    s = np.asarray(side, dtype=np.float64).reshape(-1, 1)
    if not (len(p) == len(s) == len(features)):
        raise ValueError(f"meta inputs disagree in length: {len(features)} rows, {len(p)} p, {len(s)} sides")
    return np.ascontiguousarray(np.hstack([features, p, s]), dtype=np.float64)
