"""The simulated instrument universe and its Kite instrument dump (kite-protocol.md section 3.5).

Holds ``n`` NSE equities (real symbols and exchange tokens for the first ones, synthetic ``SIMEQnnnn``
names after that), the NIFTY 50 index (token 256265, segment 9, divisor 100) and one NSE currency
future ``USDINR<yy><MON>FUT`` (segment 3 = CDS, divisor 10^7), so every price divisor the client
meets is exercised. ``instrument_token = exchange_token << 8 | segment``.

The currency future expires on the last Tuesday of its month (holiday -> previous trading day), the
rule for contracts expiring from September 2025 on; the dump of a day lists the nearest unexpired
contract, whose exchange token is derived from its expiry month, so a roll-over gives a new token.

Index futures (nse-derivatives.md): NIFTY and BANKNIFTY monthly futures on NFO (segment 2,
``NFO-FUT``, ``FUT``), three serial contracts alive at once (near, next, far), expiring on the last
Tuesday of their month (holiday -> previous trading day). Their exchange token encodes underlying
and expiry month, so any contract, live or expired, can be decoded from its token
(:meth:`Universe.future`); the dump lists only the live ones. The NIFTY BANK index (260105) is the
underlying of BANKNIFTY. Prices track the index with a carry basis (see ``market.py``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

from tickwise.adapters.kite.mapping import INSTRUMENT_COLUMNS
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.instrument import Instrument

NIFTY_50_TOKEN = 256265  # 1001 << 8 | 9
NIFTY_BANK_TOKEN = 260105  # 1016 << 8 | 9
NFO_SEGMENT = 2
FUTURE_CONTRACTS_LISTED = 3  # near, next and far month


@dataclass(frozen=True, slots=True)
class FutureSpec:
    """An index whose monthly futures the simulator lists."""

    underlying: str  # the ``name`` column of the dump, e.g. ``NIFTY``
    index_token: int
    lot_size: int
    base_token: int  # exchange token = base_token + months since 2000-01


# Lot sizes as of late 2026 (simulator-only; real lot sizes come from the dump).
FUTURE_SPECS: tuple[FutureSpec, ...] = (
    FutureSpec("NIFTY", NIFTY_50_TOKEN, 75, 35_000),
    FutureSpec("BANKNIFTY", NIFTY_BANK_TOKEN, 35, 36_000),
)

# (tradingsymbol, name, exchange_token, reference price in rupees)
_EQUITIES: tuple[tuple[str, str, int, float], ...] = (
    ("INFY", "INFOSYS", 1594, 1570.0),
    ("RELIANCE", "RELIANCE INDUSTRIES", 2885, 2900.0),
    ("TCS", "TATA CONSULTANCY SERV LT", 11536, 3900.0),
    ("HDFCBANK", "HDFC BANK", 1333, 1650.0),
    ("ICICIBANK", "ICICI BANK", 4963, 1120.0),
    ("SBIN", "STATE BANK OF INDIA", 3045, 780.0),
    ("ITC", "ITC", 1660, 430.0),
    ("LT", "LARSEN & TOUBRO", 11483, 3500.0),
    ("AXISBANK", "AXIS BANK", 5900, 1100.0),
    ("KOTAKBANK", "KOTAK MAHINDRA BANK", 1922, 1750.0),
    ("BHARTIARTL", "BHARTI AIRTEL", 10604, 1400.0),
    ("HINDUNILVR", "HINDUSTAN UNILEVER.", 1394, 2400.0),
    ("BAJFINANCE", "BAJAJ FINANCE", 317, 7000.0),
    ("MARUTI", "MARUTI SUZUKI INDIA", 10999, 12000.0),
    ("ASIANPAINT", "ASIAN PAINTS", 236, 2900.0),
    ("WIPRO", "WIPRO", 3787, 480.0),
    ("TATAMOTORS", "TATA MOTORS", 3456, 950.0),
    ("SUNPHARMA", "SUN PHARMACEUTICAL IND L", 3351, 1550.0),
    ("TITAN", "TITAN COMPANY", 3506, 3400.0),
    ("ULTRACEMCO", "ULTRATECH CEMENT", 11532, 10000.0),
    ("NTPC", "NTPC", 11630, 350.0),
    ("POWERGRID", "POWER GRID CORP. LTD.", 14977, 300.0),
    ("ONGC", "OIL AND NATURAL GAS CORP.", 2475, 270.0),
    ("TATASTEEL", "TATA STEEL", 3499, 150.0),
    ("HCLTECH", "HCL TECHNOLOGIES", 7229, 1600.0),
    ("TECHM", "TECH MAHINDRA", 13538, 1300.0),
    ("NESTLEIND", "NESTLE INDIA", 17963, 2500.0),
    ("JSWSTEEL", "JSW STEEL", 11723, 880.0),
    ("ADANIENT", "ADANI ENTERPRISES", 25, 3000.0),
    ("COALINDIA", "COAL INDIA", 20374, 450.0),
)
_SYNTHETIC_BASE_TOKEN = 60000  # exchange tokens of synthetic SIMEQnnnn names: 60001, 60002, ...
_CDS_BASE_TOKEN = 1600  # USDINR futures: exchange token 1600 + month index (1612 = December)


@dataclass(frozen=True, slots=True)
class SimInstrument:
    """An instrument plus the simulator's parameters for it."""

    instrument: Instrument
    base_price: float
    liquidity: float  # probability that a given second of the session carries a trade (0..1)
    base_quantity: int  # typical trade / depth-level size

    @property
    def token(self) -> int:
        return self.instrument.instrument_token

    @property
    def tick_size(self) -> float:
        return self.instrument.tick_size


def last_tuesday_expiry(year: int, month: int, calendar: SessionCalendar = NSE) -> date:
    """Monthly expiry: last Tuesday of the month, moved to the previous trading day on a holiday."""
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    day = nxt - timedelta(days=1)
    while day.weekday() != 1:
        day -= timedelta(days=1)
    while not calendar.is_trading_day(day):
        day -= timedelta(days=1)
    return day


def currency_future(on: date, calendar: SessionCalendar = NSE) -> Instrument:
    """The nearest unexpired USDINR monthly future listed on ``on``."""
    year, month = on.year, on.month
    expiry = last_tuesday_expiry(year, month, calendar)
    if expiry < on:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        expiry = last_tuesday_expiry(year, month, calendar)
    exchange_token = _CDS_BASE_TOKEN + month
    symbol = f"USDINR{year % 100:02d}{expiry.strftime('%b').upper()}FUT"
    return Instrument(
        instrument_token=exchange_token << 8 | 3,
        exchange_token=exchange_token,
        tradingsymbol=symbol,
        name="USDINR",
        exchange="CDS",
        segment="CDS-FUT",
        instrument_type="FUT",
        tick_size=0.0025,
        lot_size=1,
        expiry=expiry,
    )


def _month_index(year: int, month: int) -> int:
    return (year - 2000) * 12 + (month - 1)


def index_future(spec: FutureSpec, year: int, month: int, calendar: SessionCalendar = NSE) -> Instrument:
    """The ``spec`` monthly future expiring in ``year``-``month``."""
    expiry = last_tuesday_expiry(year, month, calendar)
    exchange_token = spec.base_token + _month_index(year, month)
    return Instrument(
        instrument_token=exchange_token << 8 | NFO_SEGMENT,
        exchange_token=exchange_token,
        tradingsymbol=f"{spec.underlying}{year % 100:02d}{expiry.strftime('%b').upper()}FUT",
        name=spec.underlying,
        exchange="NFO",
        segment="NFO-FUT",
        instrument_type="FUT",
        tick_size=0.05,
        lot_size=spec.lot_size,
        expiry=expiry,
    )


def live_index_futures(spec: FutureSpec, on: date, calendar: SessionCalendar = NSE) -> list[Instrument]:
    """The near, next and far contracts of ``spec`` listed on ``on`` (expiry on or after ``on``)."""
    year, month = on.year, on.month
    if last_tuesday_expiry(year, month, calendar) < on:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    out = []
    for _ in range(FUTURE_CONTRACTS_LISTED):
        out.append(index_future(spec, year, month, calendar))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def decode_index_future(token: int, calendar: SessionCalendar = NSE) -> tuple[FutureSpec, Instrument] | None:
    """The index future a token denotes (live or expired), or None if it is not one."""
    if token & 0xFF != NFO_SEGMENT:
        return None
    exchange_token = token >> 8
    for spec in FUTURE_SPECS:
        months = exchange_token - spec.base_token
        if 0 <= months < 1000:
            return spec, index_future(spec, 2000 + months // 12, months % 12 + 1, calendar)
    return None


class Universe:
    """The instruments the simulator trades, looked up by token or by ``EXCHANGE:SYMBOL``."""

    def __init__(
        self,
        n_equities: int = 10,
        calendar: SessionCalendar = NSE,
        today: date | None = None,
        futures: bool = True,
    ) -> None:
        if n_equities < 1:
            raise ValueError("the universe needs at least one equity")
        self.calendar = calendar
        members: list[SimInstrument] = []
        for i in range(n_equities):
            if i < len(_EQUITIES):
                symbol, name, exchange_token, price = _EQUITIES[i]
            else:
                exchange_token = _SYNTHETIC_BASE_TOKEN + i
                symbol, name, price = f"SIMEQ{i:04d}", f"SIMULATED EQUITY {i}", 100.0 + (i * 37) % 900
            # Liquidity falls with rank: the first names trade almost every second, the tail rarely.
            liquidity = max(0.08, 0.95 * 0.93**i)
            members.append(
                SimInstrument(
                    Instrument(
                        exchange_token << 8 | 1, exchange_token, symbol, name, "NSE", "NSE", "EQ", 0.05, 1
                    ),
                    base_price=price,
                    liquidity=liquidity,
                    base_quantity=max(5, int(200_000 / price)),
                )
            )
        members.append(
            SimInstrument(
                Instrument(NIFTY_50_TOKEN, 1001, "NIFTY 50", "NIFTY 50", "NSE", "INDICES", "EQ", 0.05, 0),
                base_price=24000.0,
                liquidity=1.0,
                base_quantity=0,
            )
        )
        self.futures_enabled = futures
        if futures:
            members.append(
                SimInstrument(
                    Instrument(
                        NIFTY_BANK_TOKEN, 1016, "NIFTY BANK", "NIFTY BANK", "NSE", "INDICES", "EQ", 0.05, 0
                    ),
                    base_price=52000.0,
                    liquidity=1.0,
                    base_quantity=0,
                )
            )
            for spec in FUTURE_SPECS:
                for contract in live_index_futures(spec, today or date.today(), calendar):
                    members.append(self._future_member(spec, contract))
        # The currency future stays last (tests address it as ``tokens[-1]``).
        fut = currency_future(today or date.today(), calendar)
        members.append(SimInstrument(fut, base_price=83.5, liquidity=0.6, base_quantity=50))
        self.members = members
        self.by_token = {m.token: m for m in members}
        self.by_key = {f"{m.instrument.exchange}:{m.instrument.tradingsymbol}": m for m in members}
        # The index is quoted as NSE:NIFTY 50 on Kite.
        self.by_key["NSE:NIFTY 50"] = self.by_token[NIFTY_50_TOKEN]

    @staticmethod
    def _future_member(spec: FutureSpec, contract: Instrument) -> SimInstrument:
        price = 24000.0 if spec.index_token == NIFTY_50_TOKEN else 52000.0
        return SimInstrument(contract, base_price=price, liquidity=0.7, base_quantity=spec.lot_size * 4)

    def future(self, token: int) -> tuple[FutureSpec, SimInstrument] | None:
        """Any index future by token, including expired and not-yet-listed ones (None otherwise)."""
        if not self.futures_enabled:
            return None
        decoded = decode_index_future(token, self.calendar)
        if decoded is None:
            return None
        spec, contract = decoded
        return spec, self._future_member(spec, contract)

    def front_future(self, spec: FutureSpec, on: date) -> Instrument:
        """The nearest unexpired contract of ``spec`` on ``on`` (what Kite's continuous series follows)."""
        return live_index_futures(spec, on, self.calendar)[0]

    @property
    def tokens(self) -> list[int]:
        return [m.token for m in self.members]

    @property
    def equities(self) -> list[SimInstrument]:
        return [m for m in self.members if m.instrument.segment == "NSE"]

    def get(self, token: int) -> SimInstrument | None:
        return self.by_token.get(token)

    def lookup(self, key: str) -> SimInstrument | None:
        """``EXCHANGE:TRADINGSYMBOL`` (as in ``/quote?i=NSE:INFY``) or a bare token number."""
        if key.isdigit():
            return self.by_token.get(int(key))
        return self.by_key.get(key)

    def dump_csv(self, exchange: str | None = None, last_prices: dict[int, float] | None = None) -> str:
        """The instrument dump, header and cell formats exactly as Kite's (numeric cells never empty)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(INSTRUMENT_COLUMNS)
        for m in self.members:
            ins = m.instrument
            if exchange and ins.exchange != exchange:
                continue
            writer.writerow(
                [
                    ins.instrument_token,
                    ins.exchange_token,
                    ins.tradingsymbol,
                    ins.name,
                    repr(float((last_prices or {}).get(ins.instrument_token, 0.0))),
                    ins.expiry.isoformat() if ins.expiry else "",
                    repr(float(ins.strike)),
                    repr(float(ins.tick_size)),
                    ins.lot_size,
                    ins.instrument_type,
                    ins.segment,
                    ins.exchange,
                ]
            )
        return out.getvalue()
