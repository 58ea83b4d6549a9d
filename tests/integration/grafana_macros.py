"""Grafana's SQL templating, ported to Python so tests can run dashboard queries (timescale.md section 6).

Order, as Grafana does it: template variables (``$var``, ``${var}``, ``${var:fmt}``, ``[[var]]``) and the
interval variables (``$__interval_ms`` before ``$__interval``), then the PostgreSQL datasource macros
(``$__timeFilter(col)``, ``$__timeGroup(col, '5m')``, ...). Also: walking dashboard JSON for queries and
pulling metric names out of PromQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval: timedelta


@dataclass(frozen=True)
class Query:
    """One SQL or PromQL text found in a dashboard, with where it came from."""

    dashboard: str
    where: str  # panel title, "variable <name>" or "annotation <name>"
    kind: str  # "sql" or "promql"
    text: str
    format: str  # "time_series", "table" (SQL) or "" (PromQL)


def parse_interval(text: str) -> timedelta:
    """``'5m'``, ``1h``, ``"30s"`` -> timedelta (Grafana's gtime.ParseInterval for the common units)."""
    match = re.fullmatch(r"\s*['\"]?(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)['\"]?\s*", text)
    if not match:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def format_interval(interval: timedelta) -> str:
    """timedelta -> Grafana's ``$__interval`` text (``1m``, ``5s``, ``2h``, ``500ms``)."""
    ms = int(interval.total_seconds() * 1000)
    for unit, factor in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % factor == 0:
            return f"{ms // factor}{unit}"
    return f"{ms}ms"


_UTC = UTC


def substitute_variables(
    sql: str, values: Mapping[str, str | Sequence[str]], multi_quote: bool = True
) -> str:
    """Replace template variables; multi-value lists become quoted CSV (``'a','b'``) like Grafana's SQL datasources."""

    def render(name: str) -> str | None:
        if name not in values:
            return None
        value = values[name]
        if isinstance(value, str):
            return value
        if multi_quote:
            return ",".join("'" + v.replace("'", "''") + "'" for v in value)
        return ",".join(value)

    def braces(match: re.Match[str]) -> str:
        rendered = render(match.group(1))
        return match.group(0) if rendered is None else rendered

    sql = re.sub(r"\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}", braces, sql)
    sql = re.sub(r"\[\[([A-Za-z0-9_]+)(?::[A-Za-z]+)?\]\]", braces, sql)
    # Longest names first so $instrument_type is not read as $instrument + "_type".
    for name in sorted(values, key=len, reverse=True):
        rendered = render(name) or ""
        # A plain string replacement would interpret backslashes; escape them.
        sql = re.sub(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", rendered.replace("\\", "\\\\"), sql)
    return sql


def substitute_builtins(sql: str, time_range: TimeRange) -> str:
    """Grafana's global variables that are plain text substitutions (before macros)."""
    start_ms = int(time_range.start.timestamp() * 1000)
    end_ms = int(time_range.end.timestamp() * 1000)
    range_s = int((time_range.end - time_range.start).total_seconds())
    interval_ms = int(time_range.interval.total_seconds() * 1000)
    replacements = [
        ("${__interval_ms}", str(interval_ms)),
        ("$__interval_ms", str(interval_ms)),
        ("${__interval}", format_interval(time_range.interval)),
        ("$__interval", format_interval(time_range.interval)),
        ("${__from}", str(start_ms)),
        ("$__from", str(start_ms)),
        ("${__to}", str(end_ms)),
        ("$__to", str(end_ms)),
        ("$__range_ms", str(range_s * 1000)),
        ("$__range_s", str(range_s)),
        ("$__range", f"{range_s}s"),
    ]
    for old, new in replacements:
        sql = sql.replace(old, new)
    return sql


def expand_macros(sql: str, time_range: TimeRange, *, timescaledb: bool = True) -> str:
    """Expand the PostgreSQL datasource macros over ``time_range`` (timescaledb=True: time_bucket)."""
    start = time_range.start.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = time_range.end.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    start_s = int(time_range.start.timestamp())
    end_s = int(time_range.end.timestamp())

    def group(args: list[str]) -> str:
        if len(args) < 2:
            raise ValueError(f"$__timeGroup needs a column and an interval, got {args}")
        seconds = parse_interval(args[1]).total_seconds()
        if timescaledb:
            return f"time_bucket('{seconds:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"

    def expand(match: re.Match[str]) -> str:
        name = match.group(1)
        args = [a.strip() for a in match.group(2).split(",")] if match.group(2).strip() else []
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{start}' AND '{end}'"
        if name == "__timeFrom":
            return f"'{start}'"
        if name == "__timeTo":
            return f"'{end}'"
        if name == "__timeGroup":
            return group(args)
        if name == "__timeGroupAlias":
            return group(args) + ' AS "time"'
        if name == "__unixEpochFilter":
            return f"{args[0]} >= {start_s} AND {args[0]} <= {end_s}"
        if name == "__unixEpochFrom":
            return str(start_s)
        if name == "__unixEpochTo":
            return str(end_s)
        if name == "__unixEpochGroup":
            seconds = parse_interval(args[1]).total_seconds()
            return f"floor(({args[0]})/{seconds:g})*{seconds:g}"
        if name == "__unixEpochGroupAlias":
            seconds = parse_interval(args[1]).total_seconds()
            return f'floor(({args[0]})/{seconds:g})*{seconds:g} AS "time"'
        raise ValueError(f"unknown Grafana macro ${name}(...)")

    return MACRO.sub(expand, sql)


def render_sql(
    sql: str, values: Mapping[str, str | Sequence[str]], time_range: TimeRange, *, timescaledb: bool = True
) -> str:
    """Variables, then built-ins, then macros: what Grafana sends to PostgreSQL."""
    return expand_macros(
        substitute_builtins(substitute_variables(sql, values), time_range),
        time_range,
        timescaledb=timescaledb,
    )


def leftovers(sql: str) -> list[str]:
    """Templating that survived rendering (``$__x``, ``$var``, ``${var}``, ``[[var]]``); ``$1``/``$$`` are fine."""
    unquoted = sql.replace("$$", "")  # dollar-quoted bodies (DO $$ ... $$) are not templating
    return re.findall(r"\$__\w+|\$\{[^}]*\}|\[\[[^\]]*\]\]|\$[A-Za-z_]\w*", unquoted)


def load_dashboards(root: Path) -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(root.rglob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows (collapsed rows keep their panels here)


def _datasource_type(ds: Any, default: str = "") -> str:
    if isinstance(ds, dict):
        return str(ds.get("type") or default)
    return default


def queries(dashboard: dict[str, Any], name: str) -> Iterator[Query]:
    """Every SQL and PromQL text of a dashboard: panel targets, SQL variables and annotations."""
    for panel in _panels(dashboard.get("panels", [])):
        panel_type = _datasource_type(panel.get("datasource"))
        for target in panel.get("targets", []):
            kind = _datasource_type(target.get("datasource"), panel_type)
            where = f"panel {panel.get('title')!r} target {target.get('refId')}"
            if "rawSql" in target:
                yield Query(name, where, "sql", target["rawSql"], target.get("format", "time_series"))
            elif "expr" in target:
                yield Query(name, where, "promql", target["expr"], "")
            elif kind:
                raise AssertionError(f"{name} {where}: a target with neither rawSql nor expr")
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query if isinstance(query, str) else query.get("rawSql") or query.get("query", "")
            kind = "promql" if _datasource_type(variable.get("datasource")) == "prometheus" else "sql"
            yield Query(name, f"variable {variable['name']}", kind, text, "table")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        target = annotation.get("target") or {}
        if "rawSql" in target:
            yield Query(name, f"annotation {annotation['name']!r}", "sql", target["rawSql"], "table")


_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "le",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (functions, labels, keywords and durations removed)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text):
        word = match.group(1)
        if word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names
