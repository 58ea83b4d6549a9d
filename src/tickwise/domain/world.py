"""Which market a database holds: the simulator (with its seed) or one Kite account.

Simulated and real data look alike (the simulator uses real instrument tokens), so a database belongs
to exactly one world, recorded at first use, and nothing of another world may be written into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

WorldKind = Literal["simulator", "kite"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class World:
    """A market: ``kind`` simulator (``seed``) or kite (``api_key``; ``user_id`` once a login knows it)."""

    kind: WorldKind
    seed: int | None = None
    api_key: str | None = None
    user_id: str | None = None

    @property
    def name(self) -> str:
        """A short, filesystem-safe name: ``simulator`` or ``kite-<api_key>``."""
        if self.kind == "simulator":
            return "simulator"
        return "kite-" + _UNSAFE.sub("_", self.api_key or "unknown")

    def describe(self) -> str:
        """How the world reads in a message: ``the simulator (seed 42)``, ``Kite account AB1234 (api_key x)``."""
        if self.kind == "simulator":
            return f"the simulator (seed {self.seed})"
        who = f"Kite account {self.user_id}" if self.user_id else "a Kite account"
        return f"{who} (api_key {self.api_key})"

    def same_market(self, other: World) -> bool:
        """True when data of ``other`` may share a database with this world's.

        A user id missing on one side (recorded before the first login) does not make a difference.
        """
        if self.kind != other.kind:
            return False
        if self.kind == "simulator":
            return self.seed == other.seed
        if self.api_key != other.api_key:
            return False
        return not (self.user_id and other.user_id and self.user_id != other.user_id)
