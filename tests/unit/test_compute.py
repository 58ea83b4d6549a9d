"""compute.scheduler settings and the executors' contract (no cluster, no database)."""

from __future__ import annotations

import os

import pytest

from tickwise.adapters.dask.executor import InProcessExecutor, open_dask
from tickwise.adapters.local.process_pool import WorkerDied, open_process_pool
from tickwise.config import ComputeSettings, load_settings
from tickwise.domain.errors import ConfigError
from tickwise.ports.compute import TaskPool


def _square(x: int) -> int:
    return x * x


def test_the_default_scheduler_is_a_pool_with_one_worker_per_core() -> None:
    settings = load_settings(environ={}, environment="development")
    assert settings.compute.scheduler == "pool" == ComputeSettings().scheduler
    assert settings.compute.workers >= 1


def test_the_test_environment_derives_inline() -> None:
    assert load_settings(environ={}, environment="test").compute.scheduler == "inline"


@pytest.mark.parametrize(
    "scheduler", ["inline", "pool", "processes", "tcp://10.0.0.5:8786", "tls://sched:8786"]
)
def test_known_schedulers_are_accepted(scheduler: str) -> None:
    settings = load_settings(environ={"TICKWISE__COMPUTE__SCHEDULER": scheduler}, environment="test")
    assert settings.compute.scheduler == scheduler


def test_an_unknown_scheduler_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="compute"):
        load_settings(environ={"TICKWISE__COMPUTE__SCHEDULER": "threads"}, environment="test")


def test_the_in_process_executor_returns_results_in_item_order() -> None:
    assert InProcessExecutor().map(_square, [3, 1, 2]) == [9, 1, 4]


def test_open_dask_refuses_an_unknown_scheduler_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not 'inline', 'processes'"), open_dask("threads", 1):
        pass


_WARMED: list[str] = []


def _warm() -> None:
    _WARMED.append("warm")


def _warmed_and_square(x: int) -> tuple[list[str], int]:
    return list(_WARMED), x * x


def _fail(x: int) -> int:
    raise ValueError(f"bad item {x}")


def _die(x: int) -> int:
    os._exit(3)  # a worker that ends without returning (killed, out of memory)


def test_a_process_pool_warms_each_worker_once_and_returns_results_in_item_order() -> None:
    with open_process_pool(2, _warm) as pool:
        assert isinstance(pool, TaskPool)  # the derive hands it each task as soon as it is made
        assert pool.description == "process pool (2 processes)"
        assert pool.map(_warmed_and_square, [3, 1, 2]) == [(["warm"], 9), (["warm"], 1), (["warm"], 4)]
        future = pool.submit(_warmed_and_square, 5)
        assert pool.result(future) == (["warm"], 25)
    assert _WARMED == []  # the warm-up ran in the workers, not here


def test_a_task_that_fails_in_a_worker_raises_its_own_error_here() -> None:
    with open_process_pool(1) as pool, pytest.raises(ValueError, match="bad item 7"):
        pool.map(_fail, [7])


def test_a_worker_that_dies_is_reported_as_such_not_as_a_hang() -> None:
    with open_process_pool(1) as pool, pytest.raises(WorkerDied, match="ended without returning"):
        pool.map(_die, [1])


def test_a_process_pool_needs_a_worker() -> None:
    with pytest.raises(ConfigError, match=r"compute\.workers"), open_process_pool(0):
        pass
