"""Model governance on in-memory ports: the promotion rule's outcomes and the audit trail, no database."""

from __future__ import annotations

import pytest

from fakes import InMemoryModelEventRepository, InMemoryModelRepository
from tickwise.core.promotion import ComparisonResult, PromotionRule
from tickwise.domain.errors import ModelError
from tickwise.pipelines.governance import Comparison, ModelGovernance
from tickwise.ports.repositories import ModelRecord


class Evidence:
    """A comparison that returns what the test sets (scoring stored data is the pipeline's job)."""

    def __init__(self, p_value: float | None, days: int = 10) -> None:
        self.p_value = p_value
        self.days = days

    async def __call__(self, challenger: ModelRecord, champion: ModelRecord) -> Comparison:
        if self.p_value is None:
            return Comparison(None, 0)
        return Comparison(
            ComparisonResult("bootstrap", 0.002, 0.001, self.p_value, self.days, self.days), self.days
        )


async def _governance(
    evidence: Evidence, *versions: str
) -> tuple[ModelGovernance, InMemoryModelEventRepository]:
    models = InMemoryModelRepository()
    for version in versions:
        await models.insert(ModelRecord(version, "fs", ("a",), status="challenger"))
    events = InMemoryModelEventRepository(models)
    return ModelGovernance(models, events, evidence, PromotionRule(min_days=5), actor="unit"), events


async def _status(events: InMemoryModelEventRepository, version: str) -> str:
    record = await events.models.get(version)
    assert record is not None
    return record.status


async def test_settle_promotes_the_first_model_and_only_reviews_later_ones() -> None:
    gov, events = await _governance(Evidence(p_value=0.5), "m1", "m2")
    await gov.settle("m1")
    assert await _status(events, "m1") == "champion"
    outcomes = await gov.settle("m2")
    assert [(o.model_version, o.status) for o in outcomes] == [("m2", "challenger")]
    assert [e.event for e in await events.history("m2")] == ["rejected"]


async def test_significant_evidence_over_enough_sessions_promotes_and_retires_the_old_champion() -> None:
    gov, events = await _governance(Evidence(p_value=0.01), "m1", "m2")
    await gov.settle("m1")
    await gov.review_challengers()
    assert (await _status(events, "m2"), await _status(events, "m1")) == ("champion", "retired")
    assert [(e.model_version, e.event) for e in await events.history()][:2] == [
        ("m2", "promoted"),
        ("m1", "retired"),
    ]


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        (Evidence(p_value=0.01, days=4), "4 out-of-sample session(s)"),
        (Evidence(p_value=None), "no out-of-sample bars"),
        (Evidence(p_value=0.06), "not significantly better"),
    ],
)
async def test_weak_or_missing_evidence_keeps_the_champion(evidence: Evidence, reason: str) -> None:
    gov, events = await _governance(evidence, "m1", "m2")
    await gov.settle("m1")
    await gov.consider("m2")
    assert await _status(events, "m1") == "champion"
    assert reason in (await events.history("m2"))[0].reason


async def test_a_failed_change_records_nothing() -> None:
    gov, events = await _governance(Evidence(p_value=0.01), "m1")
    with pytest.raises(ModelError):
        await gov.retire("ghost")
    await gov.settle("m1")
    with pytest.raises(ModelError, match="is the champion"):
        await gov.retire("m1")
    assert [e.event for e in await events.history()] == ["promoted"]


async def test_the_trained_event_is_recorded_once() -> None:
    gov, events = await _governance(Evidence(p_value=0.5), "m1")
    await gov.record_trained("m1", "candidate")
    await gov.record_trained("m1", "candidate")
    assert [e.event for e in await events.history("m1")] == ["trained"]
