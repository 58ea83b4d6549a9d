#!/usr/bin/env bash
# Idempotent setup of a fresh Debian 12/13 machine: system packages, PostgreSQL + TimescaleDB,
# the .venv with tickwise installed editable (with dev extras). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if command -v apt-get >/dev/null 2>&1; then
  need=()
  # chromium: the tests render the backtest report headless (tests/integration/backtest/chromium.py);
  # systemd: `systemd-analyze verify` checks the generated units.
  for pkg in python3-venv python3-dev gcc make git util-linux systemd chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    log "installing system packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
  fi
else
  log "apt-get not found: install Python 3.11+, a C compiler and PostgreSQL + TimescaleDB yourself"
fi

bash scripts/install_timescaledb.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
log "installing tickwise (editable, with dev extras) into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
log "done: run 'make run-historical' or 'make test'"
