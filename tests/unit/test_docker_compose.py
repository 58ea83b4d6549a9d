"""docker-compose.yml: the services exist, are health-checked, persist their data and inline no secret."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tickwise.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
ONLY_INTERPOLATION = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")
URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")
LONG_RUNNING = ("timescaledb", "live", "prometheus", "grafana")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_defines_database_app_commands_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert set(svc) >= {"timescaledb", "migrate", "historical", "live", "prometheus", "grafana"}
    assert svc["migrate"]["command"] == ["db", "migrate"]
    assert svc["historical"]["command"] == ["historical"]
    assert svc["live"]["command"] == ["live", "--wait"]
    for name in ("migrate", "historical", "live"):
        assert svc[name]["build"] == "."
        assert environment(svc[name])["DATABASE_URL"].startswith("postgresql://")
        assert "@timescaledb:5432/tickwise" in environment(svc[name])["DATABASE_URL"]


def test_database_uses_the_community_tsl_timescaledb_image_with_telemetry_off(
    compose: dict[str, Any],
) -> None:
    db = services(compose)["timescaledb"]
    # The community (TSL) image, not -oss: compression, retention policies, continuous aggregates (#15).
    assert re.fullmatch(r"timescale/timescaledb:2\.\d+\.\d+-pg15", db["image"])
    env = environment(db)
    assert env["POSTGRES_DB"] == "tickwise"
    assert env["TIMESCALEDB_TELEMETRY"] == "off"


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in LONG_RUNNING:
        check = svc[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "pg_isready" in " ".join(svc["timescaledb"]["healthcheck"]["test"])


def test_services_wait_for_a_healthy_database_and_finished_migrations(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in ("migrate", "historical", "live", "grafana"):
        assert svc[name]["depends_on"]["timescaledb"]["condition"] == "service_healthy", name
    assert svc["historical"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert svc["live"]["depends_on"]["historical"]["condition"] == "service_completed_successfully"
    assert svc["grafana"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_stateful_services_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    svc = services(compose)
    declared = set(compose["volumes"])
    expected = {
        "timescaledb": "/var/lib/postgresql/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
        "live": "/app/.data",
    }
    for name, target in expected.items():
        mounts = [str(v).split(":") for v in svc[name]["volumes"]]
        named = [m for m in mounts if m[0] in declared and m[1] == target]
        assert named, f"{name} does not keep {target} in a named volume"


def test_bind_mounts_point_at_files_in_the_repository(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name, service in svc.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    grafana = [str(v) for v in svc["grafana"]["volumes"]]
    assert "./config/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./config/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    assert "./config/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in svc["prometheus"]["volumes"]


def test_no_secret_is_inlined(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert ONLY_INTERPOLATION.match(value), f"{name}.{key} must come from the environment"
            url = URL_PASSWORD.search(value)
            if url:
                assert ONLY_INTERPOLATION.match(url.group("password")), f"{name}.{key} inlines a password"


def test_required_secrets_fail_fast_when_unset(compose: dict[str, Any]) -> None:
    # ${VAR:?message} makes `docker compose up` refuse to start instead of running a database without
    # a password (the TimescaleDB image then disables password checks).
    db = environment(services(compose)["timescaledb"])
    assert db["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert environment(services(compose)["grafana"])["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )


def test_published_ports_bind_to_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_prometheus_scrapes_the_live_service_on_the_configured_metrics_port(compose: dict[str, Any]) -> None:
    port = load_settings(environ={}).monitoring.metrics_port
    config = yaml.safe_load((ROOT / "config" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert {f"live:{port}", f"127.0.0.1:{port}"} <= targets
    live_env = environment(services(compose)["live"])
    assert live_env["TICKWISE__MONITORING__METRICS_HOST"] == "0.0.0.0"
    assert live_env["TICKWISE__MONITORING__METRICS_PORT"] == str(port)


def test_the_app_image_installs_tickwise_on_python_311() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert 'ENTRYPOINT ["tickwise"]' in dockerfile
    assert re.search(r"pip install .*-e \.", dockerfile)


def test_live_runs_every_trading_day_without_a_restart_loop_after_the_close(compose: dict[str, Any]) -> None:
    # `live --wait` exits 0 on a closed day and after the close: only failures may restart it.
    live = services(compose)["live"]
    assert live["command"] == ["live", "--wait"]
    assert str(live["restart"]).startswith("on-failure")
    assert live["depends_on"]["historical"]["required"] is False


def test_historical_is_a_one_shot_job_outside_the_default_up(compose: dict[str, Any]) -> None:
    historical = services(compose)["historical"]
    assert historical["profiles"] == ["historical"] and historical["restart"] == "no"


def test_the_app_connects_as_a_non_superuser_role_and_only_migrate_has_the_superuser(
    compose: dict[str, Any],
) -> None:
    svc = services(compose)
    superuser = environment(svc["timescaledb"])["POSTGRES_USER"]
    for name in ("historical", "live"):
        url = environment(svc[name])["DATABASE_URL"]
        assert url.startswith("postgresql://tickwise_app:"), name
        assert f"://{superuser}:" not in url
    assert environment(svc["migrate"])["DATABASE_URL"].startswith(f"postgresql://{superuser}:")
    assert "TICKWISE_APP_PASSWORD" in environment(svc["migrate"])


def test_live_gets_time_to_drain_before_it_is_killed(compose: dict[str, Any]) -> None:
    grace = str(services(compose)["live"]["stop_grace_period"])
    assert grace.endswith("s") and int(grace[:-1]) >= 30


def test_production_binds_metrics_to_loopback() -> None:
    settings = load_settings(environ={}, environment="production")
    assert settings.monitoring.metrics_host == "127.0.0.1"
