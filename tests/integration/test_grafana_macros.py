"""The Python port of Grafana's SQL templating behaves like Grafana (timescale.md section 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from grafana_macros import (
    TimeRange,
    expand_macros,
    format_interval,
    leftovers,
    promql_metric_names,
    render_sql,
    substitute_builtins,
    substitute_variables,
)

RANGE = TimeRange(
    datetime(2025, 1, 6, 3, 30, tzinfo=UTC), datetime(2025, 1, 6, 9, 30, tzinfo=UTC), timedelta(minutes=5)
)


def test_time_filter_expands_to_a_between_of_rfc3339_utc_instants() -> None:
    assert expand_macros("WHERE $__timeFilter(s.time)", RANGE) == (
        "WHERE s.time BETWEEN '2025-01-06T03:30:00Z' AND '2025-01-06T09:30:00Z'"
    )


def test_time_group_uses_time_bucket_with_timescaledb_and_epoch_floor_without() -> None:
    assert expand_macros("$__timeGroup(time, '5m')", RANGE) == "time_bucket('300.000s',time)"
    assert expand_macros("$__timeGroupAlias(time, 1m)", RANGE) == "time_bucket('60.000s',time) AS \"time\""
    assert expand_macros("$__timeGroup(time, '5m')", RANGE, timescaledb=False) == (
        "floor(extract(epoch from time)/300)*300"
    )


def test_interval_ms_is_replaced_before_interval() -> None:
    assert substitute_builtins("$__interval_ms|$__interval", RANGE) == "300000|5m"
    assert format_interval(timedelta(seconds=90)) == "90s"


def test_multi_value_variables_become_quoted_csv_and_single_values_stay_raw() -> None:
    sql = "token = $instrument AND mode IN ($mode) AND tf = '${timeframe}' AND x = [[instrument]]"
    values = {"instrument": "408065", "mode": ["live", "historical"], "timeframe": "1m"}
    assert substitute_variables(sql, values) == (
        "token = 408065 AND mode IN ('live','historical') AND tf = '1m' AND x = 408065"
    )


def test_a_variable_name_that_prefixes_another_is_not_substituted_inside_it() -> None:
    assert substitute_variables(
        "$instrument_type $instrument", {"instrument": "1", "instrument_type": "EQ"}
    ) == ("EQ 1")


def test_leftovers_finds_unexpanded_templating_but_not_positional_parameters() -> None:
    assert leftovers("SELECT $1, $$x$$") == []
    assert set(leftovers("WHERE $unknown AND $__foo AND [[bar]] AND ${baz}")) == {
        "$unknown",
        "$__foo",
        "[[bar]]",
        "${baz}",
    }


def test_render_sql_applies_variables_builtins_and_macros_in_order() -> None:
    sql = "SELECT $__timeGroupAlias(time, $__interval) FROM t WHERE $__timeFilter(time) AND tf = '$timeframe'"
    rendered = render_sql(sql, {"timeframe": "1m"}, RANGE)
    assert rendered.startswith("SELECT time_bucket('300.000s',time) AS \"time\" FROM t WHERE time BETWEEN")
    assert not leftovers(rendered)


def test_unknown_macros_are_an_error_not_silently_kept() -> None:
    with pytest.raises(ValueError, match="unknown Grafana macro"):
        expand_macros("$__nosuchMacro(x)", RANGE)


def test_promql_metric_names_ignore_functions_labels_and_durations() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, table) (rate(tickwise_db_write_latency_seconds_bucket{table="x"}'
        "[$__rate_interval]))) / on (job) group_left up"
    )
    assert promql_metric_names(expr) == {"tickwise_db_write_latency_seconds_bucket", "up"}
