"""Model governance: who is champion, why, and the audit trail of every change.

Every status change goes through here and appends to ``model_events`` in the same transaction
(``ModelEventRepository.apply``); afterwards the MLflow registry aliases ``champion`` and ``challenger``
are pointed at the table's champion and newest challenger (the table stays authoritative: an alias
that cannot be set is reported, never the other way round).

A challenger becomes champion only through :func:`core.promotion.decide` on a comparison over the
**same** out-of-sample window (bars after both models' ``trained_to`` plus the embargo); otherwise it
stays challenger and a ``rejected`` event records why. ``force`` promotes anyway and says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tickwise.core.promotion import ComparisonResult, PromotionDecision, PromotionRule, decide
from tickwise.domain.errors import ModelError
from tickwise.ports.model_events import (
    EventMetrics,
    ModelAliasRegistry,
    ModelEvent,
    ModelEventRepository,
    StatusChange,
)
from tickwise.ports.repositories import ModelRecord, ModelRepository


@dataclass(frozen=True, slots=True)
class Comparison:
    """Challenger vs champion on their common out-of-sample window (``result`` None: nothing to compare)."""

    result: ComparisonResult | None
    days: int
    window_from: datetime | None = None
    window_to: datetime | None = None


Compare = Callable[[ModelRecord, ModelRecord], Awaitable[Comparison]]


@dataclass(frozen=True, slots=True)
class GovernanceOutcome:
    model_version: str
    status: str
    decision: PromotionDecision | None = None


def _evidence(comparison: Comparison | None, rule: PromotionRule) -> EventMetrics:
    if comparison is None:
        return {}
    out: dict[str, float | int | str | bool | None] = {"days": comparison.days, "alpha": rule.alpha}
    if comparison.window_from is not None:
        out["window_from"] = comparison.window_from.isoformat()
    if comparison.window_to is not None:
        out["window_to"] = comparison.window_to.isoformat()
    r = comparison.result
    if r is not None:
        out.update(
            {
                "test": r.test,
                "challenger": r.challenger,
                "champion": r.champion,
                "p_value": r.p_value,
                "n": r.n,
            }
        )
    return out


class ModelGovernance:
    """Promote, retire, roll back and review models, recording each change in ``model_events``."""

    def __init__(
        self,
        models: ModelRepository,
        events: ModelEventRepository,
        compare: Compare,
        rule: PromotionRule,
        *,
        aliases: ModelAliasRegistry | None = None,
        actor: str = "",
        on_alias_error: Callable[[str], None] | None = None,
    ) -> None:
        self._models = models
        self._events = events
        self._compare = compare
        self._rule = rule
        self._aliases = aliases
        self._actor = actor
        self._on_alias_error = on_alias_error

    def _event(self, version: str, kind: str, reason: str, metrics: EventMetrics | None = None) -> ModelEvent:
        return ModelEvent(version, kind, reason, dict(metrics or {}), self._actor)  # type: ignore[arg-type]

    async def _get(self, version: str) -> ModelRecord:
        record = await self._models.get(version)
        if record is None:
            raise ModelError(f"no model version {version!r} (see `tickwise models list`)")
        return record

    async def record_trained(self, version: str, reason: str, metrics: EventMetrics | None = None) -> None:
        """Append the ``trained`` event of a registered model (fold or candidate), once: a run killed
        between registering the model and recording the event records it on the re-run."""
        if any(e.event == "trained" for e in await self._events.history(version)):
            return
        await self._events.append(self._event(version, "trained", reason, metrics))

    async def consider(self, version: str, *, force: bool = False, reason: str = "") -> GovernanceOutcome:
        """Promote ``version`` if it beats the champion by the rule (or there is none, or ``force``);
        otherwise keep it challenger and record a ``rejected`` event with the evidence."""
        record = await self._get(version)
        if record.status == "champion":
            raise ModelError(f"{version} is already the champion")
        if record.status == "fold":
            raise ModelError(f"{version} is a walk-forward fold model (history only); it cannot be champion")
        champion = await self._models.champion()
        comparison = None if champion is None else await self._compare(record, champion)
        if comparison is None:
            decision = decide(self._rule, None, days=0)
        elif comparison.result is None:
            since = "" if comparison.window_from is None else f" after {comparison.window_from.isoformat()}"
            decision = PromotionDecision(
                False, f"no out-of-sample bars{since} that both it and the champion can score yet", None
            )
        else:
            decision = decide(self._rule, comparison.result, days=comparison.days)
        evidence = _evidence(comparison, self._rule)
        note = f"{reason}: " if reason else ""
        if decision.promote or force:
            why = decision.reason if decision.promote else f"forced by operator despite: {decision.reason}"
            changes = []
            if champion is not None:
                changes.append(
                    StatusChange(
                        self._event(champion.model_version, "retired", f"replaced by {version}"), "retired"
                    )
                )
            changes.append(StatusChange(self._event(version, "promoted", note + why, evidence), "champion"))
            await self._events.apply(changes)
            await self.sync_aliases()
            return GovernanceOutcome(version, "champion", decision)
        # The status stays what it was (a challenger stays challenger); only the evidence is recorded,
        # once per distinct verdict: a re-run on the same data does not repeat the same rejection.
        reason = note + decision.reason
        latest = await self._events.history(version, limit=1)
        if not (latest and latest[0].event == "rejected" and latest[0].reason == reason):
            await self._events.apply([StatusChange(self._event(version, "rejected", reason, evidence))])
        await self.sync_aliases()
        return GovernanceOutcome(version, record.status, decision)

    async def retire(self, version: str, *, reason: str = "") -> GovernanceOutcome:
        record = await self._get(version)
        if record.status == "champion":
            raise ModelError(
                f"{version} is the champion; promote another model or `tickwise models rollback` first"
            )
        if record.status == "retired":
            raise ModelError(f"{version} is already retired")
        await self._events.apply(
            [StatusChange(self._event(version, "retired", reason or "retired by operator"), "retired")]
        )
        await self.sync_aliases()
        return GovernanceOutcome(version, "retired")

    async def rollback(self, *, reason: str = "") -> tuple[str, str]:
        """Demote the champion and restore the champion before it. Returns (demoted, restored)."""
        champion = await self._models.champion()
        if champion is None:
            raise ModelError("there is no champion to roll back")
        current = champion.model_version
        previous = None
        for event in await self._events.history():
            if event.event == "promoted" and event.model_version != current:
                candidate = await self._models.get(event.model_version)
                if candidate is not None and candidate.status != "fold":
                    previous = candidate.model_version
                    break
        if previous is None:
            raise ModelError(
                f"no earlier champion to roll back to from {current} (see `tickwise models show`)"
            )
        why = reason or "rolled back by operator"
        await self._events.apply(
            [
                StatusChange(self._event(current, "rolled_back", f"{why}; {previous} restored"), "retired"),
                StatusChange(self._event(previous, "promoted", f"rollback of {current}: {why}"), "champion"),
            ]
        )
        await self.sync_aliases()
        return current, previous

    async def settle(self, version: str) -> list[GovernanceOutcome]:
        """After training ``version``: promote it when there is no champion, then re-test every challenger
        (``version`` included) against the champion on the out-of-sample data stored so far."""
        outcomes = []
        if await self._models.champion() is None:
            record = await self._get(version)
            if record.status not in ("champion", "fold"):
                outcomes.append(await self.consider(version))
        return outcomes + await self.review_challengers()

    async def review_challengers(self) -> list[GovernanceOutcome]:
        """Re-test every challenger against the champion on the out-of-sample data stored so far."""
        outcomes = []
        for record in await self._models.list(status="challenger"):
            if await self._models.champion() is None:
                break
            outcomes.append(await self.consider(record.model_version, reason="review"))
        return outcomes

    async def sync_aliases(self) -> None:
        """Point MLflow's ``champion`` and ``challenger`` aliases at the table's champion and newest challenger."""
        if self._aliases is None:
            return
        champion = await self._models.champion()
        challengers = await self._models.list(status="challenger")
        for alias, record in (
            ("champion", champion),
            ("challenger", challengers[0] if challengers else None),
        ):
            try:
                if record is None:
                    self._aliases.clear(alias)
                else:
                    self._aliases.point(alias, record.model_version, record.mlflow_run_id)
            except Exception as exc:  # the table is authoritative; a registry hiccup must not undo it
                if self._on_alias_error is not None:
                    self._on_alias_error(f"MLflow alias {alias!r} not updated: {exc}")
