"""The deadline on Dask work hands back what finished in time, as it finished: the result, or the
work's own error (a hang past the deadline is proven on a real cluster in
tests/integration/historical/test_dask_fit_deadline.py)."""

from __future__ import annotations

import pytest

from fakes import IdleDaskClient
from tickwise.adapters.dask.deadline import run_with_deadline
from tickwise.domain.errors import ModelError

NO_CLIENT = IdleDaskClient()


def test_work_that_finishes_in_time_returns_its_result() -> None:
    assert run_with_deadline(NO_CLIENT, lambda: 42, timeout_s=5, what="w", hint="h") == 42


def test_work_that_fails_in_time_raises_its_own_error_in_the_callers_thread() -> None:
    def fail() -> int:
        raise ModelError("every training label is the same")

    with pytest.raises(ModelError, match="every training label is the same"):
        run_with_deadline(NO_CLIENT, fail, timeout_s=5, what="w", hint="h")


@pytest.mark.parametrize("timeout_s", [0.0, -1.0, float("nan"), float("inf")])
def test_a_deadline_that_is_not_a_positive_span_is_refused(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="timeout_s must be a positive number of seconds"):
        run_with_deadline(NO_CLIENT, lambda: 1, timeout_s=timeout_s, what="w", hint="h")
