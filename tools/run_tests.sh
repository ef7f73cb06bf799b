#!/usr/bin/env bash
# Run the test suite, bootstrapping .venv first if needed.   bash tools/run_tests.sh [pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/bootstrap_env.sh"
cd "$ROOT"
exec "${GENVIEW_VENV:-$ROOT/.venv}/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
