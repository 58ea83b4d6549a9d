"""A Kite Connect compatible simulator (REST + ticker WebSocket) with a deterministic market.

Public API: :func:`run_simulator`, :class:`SimulatorConfig`, :class:`RunningSimulator`, and for direct
use :class:`Market`, :class:`Universe`, :class:`SimClock`, :func:`parse_faults`.
"""

from tickwise.adapters.kite.simulator.clock import SimClock
from tickwise.adapters.kite.simulator.faults import Fault, FaultScriptError, parse_faults
from tickwise.adapters.kite.simulator.market import SPIKE_THRESHOLD, Market
from tickwise.adapters.kite.simulator.server import RunningSimulator, run_simulator
from tickwise.adapters.kite.simulator.state import SimulatorConfig
from tickwise.adapters.kite.simulator.universe import NIFTY_50_TOKEN, Universe

__all__ = [
    "NIFTY_50_TOKEN",
    "SPIKE_THRESHOLD",
    "Fault",
    "FaultScriptError",
    "Market",
    "RunningSimulator",
    "SimClock",
    "SimulatorConfig",
    "Universe",
    "parse_faults",
    "run_simulator",
]
