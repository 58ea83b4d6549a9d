"""The model governance audit trail: every status change of a model is an appended event.

``models.status`` says where a model stands now; ``model_events`` says how it got there (who, when, why,
with which evidence). Implementations: ``adapters.timescale.model_event_repository`` (append-only
hypertable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

ModelEventKind = Literal["trained", "promoted", "retired", "rolled_back", "rejected"]
#: JSON-safe evidence attached to an event (metrics, p-values, window bounds).
EventMetrics = Mapping[str, float | int | str | bool | None]


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """One row of ``model_events``; ``time`` is set by the database when the event is appended."""

    model_version: str
    event: ModelEventKind
    reason: str = ""
    metrics: EventMetrics = field(default_factory=dict)
    actor: str = ""
    time: datetime | None = None


StatusName = Literal["champion", "challenger", "retired", "fold"]


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Set ``event.model_version``'s status to ``status`` (None: leave it) and append ``event``."""

    event: ModelEvent
    status: StatusName | None = None


class ModelEventRepository(Protocol):
    async def append(self, event: ModelEvent) -> None: ...

    async def history(
        self, model_version: str | None = None, *, limit: int | None = None
    ) -> list[ModelEvent]:
        """Events, newest first (of one model, or of all)."""
        ...

    async def apply(self, changes: Sequence[StatusChange]) -> None:
        """Apply the status changes in order and append their events, all in one transaction."""
        ...


class ModelAliasRegistry(Protocol):
    """Named pointers to model versions outside the database (MLflow's registry aliases)."""

    def point(self, alias: str, model_version: str, run_id: str | None) -> None:
        """Point ``alias`` at ``model_version`` (whose tracking run is ``run_id``)."""
        ...

    def clear(self, alias: str) -> None: ...
