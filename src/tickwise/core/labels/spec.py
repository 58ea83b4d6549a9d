"""The frozen, versioned label specification (labeling.md §1) and the barrier vocabulary."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

LABEL_SPEC_VERSION = "triple-barrier/1"
"""Bump when the meaning of any label changes (algorithm, drop rules, weights), not for new defaults."""

# Barrier codes written by the kernel; the strings are the `labels.barrier` values of the contract.
PT, SL, PT_GAP, SL_GAP, BOTH_SL_FIRST, VERTICAL = 0, 1, 2, 3, 4, 5
BARRIER_NAMES: tuple[str, ...] = ("pt", "sl", "pt_gap", "sl_gap", "both_sl_first", "vertical")

# Negative codes: the kernel could not label the event (labeling.md §5, the two rules it can see).
DROP_ATR_NAN = -1
DROP_CENSORED = -2

DROP_REASONS: tuple[str, ...] = ("atr_nan", "warmup", "censored", "session_cross", "missing_bars")
"""Drop reasons in precedence order: an event failing several rules is counted once, under the first."""


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """Triple-barrier parameters (labeling.md §1); record `to_dict()` with every training run and bundle.

    Barriers are multiples of TA-Lib ``ATR(atr_period)`` at t0; ``horizon`` counts bars, not wall-clock time.
    """

    atr_period: int = 14
    k_pt: float = 2.0
    k_sl: float = 1.5
    horizon: int = 10
    vertical_label: Literal["sign", "zero"] = "sign"
    warmup_bars: int = 140
    cost_threshold: float = 0.0
    version: str = LABEL_SPEC_VERSION

    def __post_init__(self) -> None:
        if self.atr_period < 1:
            raise ValueError(f"atr_period must be >= 1, got {self.atr_period}")
        if not self.k_pt > 0 or not self.k_sl > 0:
            raise ValueError(f"k_pt and k_sl must be > 0, got {self.k_pt} and {self.k_sl}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1 bar, got {self.horizon}")
        if self.vertical_label not in ("sign", "zero"):
            raise ValueError(f"vertical_label must be 'sign' or 'zero', got {self.vertical_label!r}")
        if self.warmup_bars < 0:
            raise ValueError(f"warmup_bars must be >= 0, got {self.warmup_bars}")

    @property
    def vertical_zero(self) -> bool:
        return self.vertical_label == "zero"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping of every parameter, including ``version``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelSpec:
        """Rebuild a spec recorded with `to_dict`; unknown keys are an error, not silently ignored."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown label spec keys: {sorted(unknown)}")
        return cls(**data)


DEFAULT_LABEL_SPEC = LabelSpec()
