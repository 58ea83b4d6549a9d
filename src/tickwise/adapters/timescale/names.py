"""Plain names of the schema that the repositories use at run time, without SQLAlchemy.

``schema.py`` (the SQLAlchemy Core tables, Alembic's target metadata) is needed by migrations only; a
live shard's repositories need just these constants, and importing SQLAlchemy would cost every live
process about 10 MB resident for nothing. ``schema.py`` builds its tables from the same names.
"""

from __future__ import annotations

TIMEFRAMES = ("1m", "5m", "15m", "60m", "1d")
DEPTH_LEVELS = 5
FEATURE_KEY_COLUMNS = ("instrument_token", "timeframe", "feature_set", "time")
