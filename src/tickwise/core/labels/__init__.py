"""Triple-barrier labels, meta-labels and the label spec (labeling.md); training-only, never imported live."""

from tickwise.core.labels.barrier import BarrierResult, triple_barrier
from tickwise.core.labels.events import LABEL_COLUMNS, label_both_sides, label_events
from tickwise.core.labels.meta import bet_size, discretise_bet, meta_labels, primary_meta_labels
from tickwise.core.labels.spec import (
    BARRIER_NAMES,
    DROP_ATR_NAN,
    DROP_CENSORED,
    DROP_REASONS,
    LABEL_SPEC_VERSION,
    LabelSpec,
)

__all__ = [
    "BARRIER_NAMES",
    "DROP_ATR_NAN",
    "DROP_CENSORED",
    "DROP_REASONS",
    "LABEL_COLUMNS",
    "LABEL_SPEC_VERSION",
    "BarrierResult",
    "LabelSpec",
    "bet_size",
    "discretise_bet",
    "label_both_sides",
    "label_events",
    "meta_labels",
    "primary_meta_labels",
    "triple_barrier",
]
