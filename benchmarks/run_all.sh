#!/usr/bin/env bash
# Every speed benchmark of the project, with the settings for the machine it finds, into one JSON:
#   benchmarks/run_all.sh --out figures.json [--official /path/to/G3FA] [--dry-run]
# (G3FA_OFFICIAL may name the official clone instead of --official.) See benchmarks/run_all.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" benchmarks/run_all.py "$@"
