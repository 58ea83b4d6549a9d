"""Which instruments a run works on (both modes: the historical pipeline and the live wiring).

* ``symbols`` (``trading.symbols``) given: exactly those NSE symbols; a missing one is an error.
* else ``default_symbols`` given (a real Kite account: the shipped NIFTY 50 list,
  ``config/universe/nifty50.yaml``): those symbols plus the NIFTY 50 index; a symbol missing from the
  instrument master (renamed, demerged) is skipped with a warning, since the list ages.
* else (the simulator, or ``trading.universe: all_equities``): every NSE equity in the instrument
  master plus the NIFTY 50 index (NSE ``EQ`` instruments include the indices Kite lists under segment
  ``INDICES``). Currency and F&O contracts trade other sessions and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger

from tickwise.domain.errors import ConfigError
from tickwise.domain.instrument import Instrument
from tickwise.ports.repositories import InstrumentRepository

NIFTY_50 = 256265


async def select_universe(
    instruments: InstrumentRepository, symbols: Sequence[str] = (), default_symbols: Sequence[str] = ()
) -> list[Instrument]:
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
    if default_symbols:
        wanted = set(default_symbols)
        chosen = [
            i
            for i in every
            if (i.exchange == "NSE" and i.tradingsymbol in wanted) or i.instrument_token == NIFTY_50
        ]
        missing = sorted(wanted - {i.tradingsymbol for i in chosen})
        if missing and every:
            logger.warning(
                "default universe: {} not in the NSE instrument master, skipped "
                "(update config/universe/nifty50.yaml or set trading.symbols)",
                ", ".join(missing),
            )
        return sorted(chosen, key=lambda i: i.instrument_token)
    # Kite's dump lists indices as NSE "EQ" rows of segment INDICES: every equity means the stocks, plus
    # the NIFTY 50 index (the market context), not every index Kite publishes.
    chosen = [
        i
        for i in every
        if (i.exchange == "NSE" and i.instrument_type == "EQ" and i.segment != "INDICES")
        or i.instrument_token == NIFTY_50
    ]
    return sorted(chosen, key=lambda i: i.instrument_token)
