"""The retrain cadence of the nightly historical run (a pure rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tickwise.core.retrain import RetrainDecision, retrain_decision

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def decide(
    *, version: str | None = "m1", age_days: float | None = 1.0, feature_set: str = "fs", every: int = 7
) -> RetrainDecision:
    created = NOW - timedelta(days=age_days) if age_days is not None else None
    return retrain_decision(
        champion_version=version,
        champion_created_at=created,
        champion_feature_set="fs",
        feature_set=feature_set,
        now=NOW,
        every_days=every,
    )


def test_a_database_without_a_champion_trains() -> None:
    assert decide(version=None).due


def test_a_young_champion_of_the_current_features_keeps_scoring_and_says_when_the_next_retrain_is() -> None:
    decision = decide(age_days=2.0)
    assert not decision.due
    assert "2026-12-09" in decision.reason and "retrain_every_days: 7" in decision.reason


def test_a_champion_as_old_as_the_cadence_is_retrained() -> None:
    assert decide(age_days=7.0).due and decide(age_days=30.0).due
    assert not decide(age_days=6.9).due


def test_a_feature_change_retrains_at_once() -> None:
    decision = decide(age_days=0.1, feature_set="fs-new")
    assert decision.due and "fs-new" in decision.reason


def test_a_cadence_of_zero_retrains_on_every_run_and_an_unknown_age_counts_as_due() -> None:
    assert decide(age_days=0.0, every=0).due
    assert decide(age_days=None).due
