"""Model governance on the real database and a real MLflow file store: promotion only on evidence,
every change in model_events, MLflow aliases in step with the table."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tickwise.adapters.mlflow.registry import MlflowAliasRegistry
from tickwise.adapters.mlflow.tracker import MlflowTracker
from tickwise.adapters.timescale import TimescaleModelRepository
from tickwise.adapters.timescale.model_event_repository import TimescaleModelEventRepository
from tickwise.core.promotion import ComparisonResult, PromotionRule
from tickwise.domain.errors import ModelError
from tickwise.pipelines.governance import Comparison, ModelGovernance
from tickwise.ports.repositories import ModelRecord

pytestmark = pytest.mark.db


class ScriptedComparison:
    """The comparison a test wants (evaluating real models on stored data is the pipeline's job)."""

    def __init__(self, p_value: float = 1.0, days: int = 10) -> None:
        self.p_value = p_value
        self.days = days
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, challenger: ModelRecord, champion: ModelRecord) -> Comparison:
        self.calls.append((challenger.model_version, champion.model_version))
        result = ComparisonResult("bootstrap", 0.002, 0.001, self.p_value, self.days, self.days)
        return Comparison(result, self.days)


async def _setup(
    pool: asyncpg.Pool, tmp_path: Path, compare: ScriptedComparison, *versions: str
) -> tuple[ModelGovernance, TimescaleModelRepository, TimescaleModelEventRepository, MlflowAliasRegistry]:
    uri = (tmp_path / "mlruns").as_uri()
    tracker = MlflowTracker(uri)
    models = TimescaleModelRepository(pool)
    for version in versions:
        run_id = await tracker.log_run(
            run_name=version,
            params={},
            metrics={},
            tags={"model_version": version},
            files={},
            documents={},
        )
        await models.insert(ModelRecord(version, "fs", ("a",), status="challenger", mlflow_run_id=run_id))
    events = TimescaleModelEventRepository(pool)
    aliases = MlflowAliasRegistry(uri)
    governance = ModelGovernance(
        models, events, compare, PromotionRule(min_days=5), aliases=aliases, actor="test"
    )
    return governance, models, events, aliases


async def _champion(models: TimescaleModelRepository) -> str | None:
    record = await models.champion()
    return None if record is None else record.model_version


async def test_the_first_model_becomes_champion_without_a_comparison(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    compare = ScriptedComparison()
    gov, models, events, aliases = await _setup(clean_db, tmp_path, compare, "m1")
    outcome = await gov.consider("m1")
    assert outcome.status == "champion" and compare.calls == []
    assert await _champion(models) == "m1"
    (event,) = await events.history("m1")
    assert event.event == "promoted" and "no champion" in event.reason and event.actor == "test"
    assert aliases.alias("champion") == "m1" and aliases.alias("challenger") is None


async def test_a_challenger_that_is_not_significantly_better_stays_challenger_and_the_reason_is_recorded(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    compare = ScriptedComparison(p_value=0.2)
    gov, models, events, aliases = await _setup(clean_db, tmp_path, compare, "m1", "m2")
    await gov.consider("m1")
    outcome = await gov.consider("m2")
    assert outcome.status == "challenger" and outcome.decision is not None and not outcome.decision.promote
    assert compare.calls == [("m2", "m1")]
    assert await _champion(models) == "m1"
    (event,) = await events.history("m2")
    assert event.event == "rejected" and "p = 0.2000" in event.reason
    assert event.metrics["p_value"] == 0.2 and event.metrics["days"] == 10
    assert aliases.alias("champion") == "m1" and aliases.alias("challenger") == "m2"


async def test_too_few_common_out_of_sample_sessions_is_no_evidence(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    gov, _models, events, _ = await _setup(
        clean_db, tmp_path, ScriptedComparison(p_value=0.0001, days=2), "m1", "m2"
    )
    await gov.consider("m1")
    assert (await gov.consider("m2")).status == "challenger"
    assert "2 out-of-sample session(s)" in (await events.history("m2"))[0].reason


async def test_a_significantly_better_challenger_replaces_the_champion_and_both_changes_are_recorded(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    gov, models, events, aliases = await _setup(
        clean_db, tmp_path, ScriptedComparison(p_value=0.001), "m1", "m2"
    )
    await gov.consider("m1")
    assert (await gov.consider("m2")).status == "champion"
    assert await _champion(models) == "m2"
    assert [(e.model_version, e.event) for e in await events.history()] == [
        ("m2", "promoted"),
        ("m1", "retired"),
        ("m1", "promoted"),
    ]
    assert aliases.alias("champion") == "m2"


async def test_force_promotes_and_says_it_was_forced(clean_db: asyncpg.Pool, tmp_path: Path) -> None:
    gov, models, events, _ = await _setup(clean_db, tmp_path, ScriptedComparison(p_value=0.5), "m1", "m2")
    await gov.consider("m1")
    await gov.consider("m2", force=True, reason="ticket 42")
    assert await _champion(models) == "m2"
    assert (await events.history("m2"))[0].reason.startswith("ticket 42: forced by operator")


async def test_rollback_restores_the_previous_champion_and_retire_refuses_the_champion(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    gov, models, events, aliases = await _setup(
        clean_db, tmp_path, ScriptedComparison(p_value=0.001), "m1", "m2", "m3"
    )
    await gov.consider("m1")
    await gov.consider("m2")
    with pytest.raises(ModelError, match="is the champion"):
        await gov.retire("m2")
    assert await gov.rollback(reason="bad fills") == ("m2", "m1")
    assert await _champion(models) == "m1"
    assert [e.event for e in await events.history("m2")][:1] == ["rolled_back"]
    assert aliases.alias("champion") == "m1"
    await gov.retire("m3", reason="stale")
    assert (await models.get("m3")).status == "retired"  # type: ignore[union-attr]
    with pytest.raises(ModelError, match="already retired"):
        await gov.retire("m3")


async def test_fold_models_and_unknown_versions_cannot_be_promoted(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    gov, models, _, _ = await _setup(clean_db, tmp_path, ScriptedComparison(), "m1")
    await models.insert(ModelRecord("f1", "fs", ("a",), status="fold"))
    with pytest.raises(ModelError, match="fold model"):
        await gov.consider("f1")
    with pytest.raises(ModelError, match="no model version 'nope'"):
        await gov.consider("nope")
    with pytest.raises(ModelError, match="no champion to roll back"):
        await gov.rollback()


class NoCommonWindow(ScriptedComparison):
    async def __call__(self, challenger: ModelRecord, champion: ModelRecord) -> Comparison:
        return Comparison(None, 0)


async def test_without_common_out_of_sample_bars_a_challenger_is_not_promoted(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    gov, models, events, _ = await _setup(clean_db, tmp_path, NoCommonWindow(), "m1", "m2")
    await gov.consider("m1")
    assert (await gov.consider("m2")).status == "challenger"
    assert await _champion(models) == "m1"
    assert "no out-of-sample bars" in (await events.history("m2"))[0].reason


async def test_the_same_rejection_is_recorded_once_and_new_evidence_again(
    clean_db: asyncpg.Pool, tmp_path: Path
) -> None:
    compare = ScriptedComparison(p_value=0.3)
    gov, _models, events, _ = await _setup(clean_db, tmp_path, compare, "m1", "m2")
    await gov.consider("m1")
    await gov.review_challengers()
    await gov.review_challengers()
    assert [e.event for e in await events.history("m2")] == ["rejected"]
    compare.p_value = 0.2  # a new session stored: new evidence, a new verdict
    await gov.review_challengers()
    assert [e.event for e in await events.history("m2")] == ["rejected", "rejected"]
