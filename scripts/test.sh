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
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${GATEWAY_PKGS[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "gateway test packages installed"
    export GATEHOUSE_REQUIRE_DATAPLANE=1
  else
    echo "installing: ${missing[*]}"
    # Never start a service from a package's postinst (a no-op where policy-rc.d already says so).
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    fi
    # Only the listed packages and their dependencies (no recommends; never `openssl` itself).
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
       DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
      echo "installed: ${missing[*]}"
      export GATEHOUSE_REQUIRE_DATAPLANE=1
    else
      install_failed=1
      echo "!!!!! could not install ${missing[*]}: the gateway end-to-end tests will be skipped" >&2
    fi
    if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  fi
else
  echo "!!!!! NOTE: not root (or no apt-get): the gateway end-to-end tests (tests/sdk/test_gateway_ipsec.py)" >&2
  echo "!!!!! need root, network namespaces and strongSwan; they will be SKIPPED in this run." >&2
fi

# ---------------------------------------------------------------- build
step "cargo build --release --bins"
cargo build --release --bins

# ---------------------------------------------------------------- run
failed=()

step "cargo test --release --no-fail-fast"
if ! cargo test --release --no-fail-fast; then failed+=("cargo test"); fi

step "pytest tests/sdk"
# -p no:cacheprovider keeps the work tree clean; the summary line is pytest's own.
if ! "$VENV/bin/python" -m pytest tests/sdk; then failed+=("pytest"); fi

step "node --test tests/node/"
if ! node --test tests/node/; then failed+=("node --test"); fi

if [ -n "$install_failed" ]; then failed+=("gateway test packages"); fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test runners passed"
