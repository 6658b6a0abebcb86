#!/usr/bin/env bash
# Regenerates every generated block of results/**/README.md and README.md from the committed
# data (no load is run) and fails, naming file and line, where a block differs from its data
# or where prose outside the blocks quotes a measured number. See results/gen.py.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 results/gen.py --check
