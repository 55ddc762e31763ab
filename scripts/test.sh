#!/bin/bash
# The whole test suite (run as root: integration tests create namespaces and start sshd):
# ruff and mypy --strict first, then every test; fails when any of them does.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
status=0
echo "test: ruff check" && .venv/bin/ruff check labctl tests bench || status=1
echo "test: mypy --strict labctl" && .venv/bin/mypy --strict labctl || status=1
.venv/bin/python -m pytest -ra "$@" || status=$?
exit "$status"
