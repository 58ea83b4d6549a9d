"""Issue #13, finding 4: a secret given through any configuration path appears in no output or log line.

One SENTINEL value travels through every path (environment, YAML, a DSN's password and its
``?password=``, an MLflow URI, a webhook URL, the token file, ``--debug``); every byte the CLI writes to
stdout/stderr and every line of its log file is searched for it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from loguru import logger

from tickwise.adapters.alerts.dispatcher import AlertDispatcher
from tickwise.adapters.alerts.sinks import WebhookSink
from tickwise.adapters.kite.auth import TokenStore
from tickwise.bootstrap.observability import configured_secrets
from tickwise.cli.context import CliState
from tickwise.cli.main import report_failure
from tickwise.config import load_settings
from tickwise.observability.logging import configure_logging, redact_url

SENTINEL = "SENTINEL-b41c9e77d2"
TICKWISE = str(Path(sys.executable).with_name("tickwise"))


def _cli(config_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE") and k != "DATABASE_URL"}
    full_env.update({"TICKWISE_CONFIG_DIR": str(config_dir), **env})
    return subprocess.run(
        [TICKWISE, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False
    )


@pytest.fixture
def config_dir(tmp_path: Path) -> Iterator[Path]:
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "config.yaml").write_text(
        f"system:\n  data_dir: {tmp_path / 'data'}\ndatabase:\n  url: ${{DATABASE_URL:}}\n"
    )
    yield cfg


def _assert_nowhere(result: subprocess.CompletedProcess[str], config_dir: Path) -> None:
    assert SENTINEL not in result.stdout, result.stdout
    assert SENTINEL not in result.stderr, result.stderr
    logs = config_dir.parent / "data" / "logs"
    for path in logs.glob("*.log*") if logs.is_dir() else []:
        assert SENTINEL not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(
    "env",
    [
        {"TICKWISE__BROKER__API_SECRT": SENTINEL},  # a typo'd key
        {"TICKWISE__BROKR__API_SECRET": SENTINEL},  # a typo'd section
        {"TICKWISE__DATABASE__URL": f"mysql://u:{SENTINEL}@h/db"},  # an invalid DSN
        {"DATABASE_URL": f"postgresql://nobody:{SENTINEL}@127.0.0.1:1/nothing"},
        {"DATABASE_URL": f"postgresql://nobody@127.0.0.1:1/nothing?password={SENTINEL}"},
        {"DATABASE_URL": f"postgresql://nobody@127.0.0.1:1/nothing?sslmode=disable&password={SENTINEL}"},
        {
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing",
            "TICKWISE__BROKER__API_SECRET": SENTINEL,
            "TICKWISE__MODEL_TRAINING__MLFLOW_URI": f"http://u:{SENTINEL}@127.0.0.1:1",
            "TICKWISE__MONITORING__ALERTS__WEBHOOK_URL": f"https://hooks.slack.com/services/T0/B0/{SENTINEL}",
        },
    ],
)
@pytest.mark.slow
def test_a_secret_from_the_environment_never_reaches_the_terminal_or_log(
    config_dir: Path, env: dict[str, str]
) -> None:
    # --debug prints the most: the traceback, debug log lines and the error line.
    result = _cli(config_dir, "--debug", "db", "status", **env)
    assert result.returncode in (1, 2), result.stderr
    assert result.stderr.strip(), "the failure is reported"
    _assert_nowhere(result, config_dir)


@pytest.mark.parametrize("debug", [False, True])
def test_a_secret_from_yaml_never_reaches_the_terminal_or_log(config_dir: Path, debug: bool) -> None:
    (config_dir / "config.yaml").write_text(
        f"system:\n  data_dir: {config_dir.parent / 'data'}\n"
        f"database:\n  url: postgresql://nobody:{SENTINEL}@127.0.0.1:1/nothing\n"
        f"broker:\n  api_key: k\n  api_secret: {SENTINEL}\n"
        f"model_training:\n  optuna_storage: postgresql://o:{SENTINEL}@h/o\n"
    )
    result = _cli(config_dir, *(["--debug"] if debug else []), "db", "status")
    assert result.returncode == 1 and "cannot connect" in result.stderr
    _assert_nowhere(result, config_dir)


def test_a_typod_yaml_key_does_not_echo_its_value(config_dir: Path) -> None:
    (config_dir / "config.yaml").write_text(f"broker:\n  api_secrt: {SENTINEL}\n")
    result = _cli(config_dir, "--debug", "db", "url", "--no-start")
    assert result.returncode == 2 and "broker.api_secrt" in result.stderr
    _assert_nowhere(result, config_dir)


def test_a_token_from_the_token_file_never_reaches_the_terminal(config_dir: Path) -> None:
    token_file = config_dir.parent / "token.json"
    token_file.write_text(
        json.dumps(
            {
                "api_key": "k",
                "access_token": SENTINEL,
                "login_time": "2026-01-05T09:00:00+05:30",
                "expires_at": "2026-01-06T06:00:00+05:30",
            }
        )
    )
    for args in (["auth", "status"], ["--debug", "auth", "status"]):
        result = _cli(config_dir, *args, TICKWISE__BROKER__TOKEN_FILE=str(token_file))
        assert "expired" in result.stdout or "valid" in result.stdout, result
        _assert_nowhere(result, config_dir)
    token_file.write_text('{"api_key": "k", "access_token": "' + SENTINEL + '", "login_time": 5}')
    result = _cli(config_dir, "--debug", "auth", "status", TICKWISE__BROKER__TOKEN_FILE=str(token_file))
    assert "unreadable" in result.stderr
    _assert_nowhere(result, config_dir)


def test_a_loaded_access_token_is_masked_in_later_log_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    path = tmp_path / "token.json"
    path.write_text(
        json.dumps({"api_key": "k", "access_token": SENTINEL, "login_time": "2026-01-05T09:00:00+05:30"})
    )
    token = TokenStore(path).load()
    assert token is not None
    logger.info("a library echoed {}", token.access_token)
    assert SENTINEL not in stream.getvalue() and "***" in stream.getvalue()


def test_an_mlflow_uri_password_never_reaches_the_error_line_or_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings(
        environ={"TICKWISE__MODEL_TRAINING__MLFLOW_URI": f"http://u:{SENTINEL}@127.0.0.1:1"}
    )
    configure_logging("INFO", stream=io.StringIO(), secrets=configured_secrets(settings))
    # What MLflow's REST client raises for an unreachable server quotes the URL in pieces.
    exc = RuntimeError(
        f"API request to endpoint /api/2.0/mlflow/experiments/get-by-name failed: "
        f"HTTPConnectionPool(host='127.0.0.1', port=1) url=http://u:{SENTINEL}@127.0.0.1:1/api auth=('u', '{SENTINEL}')"
    )
    try:
        raise exc
    except RuntimeError as raised:
        code = report_failure(raised, CliState(debug=True))
    out = capsys.readouterr()
    assert code == 1
    assert "Traceback" in out.err and "RuntimeError" in out.err
    assert SENTINEL not in out.err and SENTINEL not in out.out


async def test_a_failing_webhook_never_logs_its_url() -> None:
    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/{tail:.*}", fail)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/services/T000/B000/{SENTINEL}"
    settings = load_settings(environ={"TICKWISE__MONITORING__ALERTS__WEBHOOK_URL": url})
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, secrets=configured_secrets(settings))
    sink = WebhookSink(settings.monitoring.alerts.webhook_url.get_secret_value())
    dispatcher = AlertDispatcher([sink], min_priority="info", throttle_s=0)
    dispatcher.start()
    try:
        assert dispatcher.notify("critical", "k", "the feed is down")
        await dispatcher.drain()
    finally:
        await dispatcher.close()
        await sink.aclose()
        await runner.cleanup()
    text = stream.getvalue()
    assert "alert channel webhook failed" in text, text
    assert SENTINEL not in text
    assert SENTINEL not in redact_url(url, hide_path=True)


def test_an_unreachable_mlflow_server_error_carries_no_uri_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from tickwise.adapters.mlflow.tracker import MlflowTracker
    from tickwise.domain.errors import ModelError

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(ModelError) as err:
        MlflowTracker(f"http://user:{SENTINEL}@127.0.0.1:1")
    assert "127.0.0.1:1" in str(err.value)
    assert SENTINEL not in str(err.value) and err.value.__cause__ is None and err.value.__suppress_context__
