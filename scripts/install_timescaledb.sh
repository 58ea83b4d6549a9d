#!/usr/bin/env bash
# Install PostgreSQL and the TimescaleDB extension (Apache build) on Debian 12 or 13.
#
# Idempotent: if `pg_config --pkglibdir` already holds timescaledb.so nothing is done.
# Debian 13 (trixie): binary packages postgresql-17 + postgresql-17-timescaledb.
# Debian 12 (bookworm): build trixie's Debian source package against the installed PostgreSQL 15
#   (see shared/docs/timescale.md, section 2); the dfsg tarball has no tsl/ so the build is APACHE_ONLY.
# Anything else: a clear message pointing at docker compose.
#
# --from-source DIR [--pg-config PATH] [--full]: build TimescaleDB WITH its TSL (Timescale License)
#   module from a source tree the user provides (e.g. a checkout of github.com/timescale/timescaledb at
#   the tag matching the installed version; this script never downloads it). When the installed Apache
#   build has the same version, only the TSL library `timescaledb-tsl-<version>.so` is built and copied
#   next to it (the loader picks it up once `timescaledb.license = 'timescale'`); otherwise, or with
#   --full, the whole extension is built and installed. Needs postgresql-server-dev-<major> and cmake,
#   which this mode installs with apt when they are missing. See docs/timescaledb.md.
set -euo pipefail

log() { printf '[install-timescaledb] %s\n' "$*"; }

SOURCE_DIR=""
PG_CONFIG_ARG=""
FULL_BUILD=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from-source) [ $# -ge 2 ] || { log "--from-source needs a directory"; exit 2; }; SOURCE_DIR=$2; shift 2 ;;
    --pg-config) [ $# -ge 2 ] || { log "--pg-config needs a path"; exit 2; }; PG_CONFIG_ARG=$2; shift 2 ;;
    --full) FULL_BUILD=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) log "unknown argument: $1 (expected --from-source DIR [--pg-config PATH] [--full])"; exit 2 ;;
  esac
done

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

# The TSL library of version $1 in $2 (pkglibdir), if present.
tsl_library() { echo "$2/timescaledb-tsl-$1.so"; }

build_from_source() {
  local src=$1 pgc ver lib share build installed_default
  [ -f "$src/version.config" ] && [ -d "$src/tsl/src" ] || {
    log "$src is not a TimescaleDB source tree with its tsl/ directory (no version.config or tsl/src)"; exit 1; }
  src=$(cd "$src" && pwd)
  ver=$(awk -F' *= *' '$1 == "version" {print $2}' "$src/version.config")
  [ -n "$ver" ] || { log "cannot read the version from $src/version.config"; exit 1; }
  if [ -n "$PG_CONFIG_ARG" ]; then pgc=$PG_CONFIG_ARG; else pgc=$(find_pg_config) || pgc=""; fi
  if [ -z "$pgc" ] || [ ! -x "$pgc" ] || ! "$pgc" --pgxs >/dev/null 2>&1 || [ ! -d "$("$pgc" --includedir-server)" ]; then
    local major="15"
    [ -n "$pgc" ] && [ -x "$pgc" ] && major=$("$pgc" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
    log "installing build dependencies: postgresql-server-dev-$major cmake gcc make"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "postgresql-server-dev-$major" cmake gcc make
    [ -n "$PG_CONFIG_ARG" ] || pgc=$(find_pg_config)
  fi
  command -v cmake >/dev/null 2>&1 || { log "cmake is required (apt-get install cmake)"; exit 1; }
  lib=$("$pgc" --pkglibdir)
  share=$("$pgc" --sharedir)
  installed_default=$(awk -F"'" '/^default_version/ {print $2}' "$share/extension/timescaledb.control" 2>/dev/null || true)
  build=${TSL_BUILD_DIR:-$(mktemp -d)}
  log "configuring TimescaleDB $ver with TSL against $("$pgc" --version) (build dir $build)"
  cmake -S "$src" -B "$build" -DPG_CONFIG="$pgc" -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
    -DWARNINGS_AS_ERRORS=OFF -DGENERATE_DOWNGRADE_SCRIPT=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  if [ -z "$FULL_BUILD" ] && [ "$installed_default" = "$ver" ] && [ -f "$lib/timescaledb-$ver.so" ]; then
    log "the installed build is $ver: building only the TSL module"
    cmake --build "$build" --target timescaledb-tsl -j"$(nproc)" >/dev/null
    $SUDO install -m 0755 "$build/tsl/src/timescaledb-tsl-$ver.so" "$(tsl_library "$ver" "$lib")"
  else
    log "installed version is '${installed_default:-none}': building and installing all of TimescaleDB $ver"
    cmake --build "$build" -j"$(nproc)" >/dev/null
    $SUDO cmake --install "$build" >/dev/null
  fi
  [ -n "${TSL_BUILD_DIR:-}" ] || rm -rf "$build"
  [ -f "$(tsl_library "$ver" "$lib")" ] || { log "build finished but $(tsl_library "$ver" "$lib") is missing"; exit 1; }
  log "installed $(tsl_library "$ver" "$lib")"
  log "enable it per cluster with timescaledb.license = 'timescale' (database.server_settings in config)"
}

if [ -n "$SOURCE_DIR" ]; then
  build_from_source "$SOURCE_DIR"
  exit 0
fi

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
