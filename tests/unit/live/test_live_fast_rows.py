"""The hot path's row builders make exactly the objects ``__init__`` and ``dataclasses.replace`` make."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from tickwise.core.slotted import replacing
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal
from tickwise.pipelines.live.fast_rows import new_signal, positional

T0 = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)


def _values(cls: type[object]) -> list[object]:
    """A distinct value per field (so a field set from the wrong argument shows up)."""
    return [f"value-{i}-{f.name}" for i, f in enumerate(dataclasses.fields(cls))]  # type: ignore[arg-type]


def test_a_positional_signal_equals_the_one_init_builds_field_by_field() -> None:
    values = [7, Timeframe.M5, T0, T0, "m1", -1, 0.61, "live", "fs", None, 0.05, 0.7, 0.4]
    made = new_signal(*values)
    want = Signal(*values)  # type: ignore[arg-type]
    assert type(made) is Signal
    assert made == want
    for f in dataclasses.fields(Signal):
        assert getattr(made, f.name) == getattr(want, f.name)


@pytest.mark.parametrize("cls", [Signal, PendingSignal, FeatureRow])
def test_every_field_lands_in_its_own_slot(cls: type[object]) -> None:
    values = _values(cls)
    made = positional(cls)(*values)
    assert [getattr(made, f.name) for f in dataclasses.fields(cls)] == values  # type: ignore[arg-type]


def test_a_replacer_of_any_field_matches_dataclasses_replace() -> None:
    s = Signal(*_values(Signal))  # type: ignore[arg-type]
    for f in dataclasses.fields(Signal):
        change: dict[str, Any] = {f.name: "new"}
        replaced = replacing(Signal, f.name)(s, "new")
        assert replaced == dataclasses.replace(s, **change)
        with pytest.raises(dataclasses.FrozenInstanceError):  # still a frozen Signal
            setattr(replaced, f.name, "again")
    assert s == Signal(*_values(Signal))  # type: ignore[arg-type]  # the original is left alone


def test_classes_whose_init_does_more_than_set_fields_are_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("negative")

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    with pytest.raises(TypeError, match="does more than set"):
        positional(Checked)
    with pytest.raises(TypeError, match="not a slotted dataclass"):
        positional(NoSlots)
    with pytest.raises(ValueError, match="no field"):
        replacing(Signal, "nope")
