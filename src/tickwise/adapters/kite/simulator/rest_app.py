"""The simulator's Kite REST API (kite-protocol.md sections 3 and 7.2), served with aiohttp.

Routes at the root (the official client discards any path in its ``root``): ``GET /connect/login``
(302 to the redirect URL with a request token), ``POST``/``DELETE /session/token``, ``GET
/user/profile``, ``/instruments``, ``/instruments/{exchange}``,
``/instruments/historical/{token}/{interval}``, ``/quote``, ``/quote/ohlc``, ``/quote/ltp``.
Kite envelopes, ``error_type`` names and HTTP statuses; per-api_key rate limits (historical 3/s,
quote 1/s, others 10/s) answer 429 ``NetworkException``. Scripted REST faults (``rest 429 5``) answer
before anything else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tickwise.adapters.kite.mapping import MAX_SPAN_DAYS
from tickwise.adapters.kite.simulator.market import DayCandles
from tickwise.adapters.kite.simulator.state import SimState
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST

# Minutes per Kite interval name (None: a day); the span limits are the client's (MAX_SPAN_DAYS).
INTERVALS: dict[str, int | None] = {
    "minute": 1,
    "3minute": 3,
    "5minute": 5,
    "10minute": 10,
    "15minute": 15,
    "30minute": 30,
    "60minute": 60,
    "day": None,
}
STATE_KEY: web.AppKey[SimState] = web.AppKey("sim_state", SimState)
BAD_TOKEN = "Incorrect `api_key` or `access_token`."  # nosec B105: not a password: a name, a message or a pattern of key names
_FAULT_ERROR_TYPES = {429: "NetworkException", 502: "DataException", 503: "NetworkException"}


class KiteError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def envelope(data: object) -> web.Response:
    return web.Response(text=json.dumps({"status": "success", "data": data}), content_type="application/json")


def error_response(status: int, error_type: str, message: str) -> web.Response:
    body = {"status": "error", "message": message, "error_type": error_type, "data": None}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _ts(dt: datetime | None) -> str | None:
    return dt.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S") if dt else None


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _rate_class(path: str) -> str:
    if path.startswith("/instruments/historical/"):
        return "historical"
    if path.startswith("/quote"):
        return "quote"
    return "other"


def _authenticate(request: web.Request, state: SimState) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("token ") and ":" in header:
        api_key, _, access_token = header[len("token ") :].partition(":")
        if state.sessions.validate(api_key, access_token):
            return api_key
    raise KiteError(403, "TokenException", BAD_TOKEN)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC = ("/connect/login", "/session/token")


@web.middleware
async def kite_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    try:
        state.faults.due(state.clock.now())
        fault = state.faults.next_rest_error()
        if fault is not None:
            msg = "Too many requests" if fault == 429 else "Simulated server fault"
            return error_response(fault, _FAULT_ERROR_TYPES.get(fault, "GeneralException"), msg)
        if request.path not in _PUBLIC:
            api_key = _authenticate(request, state)
            if not state.limiter.allow(api_key, _rate_class(request.path)):
                raise KiteError(429, "NetworkException", "Too many requests")
        return await handler(request)
    except KiteError as exc:
        return error_response(exc.status, exc.error_type, exc.message)
    except web.HTTPNotFound:
        return error_response(404, "GeneralException", f"Route not found: {request.method} {request.path}")
    except web.HTTPMethodNotAllowed:
        return error_response(405, "GeneralException", f"Method not allowed: {request.method} {request.path}")
    except Exception as exc:  # a bug in the simulator must still answer like Kite would
        return error_response(500, "GeneralException", f"Simulator error: {type(exc).__name__}: {exc}")


# -- session ------------------------------------------------------------------------------------------


async def login(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if request.query.get("api_key") != state.config.api_key:
        raise KiteError(400, "InputException", "Invalid `api_key`.")
    # Like Kite: the app's redirect_params (a URL-encoded query string) come back on the redirect.
    extra = parse_qsl(request.query.get("redirect_params", ""), keep_blank_values=True)
    query = urlencode(
        [
            *extra,
            ("request_token", state.sessions.new_request_token()),
            ("action", "login"),
            ("type", "login"),
            ("status", "success"),
        ]
    )
    sep = "&" if "?" in state.config.redirect_url else "?"
    return web.Response(status=302, headers={"Location": f"{state.config.redirect_url}{sep}{query}"})


def _profile(state: SimState) -> dict[str, object]:
    return {
        "user_id": "SIM001",
        "user_name": "Tickwise Simulator",
        "user_shortname": "Simulator",
        "user_type": "individual",
        "email": "sim@tickwise.invalid",
        "broker": "ZERODHA",
        "exchanges": ["NSE", "CDS"],
        "products": ["CNC", "MIS", "NRML"],
        "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
        "avatar_url": None,
        "meta": {"demat_consent": "physical"},
    }


async def create_session(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    form = await request.post()
    missing = [k for k in ("api_key", "request_token", "checksum") if not form.get(k)]
    if missing:
        raise KiteError(400, "InputException", f"Missing {', '.join(missing)}")
    result = state.sessions.exchange(str(form["api_key"]), str(form["request_token"]), str(form["checksum"]))
    if isinstance(result, str):
        raise KiteError(403, "TokenException", result)
    data = _profile(state) | {
        "api_key": result.api_key,
        "access_token": result.access_token,
        "public_token": result.public_token,
        "enctoken": result.public_token,
        "refresh_token": "",  # nosec B105: not a password: a name, a message or a pattern of key names
        "silo": "",
        "login_time": _ts(result.issued_at),
    }
    return envelope(data)


async def delete_session(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if request.query.get("api_key") != state.config.api_key:
        raise KiteError(400, "InputException", "Invalid `api_key`.")
    state.sessions.revoke(request.query.get("access_token", ""))
    return envelope(True)


async def profile(request: web.Request) -> web.StreamResponse:
    return envelope(_profile(request.app[STATE_KEY]))


# -- instruments --------------------------------------------------------------------------------------


async def instruments(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    exchange = request.match_info.get("exchange")
    if exchange is not None and exchange not in {m.instrument.exchange for m in state.universe.members}:
        raise KiteError(400, "InputException", f"Invalid exchange: {exchange}")
    # last_price in the dump is the previous close (the dump is built before the session).
    day = state.clock.now().date()
    prev = state.config.calendar.previous_trading_day(day)
    prices = {m.token: state.market.day_level(m.token, prev).close for m in state.universe.members}
    response = web.Response(text=state.universe.dump_csv(exchange, prices), content_type="text/csv")
    response.enable_compression()  # gzip when the client accepts it, as Kite serves the dump
    return response


# -- historical ---------------------------------------------------------------------------------------


def _parse_when(value: str | None, name: str, end_of_day: bool) -> datetime:
    if not value:
        raise KiteError(400, "InputException", f"missing `{name}`")
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime.combine(d, time(23, 59, 59) if end_of_day else time(0, 0), tzinfo=IST)
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    except ValueError:
        raise KiteError(
            400, "InputException", f"invalid `{name}`: {value!r} (expected yyyy-mm-dd hh:mm:ss)"
        ) from None


async def historical(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    interval = request.match_info["interval"]
    if interval not in INTERVALS:
        raise KiteError(400, "InputException", f"invalid interval: {interval}")
    try:
        token = int(request.match_info["token"])
    except ValueError:
        raise KiteError(400, "InputException", "invalid token") from None
    continuous = request.query.get("continuous") in ("1", "true")
    future = state.universe.future(token)
    listed = state.universe.get(token) is not None
    if not listed and (future is None or not continuous):
        # Expired contracts have no history of their own; only continuous=1 reaches past them.
        raise KiteError(400, "InputException", "invalid token")
    if continuous and future is None:
        raise KiteError(400, "InputException", "continuous data is only available for futures")
    if continuous and not listed and interval != "day":
        raise KiteError(400, "InputException", "invalid interval for expired contract: only day candles")
    start = _parse_when(request.query.get("from"), "from", end_of_day=False)
    end = _parse_when(request.query.get("to"), "to", end_of_day=True)
    if start > end:
        raise KiteError(400, "InputException", "invalid `from` date: after `to` date")
    limit = MAX_SPAN_DAYS[interval]
    if end - start > timedelta(days=limit):
        raise KiteError(400, "InputException", f"interval exceeds max limit: {limit} days")
    with_oi = request.query.get("oi") in ("1", "true")
    now = state.clock.now()
    if continuous:
        days = state.market.continuous_candle_days(token, INTERVALS[interval], start, end, now)
    else:
        days = state.market.candle_days(token, INTERVALS[interval], start, end, now)
    return envelope({"candles": _candle_rows(days, with_oi)})


# "HH:MM:00+0530" of each minute after 09:15 IST (a session's stamps never leave its day)
_MINUTE_STAMPS = [f"{(555 + m) // 60:02d}:{(555 + m) % 60:02d}:00+0530" for m in range(24 * 60 - 555)]


def _candle_rows(days: list[DayCandles], with_oi: bool) -> list[list[object]]:
    """Kite's candle rows of ``days``: ``[stamp, open, high, low, close, volume(, oi)]``.

    The stamps are ``strftime("%Y-%m-%dT%H:%M:%S+0530")`` of each IST stamp, built from the day and a table of minute
    suffixes instead of one ``strftime`` per candle; prices go through ``_num`` as before."""
    rows: list[list[object]] = []
    for day in days:
        prefix = f"{day.day.isoformat()}T"
        if day.daily:
            stamps = [prefix + "00:00:00+0530"] * len(day.minute)
        else:
            stamps = [prefix + _MINUTE_STAMPS[m] for m in day.minute.tolist()]
        for stamp, o, h, lo, c, v in zip(
            stamps,
            day.open.tolist(),
            day.high.tolist(),
            day.low.tolist(),
            day.close.tolist(),
            day.volume.tolist(),
            strict=True,
        ):
            row: list[object] = [stamp, _num(o), _num(h), _num(lo), _num(c), v]
            if with_oi:
                row.append(0)
            rows.append(row)
    return rows


# -- quotes -------------------------------------------------------------------------------------------


def _quote_instruments(request: web.Request, limit: int) -> list[str]:
    keys = request.query.getall("i", [])
    if not keys:
        raise KiteError(400, "InputException", "No instruments specified")
    if len(keys) > limit:
        raise KiteError(400, "InputException", f"Too many instruments (max {limit})")
    return keys


def _snapshot(request: web.Request, key: str) -> Tick | None:
    state = request.app[STATE_KEY]
    member = state.universe.lookup(key)
    if member is None:
        return None
    return state.market.last_snapshot(member.token, state.clock.now())


async def quote_full(request: web.Request) -> web.StreamResponse:
    data: dict[str, object] = {}
    for key in _quote_instruments(request, 500):
        t = _snapshot(request, key)
        if t is None or t.ohlc is None:
            continue
        depth = {
            side: [{"price": lv.price, "quantity": lv.quantity, "orders": lv.orders} for lv in levels]
            for side, levels in (
                ("buy", t.depth.buy if t.depth else ()),
                ("sell", t.depth.sell if t.depth else ()),
            )
        }
        data[key] = {
            "instrument_token": t.instrument_token,
            "timestamp": _ts(t.exchange_timestamp),
            "last_trade_time": _ts(t.last_trade_time),
            "last_price": t.last_price,
            "last_quantity": t.last_traded_quantity or 0,
            "buy_quantity": t.total_buy_quantity or 0,
            "sell_quantity": t.total_sell_quantity or 0,
            "volume": t.volume_traded or 0,
            "average_price": t.average_traded_price or 0,
            "oi": 0,
            "oi_day_high": 0,
            "oi_day_low": 0,
            "net_change": round(t.last_price - t.ohlc.close, 4),
            "lower_circuit_limit": round(t.ohlc.close * 0.8, 2),
            "upper_circuit_limit": round(t.ohlc.close * 1.2, 2),
            "ohlc": {"open": t.ohlc.open, "high": t.ohlc.high, "low": t.ohlc.low, "close": t.ohlc.close},
            "depth": depth,
        }
    return envelope(data)


async def quote_ohlc(request: web.Request) -> web.StreamResponse:
    data: dict[str, object] = {}
    for key in _quote_instruments(request, 1000):
        t = _snapshot(request, key)
        if t is None or t.ohlc is None:
            continue
        data[key] = {
            "instrument_token": t.instrument_token,
            "last_price": t.last_price,
            "ohlc": {"open": t.ohlc.open, "high": t.ohlc.high, "low": t.ohlc.low, "close": t.ohlc.close},
        }
    return envelope(data)


async def quote_ltp(request: web.Request) -> web.StreamResponse:
    data: dict[str, object] = {}
    for key in _quote_instruments(request, 1000):
        t = _snapshot(request, key)
        if t is not None:
            data[key] = {"instrument_token": t.instrument_token, "last_price": t.last_price}
    return envelope(data)


def build_rest_app(state: SimState) -> web.Application:
    """The aiohttp application serving Kite's REST routes from ``state``."""
    app = web.Application(middlewares=[kite_middleware])
    app[STATE_KEY] = state
    app.router.add_get("/connect/login", login)
    app.router.add_post("/session/token", create_session)
    app.router.add_delete("/session/token", delete_session)
    app.router.add_get("/user/profile", profile)
    app.router.add_get("/instruments", instruments)
    app.router.add_get("/instruments/historical/{token}/{interval}", historical)
    app.router.add_get("/instruments/{exchange}", instruments)
    app.router.add_get("/quote", quote_full)
    app.router.add_get("/quote/ohlc", quote_ohlc)
    app.router.add_get("/quote/ltp", quote_ltp)
    return app
