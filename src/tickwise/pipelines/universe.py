"""Which instruments a run works on (both modes: the historical pipeline and the live wiring).

``trading.symbols`` empty: every NSE equity in the instrument master plus the NIFTY 50 index (NSE
``EQ`` instruments include the indices Kite lists under segment ``INDICES``); otherwise exactly the
configured NSE symbols. Currency and F&O contracts trade other sessions and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from tickwise.domain.errors import ConfigError
from tickwise.domain.instrument import Instrument
from tickwise.ports.repositories import InstrumentRepository

NIFTY_50 = 256265


async def select_universe(instruments: InstrumentRepository, symbols: Sequence[str] = ()) -> list[Instrument]:
    if symbols:
        found = await instruments.by_symbols("NSE", list(symbols))
        missing = sorted(set(symbols) - {i.tradingsymbol for i in found})
        if missing:
            raise ConfigError(
                f"trading.symbols: {', '.join(missing)} not in the NSE instrument master "
                "(run `tickwise instruments sync`, or fix the symbol names)"
            )
        return sorted(found, key=lambda i: i.instrument_token)
    every = await instruments.all(active_only=True)
    chosen = [
        i
        for i in every
        if (i.exchange == "NSE" and i.instrument_type == "EQ") or i.instrument_token == NIFTY_50
    ]
    return sorted(chosen, key=lambda i: i.instrument_token)
