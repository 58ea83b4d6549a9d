"""When the nightly ``tickwise historical`` retrains: the cadence rule, as a pure function.

Between retrains the run still fetches the new sessions, derives their features and labels and scores
them with the champion; training (the slow step) runs when the cadence says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    due: bool
    reason: str  # one line for the run's summary and log


def retrain_decision(
    *,
    champion_version: str | None,
    champion_created_at: datetime | None,
    champion_feature_set: str | None,
    feature_set: str,
    now: datetime,
    every_days: int,
) -> RetrainDecision:
    """Train when there is no champion, when the features changed, when ``every_days`` is 0 (every
    run), or when the champion is at least ``every_days`` days old; otherwise keep scoring with it.

    ``now`` and ``champion_created_at`` are tz-aware instants; a champion without a creation time
    counts as due (its age is unknown).
    """
    if champion_version is None:
        return RetrainDecision(True, "no champion model yet")
    if champion_feature_set != feature_set:
        return RetrainDecision(
            True,
            f"the champion {champion_version} uses feature set {champion_feature_set}, this build {feature_set}",
        )
    if every_days == 0:
        return RetrainDecision(True, "model_training.retrain_every_days is 0: retrain on every run")
    if champion_created_at is None:
        return RetrainDecision(True, f"the champion {champion_version} has no creation time")
    next_due = champion_created_at + timedelta(days=every_days)
    if now >= next_due:
        age = (now - champion_created_at).total_seconds() / 86400
        return RetrainDecision(
            True, f"the champion {champion_version} is {age:.1f} days old (cadence {every_days} days)"
        )
    return RetrainDecision(
        False,
        f"retrain not due: the champion {champion_version} was trained {champion_created_at:%Y-%m-%d %H:%M %Z}, "
        f"next retrain from {next_due:%Y-%m-%d %H:%M %Z} (model_training.retrain_every_days: {every_days}); "
        "new bars are scored with it (`tickwise train` retrains now)",
    )
