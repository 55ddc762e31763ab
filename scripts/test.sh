#!/bin/bash
# The whole test suite (run as root: integration tests create namespaces and start sshd).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest -ra "$@"
