"""Meta-labels, AFML bet sizing (labeling.md §6), the frozen label spec (§1) and the kernel benchmark."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tickwise.bench.labels import run_labels_bench
from tickwise.core.labels import LABEL_SPEC_VERSION, LabelSpec, bet_size, discretise_bet, meta_labels


def test_meta_label_is_one_only_above_the_cost_threshold() -> None:
    assert meta_labels([0.002, 0.001, 0.0, -0.01], 0.001).tolist() == [1, 0, 0, 0]
    assert meta_labels([0.0, 1e-9, -0.0]).tolist() == [0, 1, 0]


def test_bet_size_is_zero_at_chance_and_follows_the_side() -> None:
    assert bet_size([0.5], [1])[0] == pytest.approx(0.0)
    size = bet_size([0.8, 0.8, 0.2], [1, -1, 1])
    assert size[0] > 0 and size[1] == pytest.approx(-size[0]) and size[2] < 0
    assert bet_size([1.0, 0.0], [1, 1]).tolist() == [1.0, -1.0]


def test_bet_size_matches_afml_formula() -> None:
    from math import erf, sqrt

    p = 0.7
    z = (p - 0.5) / sqrt(p * (1 - p))
    assert bet_size([p], [-1])[0] == pytest.approx(-(2 * 0.5 * (1 + erf(z / sqrt(2))) - 1))


def test_bet_size_rejects_probabilities_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        bet_size([1.2], [1])


def test_discretised_bets_are_multiples_of_the_step() -> None:
    assert discretise_bet([0.26, -0.74, 0.99], 0.25).tolist() == [0.25, -0.75, 1.0]


def test_label_spec_defaults_follow_labeling_md_and_round_trip() -> None:
    spec = LabelSpec()
    # fmt: off
    assert spec.to_dict() == {
        "atr_period": 14, "k_pt": 2.0, "k_sl": 1.5, "horizon": 10, "vertical_label": "sign",
        "warmup_bars": 140, "cost_threshold": 0.0, "version": LABEL_SPEC_VERSION,
    }
    # fmt: on
    assert LabelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.horizon = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs", [{"horizon": 0}, {"k_pt": 0.0}, {"vertical_label": "up"}, {"warmup_bars": -1}]
)
def test_label_spec_rejects_invalid_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LabelSpec(**kwargs)


def test_label_spec_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown"):
        LabelSpec.from_dict({"horizon": 10, "barrier": 3})


def test_labels_bench_reports_timing_and_random_walk_label_shares() -> None:
    result = run_labels_bench(n_events=20_000, repeats=1)
    assert result["n_events"] == 20_000 and result["seconds"] > 0
    shares = result["share_pos"] + result["share_neg"] + result["share_zero"]
    assert shares == pytest.approx(1.0)
    assert 0.35 < result["share_pos"] < 0.55  # labeling.md: ≈ 45 % +1 on a random walk
    assert np.isfinite(result["events_per_second"])
