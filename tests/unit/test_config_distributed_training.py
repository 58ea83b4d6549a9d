"""``model_training.distributed`` needs a cluster: with ``compute.scheduler: inline`` it is a
configuration error with a clear message, never a silent fallback to one process."""

from __future__ import annotations

import pytest

from tickwise.config import load_settings
from tickwise.domain.errors import ConfigError


def test_distributed_training_is_off_by_default() -> None:
    assert load_settings(environ={}).model_training.distributed is False


@pytest.mark.parametrize("scheduler", ["inline", "pool"])
def test_distributed_training_without_a_dask_scheduler_is_a_config_error_naming_both_keys(
    scheduler: str,
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            environ={
                "TICKWISE__MODEL_TRAINING__DISTRIBUTED": "true",
                "TICKWISE__COMPUTE__SCHEDULER": scheduler,
            }
        )
    message = str(err.value)
    assert "model_training.distributed" in message and "compute.scheduler" in message
    assert f"'{scheduler}'" in message and "processes" in message and "tcp://" in message


def test_distributed_training_with_the_default_scheduler_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'pool'"):
        load_settings(environ={"TICKWISE__MODEL_TRAINING__DISTRIBUTED": "true"})


@pytest.mark.parametrize("scheduler", ["processes", "tcp://127.0.0.1:8786"])
def test_distributed_training_on_a_local_cluster_or_a_scheduler_address_is_accepted(scheduler: str) -> None:
    settings = load_settings(
        environ={"TICKWISE__MODEL_TRAINING__DISTRIBUTED": "true", "TICKWISE__COMPUTE__SCHEDULER": scheduler}
    )
    assert settings.model_training.distributed and settings.compute.scheduler == scheduler


def test_an_error_across_sections_shows_its_message_and_never_the_secrets_of_the_configuration() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            environ={
                "TICKWISE__MODEL_TRAINING__DISTRIBUTED": "true",
                "TICKWISE__MODEL_TRAINING__MLFLOW_URI": "http://user:hunter2-secret@mlflow.local",
            }
        )
    message = str(err.value)
    assert "hunter2-secret" not in message
    assert message.startswith("invalid configuration: model_training.distributed is true")


def test_the_distributed_fit_timeout_defaults_to_the_adapters_deadline() -> None:
    from tickwise.adapters.dask.lgbm import DEFAULT_TIMEOUT_S

    assert load_settings(environ={}).model_training.distributed_timeout_s == DEFAULT_TIMEOUT_S == 1800.0


@pytest.mark.parametrize("value", ["0", "-5", "86401", "soon"])
def test_a_distributed_fit_timeout_that_is_not_a_positive_span_is_a_config_error_naming_the_key(
    value: str,
) -> None:
    with pytest.raises(ConfigError, match="distributed_timeout_s"):
        load_settings(environ={"TICKWISE__MODEL_TRAINING__DISTRIBUTED_TIMEOUT_S": value})
