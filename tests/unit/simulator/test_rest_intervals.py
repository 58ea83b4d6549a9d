"""The simulator and the client agree on Kite's historical interval names and span limits."""

from __future__ import annotations

from tickwise.adapters.kite import mapping
from tickwise.adapters.kite.simulator import rest_app


def test_the_simulator_serves_exactly_the_intervals_the_client_knows_limits_for() -> None:
    assert set(rest_app.INTERVALS) == set(mapping.MAX_SPAN_DAYS)


def test_the_span_limits_have_one_definition_shared_by_client_and_simulator() -> None:
    assert rest_app.MAX_SPAN_DAYS is mapping.MAX_SPAN_DAYS
