#!/usr/bin/env bash
# The project's one test command.
#
#   ./scripts/test.sh
#
# On a machine with Rust, Python 3.11 and Node 20 it installs what the suite
# needs (a .venv with the pinned official Python SDKs, tests/node/node_modules
# from package-lock.json), builds the release binaries, then runs, in order:
# cargo test, pytest tests/sdk (Python SDKs against the real binary), and
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

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test runners passed"
