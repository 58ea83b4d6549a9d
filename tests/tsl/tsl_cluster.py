"""What the TSL test cluster fixture hands the tests (tests/tsl/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TslCluster:
    url: str  # the application role
    admin_url: str  # the superuser
    compressed_tables_under_apache: int  # hypertables with compression after the Apache-licensed migration
    caggs_under_apache: int  # continuous aggregates after the Apache-licensed migration
