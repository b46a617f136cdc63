#!/usr/bin/env bash
# Set up (idempotent), then run the whole test suite: fast tests and the slow ones (real tools).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pytest -q -m "slow or not slow" "$@"
