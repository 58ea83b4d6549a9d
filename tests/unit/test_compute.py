"""compute.scheduler settings and the executors' contract (no cluster, no database)."""

from __future__ import annotations

import pytest

from tickwise.adapters.dask.executor import InProcessExecutor, open_dask
from tickwise.config import load_settings
from tickwise.domain.errors import ConfigError


def _square(x: int) -> int:
    return x * x


def test_the_default_scheduler_is_inline_with_one_worker_per_core_for_processes() -> None:
    settings = load_settings(environ={}, environment="test")
    assert settings.compute.scheduler == "inline"
    assert settings.compute.workers >= 1


@pytest.mark.parametrize("scheduler", ["inline", "processes", "tcp://10.0.0.5:8786", "tls://sched:8786"])
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
