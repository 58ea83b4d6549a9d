#!/usr/bin/env bash
# Install PostgreSQL and the TimescaleDB extension (Apache build) on Debian 12 or 13.
#
# Idempotent: if `pg_config --pkglibdir` already holds timescaledb.so nothing is done.
# Debian 13 (trixie): binary packages postgresql-17 + postgresql-17-timescaledb.
# Debian 12 (bookworm): build trixie's Debian source package against the installed PostgreSQL 15
#   (see shared/docs/timescale.md, section 2); the dfsg tarball has no tsl/ so the build is APACHE_ONLY.
# Anything else: a clear message pointing at docker compose.
set -euo pipefail

log() { printf '[install-timescaledb] %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    log "must run as root (or with sudo) to install system packages"; exit 1
  fi
fi

find_pg_config() {
  local c
  for c in /usr/lib/postgresql/17/bin/pg_config /usr/lib/postgresql/16/bin/pg_config \
           /usr/lib/postgresql/15/bin/pg_config; do
    [ -x "$c" ] && { echo "$c"; return 0; }
  done
  command -v pg_config 2>/dev/null || return 1
}

already_installed() {
  local pgc
  pgc=$(find_pg_config) || return 1
  local lib share
  lib=$("$pgc" --pkglibdir)
  share=$("$pgc" --sharedir)
  ls "$lib"/timescaledb*.so >/dev/null 2>&1 && [ -f "$share/extension/timescaledb.control" ]
}

if already_installed; then
  log "TimescaleDB already installed for $("$(find_pg_config)" --version); nothing to do"
  exit 0
fi

if [ ! -r /etc/os-release ]; then
  log "unsupported platform (no /etc/os-release): run 'docker compose up -d timescaledb' and set DATABASE_URL"
  exit 1
fi
. /etc/os-release
if [ "${ID:-}" != "debian" ]; then
  log "unsupported platform ${PRETTY_NAME:-unknown}: install TimescaleDB yourself, or run"
  log "'docker compose up -d timescaledb' and export DATABASE_URL=postgresql://postgres:\$POSTGRES_PASSWORD@127.0.0.1:5432/tickwise"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_updated=""
apt_update_once() { [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }; }

case "${VERSION_CODENAME:-}" in
  trixie|forky|sid)
    apt_update_once
    log "installing postgresql-17 and postgresql-17-timescaledb from Debian"
    $SUDO apt-get install -y -qq postgresql-17 postgresql-17-timescaledb
    ;;
  bookworm)
    apt_update_once
    log "installing PostgreSQL 15 and build tools"
    $SUDO apt-get install -y -qq postgresql-15 postgresql-server-dev-15 cmake gcc make dpkg-dev xz-utils
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
    srclist=/etc/apt/sources.list.d/tickwise-trixie-src.list
    if [ ! -f "$srclist" ]; then
      log "adding trixie deb-src line ($mirror) to build timescaledb from the Debian source package"
      echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" | $SUDO tee "$srclist" >/dev/null
      $SUDO apt-get update -qq
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (
      cd "$work"
      apt-get source --download-only timescaledb >/dev/null
      tarball=$(ls timescaledb_*.orig.tar.* | head -n1)
      tar xf "$tarball"
      cd "$(ls -d timescaledb-*/ | head -n1)"
      log "building $(basename "$PWD") (Apache-only) against PostgreSQL 15"
      ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DAPACHE_ONLY=1 -DWARNINGS_AS_ERRORS=OFF \
        -DPG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
      make -C build -j"$(nproc)" >/dev/null
      $SUDO make -C build install >/dev/null
    )
    ;;
  *)
    log "Debian ${VERSION_CODENAME:-unknown} is not supported by this script: run 'docker compose up -d timescaledb'"
    exit 1
    ;;
esac

if already_installed; then
  log "TimescaleDB installed for $("$(find_pg_config)" --version)"
else
  log "installation finished but timescaledb.so was not found; see the output above"
  exit 1
fi
