"""What a channel delivers: an ``Alert`` (an operational event or a trading signal), and its wording."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tickwise.domain.signal import Signal
from tickwise.domain.time import IST

PRIORITIES = {"info": 0, "warning": 1, "critical": 2}
Kind = Literal["ops", "signal"]
Scalar = str | int | float | None


class DeliveryError(RuntimeError):
    """A channel could not deliver; the message never contains a URL, token or password."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for the channels. ``kind`` decides the route: ``ops`` (operational) or ``signal``."""

    priority: str
    key: str  # groups alerts for throttling: 'feed', 'database', 'signal:408065:1m', ...
    message: str
    at: float = field(default_factory=time.time)  # unix seconds
    kind: Kind = "ops"
    data: tuple[tuple[str, Scalar], ...] = ()  # structured fields (the signal's columns), in order

    @property
    def subject(self) -> str:
        label = "SIGNAL" if self.kind == "signal" else self.priority.upper()
        return f"[{label}] tickwise: {self.message}"

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "priority": self.priority,
            "key": self.key,
            "message": self.message,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "source": "tickwise",
        }
        if self.kind != "ops":
            out["kind"] = self.kind
        if self.data:
            out[self.kind] = dict(self.data)
        return out

    def as_text(self) -> str:
        """Plain text for chat and e-mail: the subject line, then one ``name: value`` line per field."""
        lines = [self.subject]
        lines += [f"{name}: {value}" for name, value in self.data if value is not None]
        return "\n".join(lines)


def signal_alert(signal: Signal, symbol: str, priority: str) -> Alert:
    """The alert for a live signal: 'BUY INFY 1m 10:05 IST, confidence 0.71 (model v3)'."""
    side = "BUY" if signal.direction > 0 else "SELL"
    bar = signal.time.astimezone(IST)
    message = (
        f"{side} {symbol} {signal.timeframe} {bar:%H:%M} IST, confidence {signal.confidence:.2f} "
        f"(model {signal.model_version})"
    )
    data: tuple[tuple[str, Scalar], ...] = (
        ("instrument_token", signal.instrument_token),
        ("tradingsymbol", symbol),
        ("timeframe", str(signal.timeframe)),
        ("time", signal.time.isoformat()),
        ("available_at", signal.available_at.isoformat()),
        ("direction", signal.direction),
        ("confidence", round(signal.confidence, 6)),
        ("size", signal.size),
        ("model_version", signal.model_version),
        ("mode", signal.mode),
    )
    return Alert(
        priority,
        f"signal:{signal.instrument_token}:{signal.timeframe}",
        message,
        at=signal.available_at.timestamp(),
        kind="signal",
        data=data,
    )
