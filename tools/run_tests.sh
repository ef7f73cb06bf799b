#!/usr/bin/env bash
# Run the test suite, bootstrapping .venv first if needed.   bash tools/run_tests.sh [pytest args]
#   bash tools/run_tests.sh                             # everything under tests/
#   bash tools/run_tests.sh tests/engine -m "not slow"  # a path given replaces tests/
# It runs pytest in the repository root, from wherever it is called: give test paths relative
# to the root (tests/...), not to the current folder.
set -euo pipefail
unset CDPATH  # a relative cd would print its CDPATH match into $(...)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${GENVIEW_VENV:-}" in  # a relative one is the caller's, as bootstrap_env.sh reads it
  ''|/*) ;;
  *) export GENVIEW_VENV="$PWD/$GENVIEW_VENV" ;;
esac
source "$ROOT/tools/_signals.sh"
run_child bash "$ROOT/tools/bootstrap_env.sh"
cd "$ROOT"
# pytest's own default (testpaths = tests in pytest.ini) applies only when no path is given
exec "${GENVIEW_VENV:-$ROOT/.venv}/bin/python" -m pytest -q -p no:cacheprovider "$@"
