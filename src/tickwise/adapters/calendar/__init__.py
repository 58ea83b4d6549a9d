"""Exchange calendars from maintained sources (the domain's SessionCalendar is built from them)."""

from tickwise.adapters.calendar.exchange_calendars import HolidaySource, load_nse_holidays

__all__ = ["HolidaySource", "load_nse_holidays"]
