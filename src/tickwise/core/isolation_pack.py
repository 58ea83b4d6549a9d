"""Many fitted IsolationForests in compact arrays, scored in one compiled pass, equal to scikit-learn.

The live candle checks hold one anomaly model per instrument and ISO week. Scoring a minute's bars with
one ``score_samples`` call per instrument costs about 3 ms each (validation, joblib, 50 ``tree.apply``
calls): seconds per minute at 1,000 instruments. :class:`IsolationPack` keeps each model's trees as
small arrays and scores every row against its own model in one numba loop.

Bit-identity with ``IsolationForest.score_samples`` (scikit-learn 1.9) holds by construction:

- scikit-learn casts the rows to float32 and compares ``x[feature] <= threshold`` (a float64 threshold)
  at each node; for a float32 ``x`` that is the same as ``x <= t32`` where ``t32`` is the largest
  float32 not above the threshold, so thresholds are stored as float32 without changing a decision;
- a leaf adds ``decision_path_length + average_path_length - 1.0``; that float64 is computed here with
  the same numpy expression and stored per leaf (in a table of the distinct values);
- the per-tree contributions are summed in tree order from 0.0, as scikit-learn's sequential loop
  does, and the final ``2 ** -(depth / denominator)`` is the same numpy expression.

``tests/unit/core/test_isolation_pack.py`` checks the scores with ``np.array_equal`` against
``score_samples`` over random and candle-shaped rows.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import njit
from numpy.typing import NDArray

if TYPE_CHECKING:  # scikit-learn is imported where a forest is fitted (core/isolation_fit.py), not here
    from sklearn.ensemble import IsolationForest

_LEAF = -1
# Node arrays use int16 children/table indices: an isolation tree of max_samples <= 256 has < 512
# nodes, and the leaf table (depth x leaf size) stays far below 32,768 distinct values.
_MAX_INT16 = np.iinfo(np.int16).max


@dataclass(frozen=True, slots=True)
class CompiledForest:
    """One fitted forest: node arrays of all its trees, back to back (``tree_start`` per tree).

    ``feature`` is -1 at a leaf; ``right`` is the right child (relative to the tree's start; the left
    child of node ``k`` is always ``k + 1``, scikit-learn's depth-first order) or, at a leaf, the index
    of its contribution in ``leaf_values``.
    """

    feature: NDArray[np.int8]
    threshold: NDArray[np.float32]
    right: NDArray[np.int16]
    tree_start: NDArray[np.int64]
    leaf_values: NDArray[np.float64]
    denominator: float

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes for a in (self.feature, self.threshold, self.right, self.tree_start, self.leaf_values)
        )


def _float32_floor(values: NDArray[np.float64]) -> NDArray[np.float32]:
    """The largest float32 <= each value: for float32 ``x``, ``x <= v`` iff ``x <= floor32(v)``."""
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def compile_forest(model: IsolationForest) -> CompiledForest:
    """The arrays of a fitted ``model`` (all features used, no bootstrap of features)."""
    if model._max_features != model.n_features_in_:
        raise ValueError("compile_forest supports forests that use every feature (max_features=1.0)")
    features: list[NDArray[np.int8]] = []
    thresholds: list[NDArray[np.float32]] = []
    rights: list[NDArray[np.int16]] = []
    leaf_parts: list[NDArray[np.float64]] = []
    starts = [0]
    for k, estimator in enumerate(model.estimators_):
        tree = estimator.tree_
        left = np.asarray(tree.children_left)
        leaf = left == _LEAF
        nodes = np.arange(len(left))
        if len(left) > _MAX_INT16 or not np.array_equal(left[~leaf], nodes[~leaf] + 1):
            raise ValueError("unexpected tree layout: the left child must follow its parent")
        # scikit-learn's per-leaf addend, the same expression and dtypes as _parallel_compute_tree_depths.
        addend = model._decision_path_lengths[k] + model._average_path_length_per_tree[k] - 1.0
        feature = np.asarray(tree.feature).astype(np.int8)
        feature[leaf] = _LEAF
        right = np.asarray(tree.children_right).astype(np.int64)
        leaf_parts.append(np.asarray(addend, dtype=np.float64)[leaf])
        right[leaf] = -1  # filled with table indices below
        features.append(feature)
        thresholds.append(_float32_floor(np.asarray(tree.threshold, dtype=np.float64)))
        rights.append(right.astype(np.int16))
        starts.append(starts[-1] + len(left))
    table, inverse = np.unique(np.concatenate(leaf_parts), return_inverse=True)
    if len(table) > _MAX_INT16:
        raise ValueError("too many distinct leaf values for the compact layout")
    right_all = np.concatenate(rights)
    feature_all = np.concatenate(features)
    right_all[feature_all == _LEAF] = inverse.astype(np.int16)
    from sklearn.ensemble._iforest import _average_path_length  # a fitted forest: sklearn is loaded

    denominator = len(model.estimators_) * _average_path_length([model._max_samples])
    return CompiledForest(
        feature=feature_all,
        threshold=np.concatenate(thresholds),
        right=right_all,
        tree_start=np.asarray(starts, dtype=np.int64),
        leaf_values=table.astype(np.float64),
        denominator=float(denominator[0]),
    )


@njit(cache=True)
def _depths(
    x: NDArray[np.float32],
    model_of_row: NDArray[np.int64],
    node_base: NDArray[np.int64],
    tree_lo: NDArray[np.int64],
    tree_hi: NDArray[np.int64],
    tree_start: NDArray[np.int64],
    leaf_base: NDArray[np.int64],
    feature: NDArray[np.int8],
    threshold: NDArray[np.float32],
    right: NDArray[np.int16],
    leaf_values: NDArray[np.float64],
) -> NDArray[np.float64]:
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        m = model_of_row[i]
        depth = 0.0
        for t in range(tree_lo[m], tree_hi[m]):
            base = node_base[m] + tree_start[t]
            k = 0
            while feature[base + k] >= 0:
                if x[i, feature[base + k]] <= threshold[base + k]:
                    k += 1
                else:
                    k = int(right[base + k])
            depth += leaf_values[leaf_base[m] + right[base + k]]
        out[i] = depth
    return out


class IsolationPack:
    """Compiled forests under hashable keys; :meth:`score` evaluates rows against their own model."""

    def __init__(self) -> None:
        self._forests: dict[Hashable, CompiledForest] = {}
        self._packed: _Packed | None = None

    def __contains__(self, key: Hashable) -> bool:
        return key in self._forests

    def __len__(self) -> int:
        return len(self._forests)

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self._forests.values())

    def add(self, key: Hashable, model: IsolationForest) -> None:
        self.add_compiled(key, compile_forest(model))

    def add_compiled(self, key: Hashable, forest: CompiledForest) -> None:
        """Add a forest compiled elsewhere (:func:`compile_forest`, e.g. in a fitting child process)."""
        self._forests[key] = forest
        self._packed = None

    def discard(self, keys: Sequence[Hashable]) -> None:
        for key in keys:
            if self._forests.pop(key, None) is not None:
                self._packed = None

    def keys(self) -> list[Hashable]:
        return list(self._forests)

    def score(self, x: NDArray[np.float64], keys: Sequence[Hashable]) -> NDArray[np.float64]:
        """``score_samples`` of row ``i`` of ``x`` under the model of ``keys[i]`` (every key added)."""
        if len(keys) != len(x):
            raise ValueError("one model key per row")
        if not len(keys):
            return np.zeros(0)
        packed = self._pack()
        model_of_row = np.fromiter((packed.index[k] for k in keys), dtype=np.int64, count=len(keys))
        depths = _depths(
            np.ascontiguousarray(x, dtype=np.float32),
            model_of_row,
            packed.node_base,
            packed.tree_lo,
            packed.tree_hi,
            packed.tree_start,
            packed.leaf_base,
            packed.feature,
            packed.threshold,
            packed.right,
            packed.leaf_values,
        )
        denominator = packed.denominator[model_of_row]
        # scikit-learn's closing expression (IsolationForest._compute_score_samples), negated as
        # score_samples returns it.
        scores = 2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0))
        out: NDArray[np.float64] = -scores
        return out

    def _pack(self) -> _Packed:
        if self._packed is None:
            self._packed = _Packed.of(self._forests)
        return self._packed


@dataclass(frozen=True, slots=True)
class _Packed:
    index: dict[Hashable, int]
    node_base: NDArray[np.int64]
    tree_lo: NDArray[np.int64]
    tree_hi: NDArray[np.int64]
    tree_start: NDArray[np.int64]
    leaf_base: NDArray[np.int64]
    feature: NDArray[np.int8]
    threshold: NDArray[np.float32]
    right: NDArray[np.int16]
    leaf_values: NDArray[np.float64]
    denominator: NDArray[np.float64]

    @classmethod
    def of(cls, forests: dict[Hashable, CompiledForest]) -> _Packed:
        items = list(forests.values())
        trees = np.cumsum([0, *(len(f.tree_start) - 1 for f in items)])
        nodes = np.cumsum([0, *(len(f.feature) for f in items)])
        leaves = np.cumsum([0, *(len(f.leaf_values) for f in items)])

        def cat(arrays: list[NDArray[np.generic]], dtype: type[np.generic]) -> NDArray[np.generic]:
            return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

        return cls(
            index={k: i for i, k in enumerate(forests)},
            node_base=nodes[:-1].astype(np.int64),
            tree_lo=trees[:-1].astype(np.int64),
            tree_hi=trees[1:].astype(np.int64),
            tree_start=cat([f.tree_start[:-1] for f in items], np.int64).astype(np.int64),
            leaf_base=leaves[:-1].astype(np.int64),
            feature=cat([f.feature for f in items], np.int8).astype(np.int8),
            threshold=cat([f.threshold for f in items], np.float32).astype(np.float32),
            right=cat([f.right for f in items], np.int16).astype(np.int16),
            leaf_values=cat([f.leaf_values for f in items], np.float64).astype(np.float64),
            denominator=np.asarray([f.denominator for f in items], dtype=np.float64),
        )
