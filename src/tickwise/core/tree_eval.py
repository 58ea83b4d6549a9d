"""A LightGBM binary booster as flat arrays, scored for all rows in one compiled pass, equal to LightGBM.

The live minute scores 1,000 or more rows with a production model (2 x 200 trees). ``Booster.predict``
spends most of its time around the trees (a ``std::vector`` of (index, value) pairs per row, a buffer
per row, OpenMP set-up); :class:`CompiledBooster` walks the same trees in one numba loop, and
:class:`CompiledForest` walks both sides' trees in one pass. The walk (:class:`Walk`) goes tree by tree
and, within a tree, level by level: over every row while at least half of them still walk (a row on a
leaf stays there), then over a list of the rows still on an internal node, kept compact without a
branch, so a row stops at its own leaf's depth rather than the tree's deepest (LightGBM grows its
trees leaf-wise: most leaves sit well above the deepest). The child is picked by index arithmetic
rather than a branch, and the rows are read feature-major. No ``numba.prange``: with it (two threads)
the pass was 2 x faster on an idle core pair but several times slower in wall time on the loaded 2-core
reference machine (``docs/benchmarks.md``, issue 14, fourth session), numba's idle workers spinning for
a core the shards need. :meth:`CompiledForest.predict` can instead hand row blocks to a few ordinary threads
(``threads``; the kernel releases the GIL): each row's sum is the same code on the same row, so the
scores are the same bits for any split, and a thread that waits sleeps rather than spins.

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

import itertools
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numba import njit
from numpy.typing import NDArray

if TYPE_CHECKING:  # a booster is passed in: scoring never imports LightGBM (core/text_booster.py)
    import lightgbm as lgb

# LightGBM's kZeroThreshold (meta.h: ``const double kZeroThreshold = 1e-35f;``): a float, widened.
K_ZERO_THRESHOLD = float(np.float32(1e-35))
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_CATEGORICAL_MASK, _DEFAULT_LEFT_MASK = 1, 2
# Fewer rows than this per thread are scored on the calling thread alone: a block's hand-off (a
# future, a wake-up) costs tens of microseconds, which a few hundred rows of 2 x 200 trees outweigh.
MIN_ROWS_PER_THREAD = 256


class UnsupportedModel(ValueError):
    """The booster has something the compiled evaluator does not reproduce; LightGBM must score it."""


@dataclass(frozen=True, slots=True)
class CompiledBooster:
    """Every tree of one binary booster, node arrays back to back.

    Node ``k`` of tree ``t`` is ``node_start[t] + k``; a child ``c >= 0`` is an internal node of the same
    tree, ``c < 0`` the leaf ``~c`` (LightGBM's encoding), found at ``leaf_start[t] + ~c``. A tree of one
    leaf has no nodes (``node_start[t] == node_start[t + 1]``). ``walk`` is the same trees laid out for
    the compiled walk (:class:`Walk`), derived from these arrays.
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
    walk: Walk = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived here (not passed in) so that a model rebuilt with other arrays walks those arrays.
        object.__setattr__(self, "walk", Walk.of(self))

    @property
    def n_trees(self) -> int:
        return int(self.node_start.shape[0] - 1)

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Probabilities of the rows of ``x`` (``(n, n_features)``), as ``Booster.predict`` gives them."""
        return CompiledForest((self,)).predict(x)[:, 0]


@dataclass(frozen=True, slots=True)
class Walk:
    """The trees of one booster laid out for the walk: every leaf is a node too (a *sink*, both of
    whose children are itself), numbered after its tree's internal nodes, so "is this a leaf" is one
    compare with ``first_sink[t]`` (no branch: the walk drops such a row from its list arithmetically,
    where an exit per row would be mispredicted once per row and tree).

    Node ``j`` of the walk: ``feature[j]``, ``threshold[j]``, children ``child[2 j]`` (left) and
    ``child[2 j + 1]``; ``nan_left[j]`` / ``zero_left[j]`` say where a NaN / an absent (0.0) value goes,
    LightGBM's missing-value rule resolved per node (see the module doc); ``value[j]`` is a sink's leaf
    value. Tree ``t`` starts at ``root[t]``, its sinks at ``first_sink[t]``; ``depth[t]`` is its deepest
    leaf's depth. ``zero_rule``: some node sends a zero elsewhere than ``0.0 <= threshold`` would
    (LightGBM's zero-as-missing nodes); without one, the walk need not look for zeros.
    """

    feature: NDArray[np.int32]
    threshold: NDArray[np.float64]
    nan_left: NDArray[np.bool_]
    zero_left: NDArray[np.bool_]
    child: NDArray[np.int32]
    value: NDArray[np.float64]
    root: NDArray[np.int32]
    first_sink: NDArray[np.int32]
    depth: NDArray[np.int64]
    zero_rule: bool

    @classmethod
    def of(cls, m: CompiledBooster) -> Walk:
        n_trees = m.node_start.shape[0] - 1
        n_int = np.diff(m.node_start)
        n_leaf = np.diff(np.append(m.leaf_start, m.leaf_value.shape[0]))
        if n_leaf.shape[0] != n_trees:
            raise UnsupportedModel("leaf and node tables differ in their tree count")
        root = m.node_start[:-1] + m.leaf_start  # a tree's internal nodes, then its sinks
        total = int(m.node_start[-1]) + m.leaf_value.shape[0]
        trees = np.arange(n_trees)
        t_int = np.repeat(trees, n_int)
        t_leaf = np.repeat(trees, n_leaf)
        g_int = root[t_int] + (np.arange(t_int.shape[0]) - m.node_start[:-1][t_int])
        g_leaf = root[t_leaf] + n_int[t_leaf] + (np.arange(t_leaf.shape[0]) - m.leaf_start[t_leaf])

        def node_of(c: NDArray[np.int32]) -> NDArray[np.int64]:
            c64 = c.astype(np.int64)
            ids: NDArray[np.int64] = np.where(c64 >= 0, root[t_int] + c64, root[t_int] + n_int[t_int] + ~c64)
            return ids

        if 2 * total >= 2**31:
            raise UnsupportedModel(f"{total} nodes: more than the walk's 32-bit node numbers hold")
        child = np.empty(2 * total, dtype=np.int32)
        child[2 * g_int], child[2 * g_int + 1] = node_of(m.left), node_of(m.right)
        child[2 * g_leaf] = child[2 * g_leaf + 1] = g_leaf
        feature = np.zeros(total, dtype=np.int32)
        threshold = np.zeros(total, dtype=np.float64)
        feature[g_int], threshold[g_int] = m.feature, m.threshold
        default = m.default_left
        with np.errstate(invalid="ignore"):
            zero_goes = np.where(m.missing == _MISSING_ZERO, default, m.threshold >= 0.0)
        nan_left = np.zeros(total, dtype=np.bool_)
        zero_left = np.zeros(total, dtype=np.bool_)
        # NaN: its own default with missing type NaN; else it reads as 0.0 (then as a zero).
        nan_left[g_int] = np.where(m.missing == _MISSING_NAN, default, zero_goes)
        zero_left[g_int] = zero_goes
        value = np.zeros(total, dtype=np.float64)
        value[g_leaf] = m.leaf_value
        # A node's depth is one more than its deeper child's; sinks have depth 0. Children come after
        # their parent in LightGBM's numbering, but fixed-point iteration needs no such assumption.
        depth_of = np.zeros(total, dtype=np.int64)
        for _ in range(int(n_int.max(initial=0))):
            deeper = 1 + np.maximum(depth_of[child[2 * g_int]], depth_of[child[2 * g_int + 1]])
            if np.array_equal(deeper, depth_of[g_int]):
                break
            depth_of[g_int] = deeper
        first_sink = (root + n_int).astype(np.int32)
        with np.errstate(invalid="ignore"):
            zero_rule = bool(np.any(zero_left[g_int] != (threshold[g_int] >= 0.0)))
        return cls(
            feature,
            threshold,
            nan_left,
            zero_left,
            child,
            value,
            root.astype(np.int32),
            first_sink,
            depth_of[root],
            zero_rule,
        )


class CompiledForest:
    """Several boosters (the live model's two sides) scored in ONE compiled pass over the rows: their
    walks back to back, laid out once. Column ``m`` of :meth:`predict` equals ``models[m].predict``."""

    def __init__(self, models: Sequence[CompiledBooster]) -> None:
        if not models:
            raise ValueError("no model to score with")
        self.n_features = models[0].n_features
        if any(m.n_features != self.n_features for m in models):
            raise ValueError("the models read different feature counts")
        walks = [m.walk for m in models]
        if 2 * sum(w.value.shape[0] for w in walks) >= 2**31:
            raise UnsupportedModel("more nodes than the walk's 32-bit node numbers hold")
        offsets = np.cumsum([0] + [w.value.shape[0] for w in walks[:-1]])
        self._arrays = (
            np.concatenate([w.feature for w in walks]),
            np.concatenate([w.threshold for w in walks]),
            np.concatenate([~w.nan_left for w in walks]),
            np.concatenate([~w.zero_left for w in walks]),
            any(w.zero_rule for w in walks),
            np.concatenate([w.child + np.int32(o) for w, o in zip(walks, offsets, strict=True)]),
            np.concatenate([w.value for w in walks]),
            np.concatenate([w.root + np.int32(o) for w, o in zip(walks, offsets, strict=True)]),
            np.concatenate([w.first_sink + np.int32(o) for w, o in zip(walks, offsets, strict=True)]),
            np.cumsum([0] + [w.root.shape[0] for w in walks]).astype(np.int64),  # each model's first tree
            np.array([m.sigmoid for m in models], dtype=np.float64),
        )

    def predict(self, x: NDArray[np.float64], threads: int = 1) -> NDArray[np.float64]:
        """``(n, n_models)`` probabilities of the rows of ``x`` (``(n, n_features)``).

        ``threads > 1`` scores contiguous row blocks at once (at most ``threads``, each of at least
        :data:`MIN_ROWS_PER_THREAD` rows), the calling thread taking the first; the result is the same
        bits as one thread's (each row is scored alone, whatever block it is in).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        n = x.shape[0]
        out = np.empty((n, self._arrays[-1].shape[0]), dtype=np.float64)
        blocks = min(threads, n // MIN_ROWS_PER_THREAD)
        if blocks <= 1:
            if n:
                self._score(x, out)
            return out
        edges = [n * b // blocks for b in range(blocks + 1)]
        pool = scoring_pool(blocks - 1)
        rest = [
            pool.submit(self._score_counted, x[lo:hi], out[lo:hi]) for lo, hi in itertools.pairwise(edges[1:])
        ]
        self._score(x[: edges[1]], out[: edges[1]])
        for done in rest:
            done.result()  # re-raises a block's error here
        return out

    def _score(self, x: NDArray[np.float64], out: NDArray[np.float64]) -> None:
        # Feature-major: a tree reads a few features of every row, each then one contiguous column.
        xt = np.empty((x.shape[1], x.shape[0]), dtype=np.float64)
        _lgb_rows_t(x, xt)
        _predict(xt, *self._arrays, out)

    def _score_counted(self, x: NDArray[np.float64], out: NDArray[np.float64]) -> None:
        cpu0 = time.thread_time()
        try:
            self._score(x, out)
        finally:
            spent = time.thread_time() - cpu0
            with _POOLS_LOCK:
                _POOL_CPU_S[0] += spent


def pool_cpu_s() -> float:
    """CPU seconds the scoring threads have spent on row blocks in this process (not the calling
    threads' share): a caller that times its own thread's CPU adds this to count a threaded predict."""
    with _POOLS_LOCK:
        return _POOL_CPU_S[0]


_POOL_CPU_S = [0.0]
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def scoring_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` scoring threads, started on first use (nothing at import); the
    predict's row blocks and the live feature bank's (``FeatureBank.run_on``) share it."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="tree-eval")
        return pool


def lgb_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The rows as LightGBM's dense-row reader hands them to the trees: a value that is neither NaN nor
    above kZeroThreshold in magnitude is absent, and an absent value reads as ``0.0``."""
    with np.errstate(invalid="ignore"):
        keep = (np.abs(x) > K_ZERO_THRESHOLD) | np.isnan(x)
    return np.where(keep, x, 0.0)


@njit(cache=True, nogil=True)  # no GIL: row blocks run on several threads (CompiledForest.predict)
def _lgb_rows_t(x: NDArray[np.float64], xt: NDArray[np.float64]) -> None:
    """``xt[f, i]`` = :func:`lgb_rows` of ``x[i, f]``: LightGBM's dense-row rule and the transpose in one
    pass (numpy's ``abs``, compares, ``where`` and transposed copy are five passes over the rows)."""
    n, k = x.shape
    for i0 in range(0, n, 64):  # tiles of 64 rows: the rows read and the columns written stay in cache
        i1 = min(i0 + 64, n)
        for f in range(k):
            for i in range(i0, i1):
                v = x[i, f]
                xt[f, i] = v if (abs(v) > K_ZERO_THRESHOLD or v != v) else 0.0


@njit(cache=True, nogil=True, inline="always")
def _step(
    xs: NDArray[np.float64],
    at: int,
    threshold: NDArray[np.float64],
    nan_right: NDArray[np.bool_],
    zero_right: NDArray[np.bool_],
    zero_rule: bool,
    child: NDArray[np.int32],
    j: int,
) -> int:
    """The child of node ``j`` for the value ``xs[at]`` (one step of :func:`_predict`'s walk)."""
    v = xs[at]
    # No branch on the data's usual values: "v > threshold" is "not v <= threshold" for any number,
    # and a NaN (both false) goes where the node sends it.
    right = (v > threshold[j]) | ((v != v) & nan_right[j])
    if zero_rule and v == 0.0:  # rare: a model with LightGBM's zero-as-missing nodes
        right = zero_right[j]
    return int(child[2 * j + np.int32(right)])


@njit(cache=True, nogil=True)  # no GIL: row blocks run on several threads (CompiledForest.predict)
def _predict(
    xt: NDArray[np.float64],
    feature: NDArray[np.int32],
    threshold: NDArray[np.float64],
    nan_right: NDArray[np.bool_],
    zero_right: NDArray[np.bool_],
    zero_rule: bool,
    child: NDArray[np.int32],
    value: NDArray[np.float64],
    root: NDArray[np.int32],
    first_sink: NDArray[np.int32],
    trees: NDArray[np.int64],
    sigmoid: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """``xt``: the rows as :func:`lgb_rows` gives them, transposed (one feature per row of ``xt``).

    Per model, trees in model order; per tree, level by level over the rows still on an internal node
    (a row that reaches a sink leaves the list, so each row takes its own leaf's depth in steps, not
    the tree's deepest); each row's sum adds its leaf values tree after tree from ``0.0``, as
    ``PredictRaw`` does, so rows never interact and any batch gives each row the same bits.
    """
    n = xt.shape[1]
    xs = xt.reshape(-1)  # feature f of row i at f * n + i
    column = np.empty(feature.shape[0], dtype=np.int64)
    for j in range(feature.shape[0]):
        column[j] = np.int64(feature[j]) * n
    raw = np.zeros(n)
    at = np.empty(n, dtype=np.int32)  # each row's node: its sink once the tree is done
    # The rows still on an internal node (in row order), read from one list and written to the other.
    rows_a = np.empty(n, dtype=np.int32)
    rows_b = np.empty(n, dtype=np.int32)
    for mdl in range(trees.shape[0] - 1):
        raw[:] = 0.0
        for t in range(trees[mdl], trees[mdl + 1]):
            r, sink = root[t], first_sink[t]
            if r >= sink:  # a tree of one leaf
                v0 = value[r]
                for i in range(n):
                    raw[i] += v0
                continue
            # The first level: every row is on the root, read in row order.
            base, cut, nan_r, zero_r, busy = column[r], threshold[r], nan_right[r], zero_right[r], 0
            for i in range(n):
                v = xs[base + i]
                right = (v > cut) | ((v != v) & nan_r)  # _step's rule, the root's values held
                if zero_rule and v == 0.0:
                    right = zero_r
                c = child[2 * r + np.int32(right)]
                at[i] = c
                busy += int(c < sink)
            # Then every row again (a row on its sink stays there) while most rows still walk: that
            # costs less per row than a list; once fewer than half walk, only the list's rows.
            while 2 * busy >= n:
                busy = 0
                for i in range(n):
                    c = _step(
                        xs, column[at[i]] + i, threshold, nan_right, zero_right, zero_rule, child, at[i]
                    )
                    at[i] = c
                    busy += int(c < sink)
            m = 0
            for i in range(n):
                rows_a[m] = i
                m += int(at[i] < sink)
            src, dst = rows_a, rows_b
            while m > 0:
                w = 0
                for k in range(m):
                    i = src[k]
                    c = _step(
                        xs, column[at[i]] + i, threshold, nan_right, zero_right, zero_rule, child, at[i]
                    )
                    at[i] = c
                    # Every row is written on; only a row still on an internal node is counted.
                    dst[w] = i
                    w += int(c < sink)
                m = w
                src, dst = dst, src
            for i in range(n):
                raw[i] += value[at[i]]
        s = sigmoid[mdl]
        for i in range(n):
            out[i, mdl] = 1.0 / (1.0 + math.exp(-s * raw[i]))


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
