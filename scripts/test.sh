#!/usr/bin/env bash
# The project's one test command.
#
#   ./scripts/test.sh
#
# On a machine with Rust, Python 3.11 and Node 20 it installs what the suite
# needs (a .venv with the pinned official Python SDKs, tests/node/node_modules
# from package-lock.json), builds the release binaries, then runs, in order:
# cargo test, pytest tests/sdk (Python SDKs against the real binary, and, as root, the gateway
# face with strongSwan in network namespaces: it installs those Debian packages first), and
# node --test tests/node (the Node SDK against the real binary).
# The store is tested both ways: pytest runs the whole SDK suite once on the embedded SQLite
# store and once on PostgreSQL (GATEHOUSE_TEST_STORE=postgres, several nodes sharing a database
# included); cargo test gets a database too (GATEHOUSE_TEST_DATABASE_URL). The PostgreSQL is
# one instance for the run, started from Debian's `postgresql` binaries (installed when
# missing) in a temporary directory, on a Unix socket only, and stopped at exit.
# Installs are skipped when already up to date. Every runner runs even if an
# earlier one failed; the exit status is non-zero if any of them failed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PYTHON=${PYTHON:-python3}
VENV="$ROOT/.venv"
REQS="$ROOT/tests/sdk/requirements.txt"
NODE_DIR="$ROOT/tests/node"

step() { printf '\n==== %s\n' "$*"; }

# Sets `missing` to those of the named Debian packages that are not installed (dpkg-query, so
# a warm run costs nothing).
missing_debs() {
  missing=()
  for p in "$@"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
      missing+=("$p")
    fi
  done
}

# apt-get install the named packages, as root: only they and their dependencies (no
# recommends; never `openssl` itself), and never a service started from a package's postinst
# (a no-op where policy-rc.d already says so).
apt_install() {
  local own_policy="" rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=1
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  return $rc
}

can_apt() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; }

hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- Python SDKs
step "python: $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
want=$(hash_of "$REQS")
stamp="$VENV/.gatehouse-requirements.sha256"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  echo "$want" >"$stamp"
else
  echo "requirements up to date"
fi

# ---------------------------------------------------------------- Node SDK
step "node: $NODE_DIR"
want=$(hash_of "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json")
stamp="$NODE_DIR/node_modules/.gatehouse-lock.sha256"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
else
  echo "node_modules up to date"
fi

# ---------------------------------------------------------------- gateway test packages
# tests/sdk/test_gateway_ipsec.py runs the gateway face for real: strongSwan in network
# namespaces; tests/sdk/test_ssl_vpn.py connects a stock OpenVPN client with the profile the API
# hands out. Both need root and these Debian packages. As root with apt, install what is
# missing (dpkg-query first, so a warm run costs nothing) and demand that those tests run
# (GATEHOUSE_REQUIRE_DATAPLANE=1); elsewhere they are skipped, loudly.
GATEWAY_PKGS=(strongswan-charon strongswan-swanctl charon-systemd libcharon-extra-plugins
              libcharon-extauth-plugins libstrongswan-standard-plugins iproute2 iputils-ping tcpdump procps
              openvpn bird2 frr)
install_failed=""
step "gateway test packages (strongSwan, OpenVPN, BIRD, FRR, iproute2, ping, tcpdump)"
if can_apt; then
  missing_debs "${GATEWAY_PKGS[@]}"
  if [ ${#missing[@]} -eq 0 ]; then
    echo "gateway test packages installed"
    export GATEHOUSE_REQUIRE_DATAPLANE=1
  else
    echo "installing: ${missing[*]}"
    if apt_install "${missing[@]}"; then
      echo "installed: ${missing[*]}"
      export GATEHOUSE_REQUIRE_DATAPLANE=1
    else
      install_failed=1
      echo "!!!!! could not install ${missing[*]}: the gateway end-to-end tests will be skipped" >&2
    fi
  fi
else
  echo "!!!!! NOTE: not root (or no apt-get): the gateway end-to-end tests (tests/sdk/test_gateway_ipsec.py)" >&2
  echo "!!!!! need root, network namespaces and strongSwan; they will be SKIPPED in this run." >&2
fi

# ---------------------------------------------------------------- PostgreSQL package
# The server binaries (/usr/lib/postgresql/<version>/bin) from Debian's `postgresql`. Its
# postinst would start the distro's cluster: policy-rc.d forbids it, the run starts its own.
step "PostgreSQL server package"
pg_install_failed=""
if can_apt; then
  missing_debs postgresql
  if [ ${#missing[@]} -eq 0 ]; then
    echo "postgresql installed"
  elif apt_install postgresql; then
    echo "installed: postgresql"
  else
    pg_install_failed=1
    echo "!!!!! could not install postgresql: the PostgreSQL runs will fail" >&2
  fi
elif ! ls -d /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "!!!!! NOTE: no PostgreSQL server under /usr/lib/postgresql and no root/apt to install" >&2
  echo "!!!!! Debian's postgresql: the PostgreSQL runs will fail." >&2
fi

# ---------------------------------------------------------------- build
step "cargo build --release --bins"
cargo build --release --bins

# ---------------------------------------------------------------- PostgreSQL instance
# One instance for the run, in a directory of its own, on a Unix socket there only; stopped by
# its PID at exit, failed or not. It exports GATEHOUSE_TEST_PG_SOCKET/PORT, so the PostgreSQL
# pytest run reuses it (each test server makes a database of its own there); cargo test gets a
# fresh database of its own.
step "PostgreSQL instance"
PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-pg.XXXXXX")
pg() { "$VENV/bin/python" "$ROOT/tests/sdk/pg.py" "$@"; }
stop_pg() { pg stop --dir "$PG_DIR" || true; rm -rf "$PG_DIR"; }
trap stop_pg EXIT
trap 'exit 130' INT TERM
pg_failed=""
if pg_env=$(pg start --dir "$PG_DIR" --database conformance); then
  eval "$pg_env"
  GATEHOUSE_TEST_DATABASE_URL=$(pg url --dir "$PG_DIR" --database conformance)
  export GATEHOUSE_TEST_DATABASE_URL
  echo "PostgreSQL on $GATEHOUSE_TEST_PG_SOCKET (port $GATEHOUSE_TEST_PG_PORT)"
else
  pg_failed=1
  echo "!!!!! PostgreSQL did not start: the PostgreSQL pytest run is not run" >&2
fi

# ---------------------------------------------------------------- run
failed=()

step "cargo test --release --no-fail-fast"
# The store conformance tests run on PostgreSQL too, here without fail (no silent skip).
if ! GATEHOUSE_REQUIRE_POSTGRES=1 cargo test --release --no-fail-fast; then failed+=("cargo test"); fi

# -p no:cacheprovider keeps the work tree clean; the summary line is pytest's own.
step "pytest tests/sdk (SQLite store)"
if ! "$VENV/bin/python" -m pytest tests/sdk; then failed+=("pytest (SQLite)"); fi

step "pytest tests/sdk (PostgreSQL store)"
if [ -n "$pg_failed" ]; then
  failed+=("pytest (PostgreSQL)")
elif ! GATEHOUSE_TEST_STORE=postgres "$VENV/bin/python" -m pytest tests/sdk; then
  failed+=("pytest (PostgreSQL)")
fi

step "node --test tests/node/"
if ! node --test tests/node/; then failed+=("node --test"); fi

if [ -n "$install_failed" ]; then failed+=("gateway test packages"); fi
if [ -n "$pg_install_failed" ]; then failed+=("postgresql package"); fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test runners passed"
