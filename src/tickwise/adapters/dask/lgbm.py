"""LightGBM's Dask interface (``lightgbm.dask``) on the compute cluster: one side's booster trained
data-parallel over partitions that the workers load themselves (e.g. one instrument's rows each,
straight from TimescaleDB), so the training matrix never passes through one process.

Settings (docs/scaling.md, "Distributed training"): the tuned parameters plus ``BASE_PARAMS``
(``deterministic``, ``force_row_wise``, ``max_bin`` 63; the thread count is each Dask worker's, one
in tickwise's clusters) and the seeds, as
single-machine training; ``tree_learner="data"``: every worker builds histograms of its own rows and
LightGBM merges them. Bin boundaries come from each worker's sample of its own partition, and which
worker holds which partitions (in which order) is Dask's run-time choice, so the model is neither the
single-machine model nor reproducible bit for bit (measured in docs/scaling.md).

A fit has a deadline (``timeout_s``, ``model_training.distributed_timeout_s``): ``lightgbm.dask`` can
hang for good (LightGBM#4942), so past it the fit is cancelled and fails with a ``ModelError`` that
says what was still pending (``adapters.dask.deadline``); LightGBM's own socket ``time_out`` is set to
the same span, so a worker stuck connecting to its peers gives up too.

Fits on one cluster run one at a time: LightGBM#4942's hang is two ``lightgbm.dask`` trainings at once
on the same workers (each worker's one thread held by one training's part, waiting for its peers
whose thread another training holds), and ``tickwise historical`` fits the champion and the
walk-forward fold models from two threads. Each fit already uses every worker, so little is lost.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import lightgbm as lgb
import numpy as np

from tickwise.adapters.dask.deadline import run_with_deadline
from tickwise.domain.errors import ModelError

__all__ = ["DEFAULT_TIMEOUT_S", "Partition", "class_balanced", "fit_distributed"]

ParamValue = float | int | str | bool

# model_training.distributed_timeout_s's default: far above a real side's fit (docs/scaling.md).
DEFAULT_TIMEOUT_S = 1800.0


# One lock per client (a cluster): a client that is gone takes its lock with it.
_FIT_LOCKS: weakref.WeakKeyDictionary[object, threading.Lock] = weakref.WeakKeyDictionary()
_FIT_LOCKS_GUARD = threading.Lock()


def _fit_lock(client: object) -> threading.Lock:
    with _FIT_LOCKS_GUARD:
        lock = _FIT_LOCKS.get(client)
        if lock is None:
            lock = _FIT_LOCKS[client] = threading.Lock()
        return lock


@dataclass(frozen=True)
class Partition:
    """One partition of a side's training rows: features, 0/1 labels and weights, row-aligned.

    ``balance``: the (positive, total) weight of the rows the partition was subsampled from, when it is
    a sample (``max_train_rows``): single-machine training balances the classes on all of a window's
    rows before it subsamples them, and so does ``fit_distributed`` with these sums.
    """

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    balance: tuple[float, float] | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _sums(part: Partition) -> tuple[int, float, float]:
    if part.balance is not None:
        return len(part), part.balance[0], part.balance[1]
    w = part.weight
    return len(part), float(w[part.y == 1].sum()), float(w.sum())


def class_balanced(part: Partition, pos_factor: float, neg_factor: float) -> Partition:
    """The partition with the positive and negative rows' weights scaled (class balance over all
    partitions: the factors come from their summed weights)."""
    w = np.where(part.y == 1, part.weight * pos_factor, part.weight * neg_factor)
    return Partition(part.x, part.y, w, part.balance)


def _x(part: Partition) -> np.ndarray:
    return np.ascontiguousarray(part.x, dtype=np.float64)


def _y(part: Partition) -> np.ndarray:
    return part.y.astype(np.float64)


def _w(part: Partition) -> np.ndarray:
    return part.weight.astype(np.float64)


def fit_distributed(
    client: object,
    loads: Sequence[Callable[[], Partition]],
    *,
    params: Mapping[str, ParamValue],
    num_boost_round: int,
    feature_names: Sequence[str],
    class_balance: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> lgb.Booster:
    """Train one binary booster with ``lightgbm.DaskLGBMClassifier`` on ``client``'s cluster.

    ``loads``: picklable functions, one per partition, each run on a worker to load its partition
    there. ``class_balance`` scales the weights as single-machine training does (``training_weights``),
    with the class totals summed over all partitions. Returns the trained booster, local to this process.
    Raises ``ModelError`` (``DeadlineExceeded``) when the fit, loads included, takes over ``timeout_s``
    seconds; its pending work is cancelled and the workers executing it restarted first. A fit waits
    for the fit running on the same client, from another thread, to end (module docstring); the
    deadline counts from its own start.
    """
    fit = functools.partial(
        _fit,
        client,
        loads,
        params={**params, "time_out": max(1, math.ceil(timeout_s / 60))},  # LightGBM's, in minutes
        num_boost_round=num_boost_round,
        feature_names=feature_names,
        class_balance=class_balance,
    )
    with _fit_lock(client):
        return run_with_deadline(
            client,
            fit,
            timeout_s=timeout_s,
            what=f"the distributed LightGBM fit ({len(loads)} partitions, {num_boost_round} rounds)",
            hint=(
                "lightgbm.dask can hang in its port assignment (LightGBM#4942): retry the run, raise "
                "model_training.distributed_timeout_s if a fit this large needs longer, or set "
                "model_training.distributed: false to train in this process."
            ),
        )


def _fit(
    client: object,
    loads: Sequence[Callable[[], Partition]],
    *,
    params: Mapping[str, ParamValue],
    num_boost_round: int,
    feature_names: Sequence[str],
    class_balance: bool,
) -> lgb.Booster:
    import dask.array as da
    from dask.delayed import delayed
    from distributed import Client
    from lightgbm.dask import DaskLGBMClassifier

    dask_client = cast(Client, client)
    futures = [dask_client.submit(load, pure=False) for load in loads]
    sums = cast(
        list[tuple[int, float, float]],
        dask_client.gather([dask_client.submit(_sums, f) for f in futures]),  # type: ignore[no-untyped-call]
    )
    kept = [(f, n) for f, (n, _, _) in zip(futures, sums, strict=True) if n > 0]
    if not kept:
        raise ModelError("no training rows in any partition")
    pos = sum(s[1] for s in sums)
    total = sum(s[2] for s in sums)
    if pos <= 0 or pos >= total:
        raise ModelError("cannot train a binary model: every training label is the same")
    if class_balance:
        pos_factor, neg_factor = 0.5 * total / pos, 0.5 * total / (total - pos)
        kept = [(dask_client.submit(class_balanced, f, pos_factor, neg_factor), n) for f, n in kept]
    k = len(feature_names)

    def column(fn: Callable[[Partition], np.ndarray], wide: bool) -> da.Array:
        # One dask array over the partitions, each block computed where its partition lives.
        blocks = [
            da.from_delayed(delayed(fn)(f), shape=(n, k) if wide else (n,), dtype=np.float64)  # type: ignore[no-untyped-call]
            for f, n in kept
        ]
        return cast(da.Array, da.concatenate(blocks))  # type: ignore[no-untyped-call]

    x, y, w = column(_x, True), column(_y, False), column(_w, False)
    # lightgbm.dask sets each worker's thread count from the Dask worker's own (one thread per worker
    # in tickwise's clusters) and warns about ``num_threads``.
    dropped = ("metric", "verbosity", "num_threads", "n_jobs")
    settings = {key: value for key, value in params.items() if key not in dropped}
    model = DaskLGBMClassifier(client=dask_client, n_estimators=num_boost_round, tree_learner="data")
    model.set_params(**settings, verbose=-1)  # LightGBM's own parameter names (aliases accepted)
    with warnings.catch_warnings():
        # The sklearn wrapper always passes n_jobs, which lightgbm.dask replaces by the worker's threads.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored", category=UserWarning)
        model.fit(x, y, sample_weight=w, feature_name=list(feature_names))
    booster: lgb.Booster = model.to_local().booster_
    return booster
