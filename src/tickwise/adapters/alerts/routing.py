"""Routes: which channels receive which kind of message, from which priority on.

A message goes to the union of the channels of every route whose ``kind`` is the message's kind and
whose ``min_priority`` it reaches, so signals and operational alerts reach different channels (and a
critical alert can reach an extra, louder channel) purely by configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tickwise.adapters.alerts.message import PRIORITIES, Alert, Kind


@dataclass(frozen=True, slots=True)
class Route:
    kind: Kind
    channels: tuple[str, ...]
    min_priority: str = "info"

    def __post_init__(self) -> None:
        if self.min_priority not in PRIORITIES:
            raise ValueError(
                f"route min_priority must be one of {sorted(PRIORITIES)}, got {self.min_priority!r}"
            )

    def matches(self, alert: Alert) -> bool:
        return alert.kind == self.kind and PRIORITIES[alert.priority] >= PRIORITIES[self.min_priority]


def targets(routes: Iterable[Route], alert: Alert) -> list[str]:
    """The channel names ``alert`` goes to, each once, in route order."""
    out: list[str] = []
    for route in routes:
        if route.matches(alert):
            out += [c for c in route.channels if c not in out]
    return out


def check_routes(routes: Sequence[Route], channels: Iterable[str]) -> None:
    """Raise ValueError naming a route's unknown channel (a typo would silently drop messages)."""
    known = set(channels)
    for route in routes:
        for name in route.channels:
            if name not in known:
                raise ValueError(
                    f"alert route for {route.kind!r} names channel {name!r}, which is not configured "
                    f"(configured: {', '.join(sorted(known)) or 'none'})"
                )
