"""Simulator configuration and the state its REST and WebSocket servers share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from tickwise.adapters.kite.simulator.clock import SimClock, default_start
from tickwise.adapters.kite.simulator.faults import Fault, FaultController
from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.sessions import RateLimiter, SessionStore
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.domain.calendar import NSE, SessionCalendar


@dataclass
class SimulatorConfig:
    """Everything a simulator run needs. Ports 0 pick free ports (tests)."""

    host: str = "127.0.0.1"
    rest_port: int = 8765
    ws_port: int = 8766
    seed: int = 42
    speed: float = 1.0  # simulated seconds per real second
    start: datetime | None = None  # simulated IST start (default: see clock.default_start)
    n_instruments: int = 10  # NSE equities (plus NIFTY 50 and one USDINR future)
    api_key: str = "tickwise-sim"
    api_secret: str = "tickwise-sim-secret"
    redirect_url: str = "http://127.0.0.1:8767/"
    faults: str | list[Fault] | None = None
    bad_prints: float = 0.0  # fraction of equity 1m REST candles replaced by a bad print (market.py)
    calendar: SessionCalendar = NSE
    # WebSocket behaviour
    stream_interval: float = 0.25  # real seconds per streaming cycle
    heartbeat_interval: float = 1.0  # real seconds of idleness before a 1-byte heartbeat
    max_connections_per_key: int = 3
    max_tokens_per_connection: int = 3000
    # REST behaviour
    rate_limits: dict[str, int] = field(default_factory=lambda: {"historical": 3, "quote": 1, "other": 10})
    request_token_ttl: float = 300.0


class SimulatorOverrides(TypedDict, total=False):
    """SimulatorConfig fields a caller may override (the login redirect is wired by whoever logs in)."""

    host: str
    rest_port: int
    ws_port: int
    seed: int
    speed: float
    start: datetime | None
    n_instruments: int
    api_key: str
    api_secret: str
    faults: str | list[Fault] | None
    bad_prints: float
    calendar: SessionCalendar
    stream_interval: float
    heartbeat_interval: float
    max_connections_per_key: int
    max_tokens_per_connection: int
    rate_limits: dict[str, int]
    request_token_ttl: float


class SimState:
    """The clock, universe, market, sessions, limits and faults of one simulator run."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        start = config.start or default_start(calendar=config.calendar)
        self.clock = SimClock(start, config.speed)
        self.universe = Universe(config.n_instruments, config.calendar, today=start.date())
        self.sessions = SessionStore(
            config.api_key, config.api_secret, self.clock, request_token_ttl=config.request_token_ttl
        )
        self.limiter = RateLimiter(limits=dict(config.rate_limits))
        self.faults = FaultController.from_script(config.faults, start)
        self.market = Market(
            self.universe,
            config.seed,
            config.calendar,
            bad_prints=config.bad_prints,
            scripted_bad_prints=self.faults.scripted_bad_prints(),
        )
