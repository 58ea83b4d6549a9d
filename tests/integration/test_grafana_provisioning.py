"""Grafana provisioning files: datasources, the dashboard provider and the dashboards fit together."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_macros import load_dashboards, queries

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "config" / "grafana"
BUILTINS = {
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
    "__all",
}


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict[str, Any]]:
    files = sorted((GRAFANA / "provisioning" / "datasources").glob("*.yaml"))
    assert files
    found = {}
    for path in files:
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            found[ds["uid"]] = ds
    return found


@pytest.fixture(scope="module")
def dashboards() -> dict[Path, dict[str, Any]]:
    return load_dashboards(GRAFANA / "dashboards")


@pytest.fixture(scope="module")
def grafana_service() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    return service


def test_timescaledb_datasource_uses_timescale_macros_and_a_secret_from_the_environment(
    datasources: dict[str, dict[str, Any]],
) -> None:
    pg = datasources["tickwise-timescaledb"]
    assert pg["type"] in {"postgres", "grafana-postgresql-datasource"}
    assert pg["jsonData"]["timescaledb"] is True
    assert pg["jsonData"]["database"]  # in jsonData, not the URL
    assert re.fullmatch(r"\$\{?[A-Z_]+\}?", pg["secureJsonData"]["password"])
    assert "password" not in pg and "password" not in pg["jsonData"]


def test_prometheus_datasource_posts_through_the_grafana_proxy(
    datasources: dict[str, dict[str, Any]],
) -> None:
    prom = datasources["tickwise-prometheus"]
    assert prom["type"] == "prometheus"
    assert prom["access"] == "proxy"
    assert prom["jsonData"] == {"httpMethod": "POST", "timeInterval": "15s"}


def test_every_environment_variable_the_provisioning_reads_is_set_by_compose(
    grafana_service: dict[str, Any],
) -> None:
    used = set()
    for path in (GRAFANA / "provisioning").rglob("*.yaml"):
        body = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        used |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)\}?", body))
    assert used
    assert used <= set(grafana_service["environment"]), used - set(grafana_service["environment"])
    assert grafana_service["environment"]["TICKWISE_GRAFANA_DB_USER"] == "tickwise_grafana"


def test_dashboard_provider_reads_the_mounted_folder_and_forbids_ui_edits(
    grafana_service: dict[str, Any],
) -> None:
    (path,) = (GRAFANA / "provisioning" / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
    assert provider["options"]["foldersFromFilesStructure"] is True
    mounts = {v.split(":")[1] for v in grafana_service["volumes"]}
    assert provider["options"]["path"] in mounts


def test_dashboards_have_unique_uids_and_only_reference_provisioned_datasources(
    dashboards: dict[Path, dict[str, Any]], datasources: dict[str, dict[str, Any]]
) -> None:
    uids = [board["uid"] for board in dashboards.values()]
    assert len(uids) == len(set(uids)) == 5
    for path, board in dashboards.items():
        text = path.read_text()
        referenced = set(re.findall(r'"uid": "(tickwise-[a-z-]+)"', text)) - set(uids)
        assert referenced <= set(datasources), (
            f"{path.name}: unknown datasource uids {referenced - set(datasources)}"
        )
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{path.name}: {panel['title']} off the grid"


def test_every_variable_a_query_uses_is_defined_by_its_dashboard(
    dashboards: dict[Path, dict[str, Any]],
) -> None:
    for path, board in dashboards.items():
        defined = {v["name"] for v in board.get("templating", {}).get("list", [])}
        for query in queries(board, path.stem):
            used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", query.text.replace("$$", "")))
            unknown = {u for u in used if not u.startswith("__") and u not in defined} - BUILTINS
            assert not unknown, f"{path.name} {query.where}: undefined variables {unknown}"


def test_market_signal_and_model_dashboards_offer_instrument_and_timeframe(
    dashboards: dict[Path, dict[str, Any]],
) -> None:
    for path, board in dashboards.items():
        if path.stem in ("pipeline-health", "backtest"):  # backtests span instruments and timeframes
            continue
        names = {v["name"] for v in board["templating"]["list"]}
        assert {"instrument", "timeframe"} <= names, path.name
