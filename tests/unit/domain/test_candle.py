from datetime import datetime

import pytest

from tickwise.domain.candle import Candle, candle_problem
from tickwise.domain.errors import DataValidationError
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

T = datetime(2025, 1, 6, 9, 15, tzinfo=IST)


def test_a_consistent_candle_has_no_problem() -> None:
    assert candle_problem(Timeframe.M1, T, 100, 101, 99, 100.5, 10) is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((Timeframe.M1, T, float("nan"), 101, 99, 100, 1), "open is nan"),
        ((Timeframe.M1, T, 100, 99, 101, 100, 1), "high 99 < low 101"),
        (("7m", T, 100, 101, 99, 100, 1), "unknown timeframe"),
        ((Timeframe.M1, T.replace(tzinfo=None), 100, 101, 99, 100, 1), "naive"),
        ((Timeframe.M1, T, 100, 101, 99, 100, -1), "volume"),
    ],
)
def test_an_inconsistent_candle_names_its_problem(args: tuple, fragment: str) -> None:  # type: ignore[type-arg]
    problem = candle_problem(*args)
    assert problem is not None and fragment in problem


def test_validate_raises_a_data_validation_error_naming_the_candle() -> None:
    candle = Candle(408065, Timeframe.M1, T, 100, 99, 101, 100, 5)
    with pytest.raises(DataValidationError, match="408065 1m"):
        candle.validate()


def test_unknown_timeframes_are_rejected_with_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="expected one of 1m, 5m, 15m, 60m, 1d"):
        Timeframe.parse("2m")
