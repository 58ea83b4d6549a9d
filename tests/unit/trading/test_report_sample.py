"""A report says whether its numbers are in-sample: the rule, case by case."""

from datetime import UTC, datetime

from tickwise.pipelines.backtest.report import importance_shares, sample_of
from tickwise.ports.repositories import ModelRecord

START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def model(trained_from: datetime | None, trained_to: datetime | None) -> ModelRecord:
    return ModelRecord("m", "fs", ("a",), trained_from=trained_from, trained_to=trained_to)


def test_the_oos_set_is_out_of_sample() -> None:
    assert sample_of("oos", START, END, None)[0] == "out-of-sample"


def test_a_model_trained_before_the_run_is_out_of_sample() -> None:
    assert sample_of(
        "m", START, END, model(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC))
    )[0] == ("out-of-sample")


def test_a_run_inside_the_training_window_is_in_sample() -> None:
    label, note = sample_of(
        "m", START, END, model(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC))
    )
    assert label == "IN-SAMPLE" and "overstate" in note


def test_an_overlap_is_partly_in_sample_and_no_window_is_unknown() -> None:
    assert sample_of(
        "m", START, END, model(datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC))
    )[0] == ("partly in-sample")
    assert sample_of("m", START, END, model(None, None))[0] == "unknown"
    assert sample_of("m", START, END, None)[0] == "unknown"


def test_feature_importance_is_the_share_of_gain_summed_over_both_side_models() -> None:
    shares = importance_shares(["a", "b", "c"], [[6.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
    assert shares == [("a", 0.8), ("b", 0.2), ("c", 0.0)]
    assert importance_shares(["a"], [[0.0]]) == []
