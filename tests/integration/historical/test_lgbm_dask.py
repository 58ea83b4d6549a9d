"""`lightgbm.dask` on a two-worker LocalCluster: a side's booster trained data-parallel over partitions
the workers load, compared with single-machine training on the same purged walk-forward folds."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from dask.utils import key_split
from distributed import Client, get_task_stream
from historical_support import two_worker_dask_client

from tickwise.adapters.dask.lgbm import Partition, class_balanced, fit_distributed
from tickwise.bench.distributed_training import compare_distributed_training
from tickwise.core.fitting import TUNED_DEFAULTS, TrainConfig
from tickwise.core.model import lgb_params
from tickwise.domain.errors import ModelError

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "historical"))
from historical_synthetic import synthetic_training_set

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with two_worker_dask_client() as client:
        yield client


def test_dask_training_learns_the_planted_edge_as_well_as_one_machine_on_the_same_folds(
    client: Client,
) -> None:
    ts = synthetic_training_set(n_bars=2000, n_instruments=4, edge=1.0)
    figures = compare_distributed_training(ts, TrainConfig(folds=2), client, rounds=40)
    assert len(figures["folds"]) == 2 * 2  # folds x sides
    assert all(f["partitions"] == 4 for f in figures["folds"])  # one partition per instrument
    # Both learn the planted edge; the distributed model is not the single-machine one bit for bit
    # (per-worker bins), but its out-of-sample AUC is close.
    assert figures["mean_auc_single"] > 0.7 and figures["mean_auc_dask"] > 0.7
    assert figures["max_abs_auc_diff"] < 0.03


def test_class_balance_over_all_partitions_gives_both_classes_half_the_weight() -> None:
    parts = [
        Partition(np.zeros((3, 1)), np.array([1, 0, 0]), np.ones(3)),
        Partition(np.zeros((2, 1)), np.array([0, 0]), np.array([2.0, 2.0])),
    ]
    total, pos = 7.0, 1.0
    balanced = [class_balanced(p, 0.5 * total / pos, 0.5 * total / (total - pos)) for p in parts]
    w = np.concatenate([b.weight for b in balanced])
    y = np.concatenate([b.y for b in balanced])
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum()) == pytest.approx(total / 2)


def test_one_label_class_everywhere_is_refused_with_a_clear_error(client: Client) -> None:
    load = Partition(np.ones((20, 2)), np.zeros(20, dtype=np.int8), np.ones(20))
    with pytest.raises(ModelError, match="every training label is the same"):
        fit_distributed(
            client,
            [lambda: load],
            params=lgb_params(TUNED_DEFAULTS, 7),
            num_boost_round=5,
            feature_names=["a", "b"],
        )


def _named_loads(name: str, seed: int) -> list[Callable[[], Partition]]:
    """Two partitions whose load tasks are keyed ``name-...`` on the cluster (cloudpickled by value:
    this module is not importable on the workers)."""
    loads: list[Callable[[], Partition]] = []
    for part_seed in (seed, seed + 1):
        rng = np.random.default_rng(part_seed)
        x = rng.normal(size=(300, 2))
        part = Partition(x, (x[:, 0] > 0).astype(np.int8), np.ones(300))

        def load(part: Partition = part) -> Partition:
            return part

        load.__name__ = load.__qualname__ = name
        loads.append(load)
    return loads


def test_two_fits_asked_for_at_once_on_one_cluster_run_one_after_the_other(client: Client) -> None:
    # Two lightgbm.dask trainings at once on the same workers can wait on each other for good
    # (LightGBM#4942); tickwise historical asks for fits from two threads (champion and fold models).
    workers = len(client.scheduler_info()["workers"])

    def fit(name: str, seed: int) -> None:
        fit_distributed(
            client,
            _named_loads(name, seed),
            params=lgb_params(TUNED_DEFAULTS, 7),
            num_boost_round=5,
            feature_names=["a", "b"],
            timeout_s=120,
        )

    with get_task_stream(client) as stream, ThreadPoolExecutor(max_workers=2) as threads:
        for done in [threads.submit(fit, "fit_one_load", 1), threads.submit(fit, "fit_two_load", 3)]:
            done.result()
    spans: dict[str, list[tuple[float, float]]] = {}
    for task in stream.data:
        for span in task["startstops"]:
            if span["action"] == "compute":
                spans.setdefault(key_split(task["key"]), []).append((span["start"], span["stop"]))
    first, second = sorted(("fit_one_load", "fit_two_load"), key=lambda name: min(spans[name]))
    trainings = sorted(stop for _, stop in spans["train_part"])  # lightgbm.dask's _train_part tasks
    assert len(spans[first]) == len(spans[second]) == 2 and len(trainings) >= 2 * workers
    # The second fit's loads start only after the first fit's trainings (one per worker) ended.
    assert min(start for start, _ in spans[second]) >= trainings[workers - 1]
