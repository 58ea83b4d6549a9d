"""A LightGBM binary booster as flat arrays, scored for all rows in one compiled pass, equal to LightGBM.

The live minute scores 1,000 or more rows with a production model (2 x 200 trees). ``Booster.predict``
spends most of its time around the trees (a ``std::vector`` of (index, value) pairs per row, a buffer
per row, OpenMP set-up); :class:`CompiledBooster` walks the same trees over a C-contiguous float64
matrix in one numba loop.

Bit-identity with ``Booster.predict`` (LightGBM 4.x, read from its ``c_api.cpp``, ``tree.h`` and
``gbdt_prediction.cpp``) is by construction, and is then checked for every model (:func:`compile_booster`):

- **input**: LightGBM builds each row from the values with ``fabs(v) > kZeroThreshold`` (``1e-35f``)
  or NaN; every other value is absent and reads as ``0.0``. :func:`lgb_rows` does the same;
- **a node** (numerical splits only): a NaN goes to ``0.0`` unless the node's missing type is NaN;
  with missing type Zero and a zero value, or missing type NaN and a NaN, the node's ``default_left``
  bit decides; else ``v <= threshold`` goes left. Thresholds and leaf values are read from the model
  string, which LightGBM writes with 17 significant digits (they round-trip exactly);
- **the sum**: the leaf values of the trees in model order, added one by one to ``0.0`` (``PredictRaw``);
- **the output**: ``1.0 / (1.0 + exp(-sigmoid * raw))`` (``BinaryLogloss::ConvertOutput``), with the
  C library's ``exp`` (numba calls it, as LightGBM does).

Anything else (categorical splits, linear trees, another objective, several trees per iteration) is
refused with :class:`UnsupportedModel`, and :func:`compile_booster` also refuses a model whose compiled
scores differ from ``Booster.predict`` on probe rows (random rows, NaN, +-inf, zeros, tiny values and
rows exactly on every split threshold): the caller then keeps LightGBM. So a compiled score is either
LightGBM's own, bit for bit, or not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from numba import njit
from numpy.typing import NDArray

# LightGBM's kZeroThreshold (meta.h: ``const double kZeroThreshold = 1e-35f;``): a float, widened.
K_ZERO_THRESHOLD = float(np.float32(1e-35))
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_CATEGORICAL_MASK, _DEFAULT_LEFT_MASK = 1, 2


class UnsupportedModel(ValueError):
    """The booster has something the compiled evaluator does not reproduce; LightGBM must score it."""


@dataclass(frozen=True, slots=True)
class CompiledBooster:
    """Every tree of one binary booster, node arrays back to back.

    Node ``k`` of tree ``t`` is ``node_start[t] + k``; a child ``c >= 0`` is an internal node of the same
    tree, ``c < 0`` the leaf ``~c`` (LightGBM's encoding), found at ``leaf_start[t] + ~c``. A tree of one
    leaf has no nodes (``node_start[t] == node_start[t + 1]``).
    """

    feature: NDArray[np.int32]
    threshold: NDArray[np.float64]
    missing: NDArray[np.int8]  # 0 None, 1 Zero, 2 NaN
    default_left: NDArray[np.bool_]
    left: NDArray[np.int32]
    right: NDArray[np.int32]
    node_start: NDArray[np.int64]
    leaf_value: NDArray[np.float64]
    leaf_start: NDArray[np.int64]
    sigmoid: float
    n_features: int

    @property
    def n_trees(self) -> int:
        return int(self.node_start.shape[0] - 1)

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Probabilities of the rows of ``x`` (``(n, n_features)``), as ``Booster.predict`` gives them."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        out = np.empty(x.shape[0], dtype=np.float64)
        _predict(
            lgb_rows(x), self.feature, self.threshold, self.missing, self.default_left, self.left, self.right,
            self.node_start, self.leaf_value, self.leaf_start, self.sigmoid, out,
        )  # fmt: skip
        return out


def lgb_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The rows as LightGBM's dense-row reader hands them to the trees: a value that is neither NaN nor
    above kZeroThreshold in magnitude is absent, and an absent value reads as ``0.0``."""
    with np.errstate(invalid="ignore"):
        keep = (np.abs(x) > K_ZERO_THRESHOLD) | np.isnan(x)
    return np.where(keep, x, 0.0)


@njit(cache=True)
def _predict(
    x: NDArray[np.float64],
    feature: NDArray[np.int32],
    threshold: NDArray[np.float64],
    missing: NDArray[np.int8],
    default_left: NDArray[np.bool_],
    left: NDArray[np.int32],
    right: NDArray[np.int32],
    node_start: NDArray[np.int64],
    leaf_value: NDArray[np.float64],
    leaf_start: NDArray[np.int64],
    sigmoid: float,
    out: NDArray[np.float64],
) -> None:
    """``x`` as :func:`lgb_rows` gives it. Trees outer, rows inner: a tree's nodes stay in cache while
    every row walks it; each row's sum still adds the trees in model order."""
    n = x.shape[0]
    raw = np.zeros(n)
    for t in range(node_start.shape[0] - 1):
        base = node_start[t]
        first_leaf = leaf_start[t]
        if node_start[t + 1] == base:  # a one-leaf tree
            value = leaf_value[first_leaf]
            for i in range(n):
                raw[i] += value
            continue
        for i in range(n):
            node = 0
            while node >= 0:
                j = base + node
                v = x[i, feature[j]]
                if v != v or v == 0.0:  # NaN or absent: the node's missing-value rule first
                    m = missing[j]
                    if v != v and m != _MISSING_NAN:
                        v = 0.0
                    if (m == _MISSING_ZERO and v == 0.0) or (m == _MISSING_NAN and v != v):
                        node = left[j] if default_left[j] else right[j]
                        continue
                node = left[j] if v <= threshold[j] else right[j]
            raw[i] += leaf_value[first_leaf + ~node]
    for i in range(n):
        out[i] = 1.0 / (1.0 + math.exp(-sigmoid * raw[i]))


def _floats(line: str) -> list[float]:
    return [float(v) for v in line.split()]


def _ints(line: str) -> list[int]:
    return [int(v) for v in line.split()]


def parse_model(text: str) -> CompiledBooster:
    """The compiled form of a LightGBM text model (``Booster.model_to_string()``); see the module doc."""
    header, _, body = text.partition("\nTree=")
    head: dict[str, str] = {}
    for line in header.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            head[key.strip()] = value.strip()
    objective = head.get("objective", "").split()
    if not objective or objective[0] != "binary":
        raise UnsupportedModel(f"objective {head.get('objective')!r} is not 'binary'")
    sigmoid = 1.0
    for part in objective[1:]:
        if part.startswith("sigmoid:"):
            sigmoid = float(part.split(":", 1)[1])
    if int(head.get("num_tree_per_iteration", "1")) != 1 or int(head.get("num_class", "1")) != 1:
        raise UnsupportedModel("more than one tree per iteration")
    if "average_output" in head or header.splitlines().count("average_output"):
        raise UnsupportedModel("averaged output (random forest mode)")
    n_features = int(head["max_feature_idx"]) + 1
    trees = ("Tree=" + body).split("\nTree=") if body else []
    feature: list[int] = []
    threshold: list[float] = []
    decision: list[int] = []
    left: list[int] = []
    right: list[int] = []
    leaf: list[float] = []
    node_start = [0]
    leaf_start = [0]
    for chunk in trees:
        if chunk.startswith("end of trees"):
            break
        fields: dict[str, str] = {}
        for line in chunk.split("\nend of trees")[0].splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value
        if int(fields.get("num_cat", "0")) != 0:
            raise UnsupportedModel("categorical splits")
        if int(fields.get("is_linear", "0")) != 0:
            raise UnsupportedModel("linear trees")
        n_leaves = int(fields["num_leaves"])
        values = _floats(fields["leaf_value"])
        if len(values) != n_leaves:
            raise UnsupportedModel(f"a tree with {n_leaves} leaves lists {len(values)} leaf values")
        leaf += values
        leaf_start.append(len(leaf))
        if n_leaves > 1:
            kinds = _ints(fields["decision_type"])
            if any(d & _CATEGORICAL_MASK for d in kinds):
                raise UnsupportedModel("categorical splits")
            feature += _ints(fields["split_feature"])
            threshold += _floats(fields["threshold"])
            decision += kinds
            left += _ints(fields["left_child"])
            right += _ints(fields["right_child"])
            if not len(feature) == len(threshold) == len(decision) == len(left) == len(right):
                raise UnsupportedModel("a tree's node arrays differ in length")
        node_start.append(len(feature))
    if not trees:
        raise UnsupportedModel("no trees")
    kinds_arr = np.asarray(decision, dtype=np.int64)
    return CompiledBooster(
        feature=np.asarray(feature, dtype=np.int32),
        threshold=np.asarray(threshold, dtype=np.float64),
        missing=((kinds_arr >> 2) & 3).astype(np.int8),
        default_left=(kinds_arr & _DEFAULT_LEFT_MASK) > 0,
        left=np.asarray(left, dtype=np.int32),
        right=np.asarray(right, dtype=np.int32),
        node_start=np.asarray(node_start, dtype=np.int64),
        leaf_value=np.asarray(leaf, dtype=np.float64),
        leaf_start=np.asarray(leaf_start[:-1], dtype=np.int64),
        sigmoid=sigmoid,
        n_features=n_features,
    )


def probe_rows(model: CompiledBooster, n_random: int = 256, seed: int = 0) -> NDArray[np.float64]:
    """Rows that exercise every branch rule: random values of each split feature's scale, NaN, +-inf,
    +-0.0, values at and around kZeroThreshold, and for every split node a row exactly on its threshold
    (and one just above it) with the other features random."""
    rng = np.random.default_rng(seed)
    k = model.n_features
    scale = np.ones(k)
    finite = np.isfinite(model.threshold)
    for f, t in zip(model.feature[finite].tolist(), model.threshold[finite].tolist(), strict=True):
        scale[f] = max(scale[f], abs(t))
    rows = [rng.normal(size=(n_random, k)) * scale]
    special = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-36, -1e-36, K_ZERO_THRESHOLD, -K_ZERO_THRESHOLD, 1e-30]
    )
    pick = rng.integers(0, special.shape[0], size=(n_random, k))
    mixed = rng.normal(size=(n_random, k)) * scale
    mask = rng.random((n_random, k)) < 0.3
    mixed[mask] = special[pick[mask]]
    rows.append(mixed)
    on = rng.normal(size=(model.feature.shape[0], k)) * scale
    idx = np.arange(model.feature.shape[0])
    on[idx, model.feature] = model.threshold
    above = on.copy()
    above[idx, model.feature] = np.nextafter(model.threshold, np.inf)
    rows += [on, above]
    return np.ascontiguousarray(np.vstack(rows))


def compile_booster(booster: lgb.Booster) -> CompiledBooster:
    """:class:`CompiledBooster` of ``booster`` (its default prediction: ``best_iteration`` trees when it
    has one), checked bit-identical to ``booster.predict`` on :func:`probe_rows`; else
    :class:`UnsupportedModel`."""
    model = parse_model(booster.model_to_string())
    if model.n_features != booster.num_feature():
        raise UnsupportedModel(
            f"model string has {model.n_features} features, booster {booster.num_feature()}"
        )
    verify(model, booster)
    return model


def verify(model: CompiledBooster, booster: lgb.Booster) -> None:
    """Raise :class:`UnsupportedModel` unless ``model`` scores :func:`probe_rows` exactly as ``booster``."""
    probe = probe_rows(model)
    want = np.asarray(booster.predict(probe, num_threads=1), dtype=np.float64)
    got = model.predict(probe)
    if not np.array_equal(want, got):
        bad = int(np.count_nonzero(want != got))
        raise UnsupportedModel(f"compiled scores differ from LightGBM's on {bad} of {len(want)} probe rows")
