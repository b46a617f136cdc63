#!/usr/bin/env bash
# Set up (idempotent), then build the flagship library with the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
gen batch recipes/cafe_jazz.yaml "$@"
