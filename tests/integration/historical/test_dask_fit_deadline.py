"""A distributed fit that hangs in ``lightgbm.dask``'s port assignment (LightGBM#4942) fails with a
``ModelError`` once its deadline passes, instead of waiting forever, and leaves the cluster able to
train the next fit: on a real two-process ``LocalCluster`` whose workers block in the port step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from distributed import Client
from historical_support import hang_watchdog, two_worker_dask_client

from tickwise.adapters.dask.deadline import RESTART_TIMEOUT_S, DeadlineExceeded
from tickwise.adapters.dask.lgbm import Partition, fit_distributed
from tickwise.core.fitting import TUNED_DEFAULTS
from tickwise.core.model import lgb_params

pytestmark = pytest.mark.slow

DEADLINE_S = 20.0
FEATURES = ["signal", "noise_a", "noise_b"]


@pytest.fixture
def client() -> Iterator[Client]:
    # A cluster of its own: the test patches its workers' lightgbm, and they are restarted.
    with two_worker_dask_client() as client:
        yield client


def _loads() -> list[Callable[[], Partition]]:
    parts = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(400, len(FEATURES)))
        y = (x[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(np.int8)
        parts.append(Partition(x, y, np.ones(400)))
    # Lambdas travel by value (cloudpickle); this test module is not importable on the workers.
    return [lambda part=part: part for part in parts]


def _block_the_port_step() -> None:
    """Run on each worker: lightgbm.dask's ``_acquire_port`` (resolved by name when the task arrives)
    now never returns, as the port step of the hang that was seen in CI never did."""
    import threading

    import lightgbm.dask

    def acquire_port_never() -> tuple[object, int]:
        threading.Event().wait()
        raise AssertionError("unreachable")

    lightgbm.dask._acquire_port = acquire_port_never  # type: ignore[assignment]


def _fit(client: Client, timeout_s: float) -> object:
    return fit_distributed(
        client,
        _loads(),
        params=lgb_params(TUNED_DEFAULTS, 7),
        num_boost_round=5,
        feature_names=FEATURES,
        timeout_s=timeout_s,
    )


def test_a_fit_hung_in_the_port_step_fails_after_its_deadline_naming_it_and_the_next_fit_trains(
    client: Client,
) -> None:
    with hang_watchdog(DEADLINE_S + RESTART_TIMEOUT_S + 120):
        client.run(_block_the_port_step)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as err:
            _fit(client, DEADLINE_S)
        waited = time.monotonic() - started

        # The error came at the deadline plus restarting the two blocked workers (bounded), not never.
        assert DEADLINE_S <= waited < DEADLINE_S + RESTART_TIMEOUT_S
        message = str(err.value)
        assert f"did not finish within {DEADLINE_S:g} s" in message
        assert "acquire_port (2)" in message  # the hung step, one task per worker
        assert "were restarted" in message and "failed" not in message
        for what_to_do in ("retry", "model_training.distributed_timeout_s", "distributed: false"):
            assert what_to_do in message
        assert not client.futures  # nothing of the hung fit is left pending

        booster = _fit(client, 120.0)  # fresh workers: lightgbm's own port step again
        assert booster.num_trees() == 5 and booster.feature_name() == FEATURES  # type: ignore[attr-defined]
        x = _loads()[0]().x
        scores = booster.predict(x)  # type: ignore[attr-defined]
        assert float(np.mean(scores[x[:, 0] > 0])) > float(np.mean(scores[x[:, 0] <= 0]))


def test_the_hang_watchdog_fails_a_stalled_block_with_every_threads_stack() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="the test hung for 1 s") as err, hang_watchdog(1):
        threading.Event().wait(30)  # a watchdog that never fires lets this return after 30 s
    assert time.monotonic() - started < 10
    assert "thread MainThread:" in str(err.value)
    assert "test_the_hang_watchdog_fails_a_stalled_block_with_every_threads_stack" in str(err.value)
    threading.Event().wait(1.5)  # the timer is off again: nothing fires after the block
