"""Jittered exponential backoff: 1 s x 2^n capped at 60 s."""

from __future__ import annotations

import random

import pytest

from tickwise.domain.backoff import Backoff


def test_nominal_schedule_doubles_then_caps_at_sixty_seconds() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=60.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert Backoff(cap=60.0, jitter=0.0).delay(10_000) == 60.0


def test_jitter_stays_within_its_band_and_under_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=0.2, rng=random.Random(1))
    for attempt in range(10):
        nominal = backoff.nominal(attempt)
        for _ in range(50):
            delay = backoff.delay(attempt)
            assert 0.8 * nominal <= delay <= min(60.0, 1.2 * nominal)


def test_jitter_actually_varies_the_delay() -> None:
    backoff = Backoff(jitter=0.2, rng=random.Random(3))
    assert len({round(backoff.delay(2), 6) for _ in range(20)}) > 10


@pytest.mark.parametrize("kwargs", [{"base": -1.0}, {"factor": 0.5}, {"jitter": 1.0}, {"cap": -1.0}])
def test_invalid_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(-1)
