#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite, as CI does. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -p no:cacheprovider -p no:anyio -q --durations=15 "$@"  # the slowest, to keep CI in time
