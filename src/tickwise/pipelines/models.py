"""Using a trained model, in both modes: load a version (champion by default) through the ports, and
build its signal generator with the configured thresholds.

Shared by ``pipelines.historical`` (batch predict) and the live wiring, so neither borrows from the
other (see the import rules in docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tickwise.core.model import ModelArtifact
from tickwise.core.signals import SignalGenerator, model_signal_generator
from tickwise.domain.errors import ModelError
from tickwise.ports.model_store import ModelStore
from tickwise.ports.repositories import ModelRepository


@dataclass(frozen=True, slots=True)
class SignalOptions:
    """``model_training.signal_threshold`` / ``kelly_fraction`` / ``max_position``, ``signals.regime_filter``
    (core.signals), and ``signals.meta.step`` (None when ``signals.meta.enabled`` is false: no meta sizing)."""

    threshold: float = 0.55
    kelly_fraction: float = 0.25
    max_position: float = 0.1
    meta_step: float | None = 0.1
    suppress_states: tuple[int, ...] = ()
    max_change_prob: float | None = None


class ModelSource(Protocol):
    """Where models come from: the ``models`` table and the bundle store."""

    @property
    def models(self) -> ModelRepository: ...
    @property
    def store(self) -> ModelStore: ...


async def load_model(source: ModelSource, version: str | None) -> ModelArtifact:
    """Model ``version`` (None: the champion), with a ``ModelError`` that says what to run when absent."""
    record = await (source.models.get(version) if version else source.models.champion())
    if record is None:
        if version:
            raise ModelError(
                f"no model version {version!r} in the models table (list them: SELECT model_version, status FROM models)"  # nosec B608: an error message naming a query for the user, not SQL that is executed
            )
        raise ModelError("no champion model yet; run `tickwise train` (or `tickwise historical`) first")
    where = record.artifact_path or record.model_version
    files = await source.store.load(record.model_version, record.artifact_path)
    artifact = ModelArtifact.from_files(files, where=where)
    if artifact.version != record.model_version:
        raise ModelError(f"bundle at {where} holds model {artifact.version}, not {record.model_version}")
    return artifact


def signal_generator(options: SignalOptions, artifact: ModelArtifact) -> SignalGenerator:
    """The generator for ``artifact`` with the configured thresholds (see core.signals)."""
    return model_signal_generator(
        artifact.label_spec,
        threshold=options.threshold,
        kelly_fraction=options.kelly_fraction,
        max_position=options.max_position,
        meta_step=options.meta_step,
        suppress_states=options.suppress_states,
        max_change_prob=options.max_change_prob,
    )
