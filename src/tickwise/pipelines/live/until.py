"""``tickwise live --until``: when a live session stops.

``--until`` is an IST clock time (``10:30``, ``10:30:15``) on the session day, or a duration of market
time from the session start (``+45m``, ``+2h``, ``+90s``, ``+1h30m``). Either way the result is capped
at the session close (15:30 IST): the live mode never runs past the session.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST

_DURATION = re.compile(r"^\+(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_until(text: str | None, day: date, start: datetime, calendar: SessionCalendar = NSE) -> datetime:
    """The instant (IST) the session ``day`` started at ``start`` runs until.

    ``None`` means the session close. A bare ``+N`` is N minutes. Raises ConfigError on a malformed
    value or an instant that is not after ``start``.
    """
    close = calendar.session_close(day)
    if text is None or not text.strip():
        return close
    value = text.strip().lower()
    if value.startswith("+"):
        bare = re.fullmatch(r"\+(\d+)", value)
        if bare:
            delta = timedelta(minutes=int(bare.group(1)))
        else:
            match = _DURATION.fullmatch(value)
            if not match or value == "+" or not any(match.groups()):
                raise ConfigError(
                    f"invalid --until {text!r}: expected an IST time like 10:30 or a duration like +45m, +2h, +1h30m"
                )
            h, m, s = (int(g) if g else 0 for g in match.groups())
            delta = timedelta(hours=h, minutes=m, seconds=s)
        if delta <= timedelta(0):
            raise ConfigError(f"invalid --until {text!r}: the duration must be positive")
        # Market time: counted from the later of the start and the session open.
        begin = max(start.astimezone(IST), calendar.session_open(day))
        return min(begin + delta, close)
    match = _CLOCK.fullmatch(value)
    if not match:
        raise ConfigError(
            f"invalid --until {text!r}: expected an IST time like 10:30 or a duration like +45m, +2h, +1h30m"
        )
    hh, mm, ss = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hh > 23 or mm > 59 or ss > 59:
        raise ConfigError(f"invalid --until {text!r}: not a clock time")
    at = datetime.combine(day, time(hh, mm, ss), tzinfo=IST)
    if at <= start.astimezone(IST):
        raise ConfigError(
            f"--until {text} is not after the session start {start.astimezone(IST):%H:%M:%S} IST"
        )
    return min(at, close)
